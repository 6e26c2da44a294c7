"""The Helm chart and the Dockerfile, checked offline.

Every scenario (the chart's defaults and each ci/*-values.yaml) is linted with `helm lint --strict`, rendered,
and every object validated: built-in kinds against the Kubernetes schemas shipped by kubernetes-validate,
Strimzi and CloudNativePG objects against their CRDs read from ../shared/crds. The workload assertions find
the Deployments and Jobs in the rendered output, so a new service is held to the same rules without
touching these tests.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import CHART, KUBE_VERSION, RELEASE, REPO_ROOT, SCENARIOS, Doc, load_yaml, scenario_args

CRD_DIR = Path(REPO_ROOT).parent / "shared" / "crds"
CRD_GROUPS = ("kafka.strimzi.io", "postgresql.cnpg.io")
WORKLOAD_KINDS = ("Deployment", "Job")
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)
# Environment variables that carry secrets: only ever from a secretKeyRef.
SECRET_ENV = {
    "AUTH_PUBLIC_KEYS",
    "AUTH_SIGNING_KEY",
    "WORKLOAD_SIGNING_KEY",
    "PII_ENCRYPTION_KEYS",
    "BLIND_INDEX_KEY",
    "FLASK_SECRET_KEY",
    "SECOND_FACTOR_KEYS",
    "DATABASE_URL",
    "OUTBOX_DATABASE_URL",
    "MIGRATION_DATABASE_URL",
    "KAFKA_SASL_PASSWORD",
    "PGPASSWORD",
    "AGENCY_TOKEN_PRIVATE_KEY",
    "AGENCY_TLS_CERT",
    "AGENCY_TLS_KEY",
}
COMPONENTS = ("registry", "reporting", "referral", "benefits", "notify", "gateway")
PILOT = ("110111008", "良乡镇", "110111")
SECOND_TOWN = ("110111009", "周口店地区", "110111")


# ---------- helpers over rendered objects ----------


def kind(docs: list[Doc], *kinds: str) -> list[Doc]:
    return [d for d in docs if d["kind"] in kinds]


def workloads(docs: list[Doc]) -> list[Doc]:
    found = kind(docs, *WORKLOAD_KINDS)
    assert found, "no workload rendered"
    return found


def name_of(doc: Doc) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Doc) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def containers(workload: Doc) -> list[Doc]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def component(doc: Doc) -> str:
    return str(doc["metadata"]["labels"]["app.kubernetes.io/component"])


def selector_matches(selector: Doc | None, labels: dict[str, str]) -> bool:
    """Kubernetes label selector semantics (an empty selector matches everything)."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def service_selects(service: Doc, labels: dict[str, str]) -> bool:
    """A Service's selector is a plain map; an empty one selects nothing."""
    selector: dict[str, str] = service["spec"].get("selector") or {}
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def env_of(container: Doc) -> dict[str, Doc]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def effective_env(docs: list[Doc], container: Doc) -> dict[str, str]:
    """Plain values of a container's environment: its ConfigMaps (envFrom) overlaid with its `value:` entries."""
    values: dict[str, str] = {}
    configmaps = {d["metadata"]["name"]: d for d in kind(docs, "ConfigMap")}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            assert ref["name"] in configmaps, f"envFrom names a ConfigMap the chart does not render: {ref['name']}"
            values.update(configmaps[ref["name"]].get("data", {}))
    for name, entry in env_of(container).items():
        if "value" in entry:
            values[name] = entry["value"]
    return values


def network_policies(docs: list[Doc]) -> list[Doc]:
    return kind(docs, "NetworkPolicy")


def is_default_deny(policy: Doc) -> bool:
    spec = policy["spec"]
    return (
        set(spec.get("policyTypes", [])) == {"Ingress", "Egress"} and not spec.get("ingress") and not spec.get("egress")
    )


def own_policy(docs: list[Doc], labels: dict[str, str]) -> Doc | None:
    """The NetworkPolicy that opens a workload's traffic (not the default deny)."""
    for policy in network_policies(docs):
        if not is_default_deny(policy) and selector_matches(policy["spec"]["podSelector"], labels):
            return policy
    return None


def egress_ports(policy: Doc) -> set[int]:
    return {port["port"] for rule in policy["spec"].get("egress", []) for port in rule.get("ports", [])}


def egress_reaches(policy: Doc, labels: dict[str, str], port: int) -> bool:
    for rule in policy["spec"].get("egress", []):
        if port not in {p["port"] for p in rule.get("ports", [])}:
            continue
        for peer in rule.get("to", []):
            if (
                "podSelector" in peer
                and "namespaceSelector" not in peer
                and selector_matches(peer["podSelector"], labels)
            ):
                return True
    return False


def ingress_allows(policy: Doc, labels: dict[str, str], port: int) -> bool:
    for rule in policy["spec"].get("ingress", []):
        if port not in {p["port"] for p in rule.get("ports", [])}:
            continue
        if "from" not in rule:
            return True
        for peer in rule["from"]:
            if (
                "podSelector" in peer
                and "namespaceSelector" not in peer
                and selector_matches(peer["podSelector"], labels)
            ):
                return True
    return False


def deployment_of(docs: list[Doc], name: str) -> Doc:
    for deployment in kind(docs, "Deployment"):
        if component(deployment) == name:
            return deployment
    raise AssertionError(f"no Deployment for {name}")


# ---------- CRD schemas ----------


def _closed(node: Any) -> Any:
    """A CRD's OpenAPI schema for jsonschema: `x-kubernetes-*` extensions dropped, and objects that list their
    properties closed, as the API server's strict field validation treats them (unknown fields rejected)."""
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    out = {key: _closed(value) for key, value in node.items() if not key.startswith("x-kubernetes-")}
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


@cache
def crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    assert CRD_DIR.is_dir(), f"the CRDs are read from {CRD_DIR} (shared/ beside the repository)"
    validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for path in sorted(CRD_DIR.glob("*/*.yaml")):
        crd = load_yaml(path.read_text(encoding="utf-8"))
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        group, crd_kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                schema = _closed(version["schema"]["openAPIV3Schema"])
                validators[(f"{group}/{version['name']}", crd_kind)] = jsonschema.Draft7Validator(schema)
    return validators


# ---------- lint and validation ----------


@pytest.mark.parametrize("lint_scenario", SCENARIOS)
def test_helm_lint_strict(helm: str, lint_scenario: str) -> None:
    command = [helm, "lint", "--strict", "--kube-version", KUBE_VERSION, str(CHART), *scenario_args(lint_scenario)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_builtin_objects_match_kubernetes_schemas(docs: list[Doc]) -> None:
    errors = []
    for doc in docs:
        if doc["apiVersion"].split("/")[0] in CRD_GROUPS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{name_of(doc)}: {'.'.join(map(str, error.path))}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{name_of(doc)}: {error.message}")
    assert not errors, "\n".join(errors)


def test_custom_resources_match_their_crds(docs: list[Doc]) -> None:
    validators = crd_validators()
    errors = []
    custom = [d for d in docs if d["apiVersion"].split("/")[0] in CRD_GROUPS]
    for doc in custom:
        validator = validators.get((doc["apiVersion"], doc["kind"]))
        if validator is None:
            errors.append(f"{name_of(doc)}: no CRD in {CRD_DIR} serves {doc['apiVersion']}")
            continue
        for error in validator.iter_errors(doc):
            errors.append(f"{name_of(doc)}: {'.'.join(map(str, error.absolute_path))}: {error.message[:300]}")
    assert not errors, "\n".join(errors)


def test_no_secret_objects_and_object_names_are_unique(docs: list[Doc]) -> None:
    assert not kind(docs, "Secret"), "the chart references Secrets, it never creates them"
    names = [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in docs]
    duplicates = {n for n in names if names.count(n) > 1}
    assert not duplicates


# ---------- every workload ----------


def test_every_workload_runs_restricted(docs: list[Doc]) -> None:
    for workload in workloads(docs):
        where = name_of(workload)
        spec = pod_spec(workload)
        pod_context = spec["securityContext"]
        assert pod_context["runAsNonRoot"] is True, where
        assert pod_context.get("runAsUser", 1) != 0, where
        assert pod_context["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec.get("automountServiceAccountToken") is False, where
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), where
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in containers(workload):
            here = f"{where} container {container['name']}"
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, here
            assert context["readOnlyRootFilesystem"] is True, here
            assert context.get("privileged", False) is False, here
            assert context.get("runAsUser", 1) != 0, here
            assert "ALL" in context["capabilities"]["drop"], here
            assert not context["capabilities"].get("add"), here
            assert context.get("seccompProfile", pod_context["seccompProfile"])["type"] == "RuntimeDefault", here
            tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{here}: /tmp must be an emptyDir"


def test_every_workload_has_resources(docs: list[Doc]) -> None:
    for workload in workloads(docs):
        for container in containers(workload):
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    assert resource in resources.get(bound, {}), f"{name_of(workload)}: {bound}.{resource} missing"


def test_every_workload_has_the_standard_labels(docs: list[Doc]) -> None:
    expected = {
        "app.kubernetes.io/name": "minorprot",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/part-of": "minorprot",
        "app.kubernetes.io/managed-by": "Helm",
    }
    for workload in workloads(docs):
        for labels in (workload["metadata"]["labels"], pod_labels(workload)):
            for key in STANDARD_LABELS:
                assert labels.get(key), f"{name_of(workload)}: label {key} missing"
            for key, value in expected.items():
                assert labels[key] == value, f"{name_of(workload)}: {key}={labels[key]}"
        assert pod_labels(workload)["app.kubernetes.io/component"] == component(workload)


def test_every_deployment_probes_its_health(docs: list[Doc]) -> None:
    for deployment in kind(docs, "Deployment"):
        for container in pod_spec(deployment)["containers"]:
            where = f"{name_of(deployment)} container {container['name']}"
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            live, ready = container.get("livenessProbe"), container.get("readinessProbe")
            assert live and ready, f"{where}: liveness and readiness probes are required"
            if "grpc" in ports:  # the services: native gRPC health checking, on the plaintext health port with TLS
                health = ports.get("grpc-health", ports["grpc"])
                assert live["grpc"]["port"] == health, where
                assert ready["grpc"]["port"] == health, where
            elif component(deployment) == "gateway":
                assert live["httpGet"]["path"] == "/healthz", where
                assert ready["httpGet"]["path"] == "/readyz", where
                for probe in (live, ready):
                    port = probe["httpGet"]["port"]
                    assert ports.get(port, port) == 8080, where
            else:  # anything else must still probe something real
                assert any(k in live for k in ("grpc", "httpGet", "tcpSocket")), where
                assert any(k in ready for k in ("grpc", "httpGet", "tcpSocket")), where


def test_every_deployment_has_its_companions(docs: list[Doc]) -> None:
    """PDB, HPA, Service, ServiceAccount, NetworkPolicy, checksum/config and topology spread per Deployment."""
    service_accounts = {d["metadata"]["name"] for d in kind(docs, "ServiceAccount")}
    for deployment in kind(docs, "Deployment"):
        where = name_of(deployment)
        labels = pod_labels(deployment)
        name = deployment["metadata"]["name"]
        assert selector_matches(deployment["spec"]["selector"], labels), where
        assert any(selector_matches(p["spec"]["selector"], labels) for p in kind(docs, "PodDisruptionBudget")), (
            f"{where}: no PodDisruptionBudget"
        )
        assert any(
            h["spec"]["scaleTargetRef"]["kind"] == "Deployment" and h["spec"]["scaleTargetRef"]["name"] == name
            for h in kind(docs, "HorizontalPodAutoscaler")
        ), f"{where}: no HorizontalPodAutoscaler"
        assert any(service_selects(s, labels) for s in kind(docs, "Service")), f"{where}: no Service"
        assert pod_spec(deployment)["serviceAccountName"] in service_accounts, f"{where}: no ServiceAccount"
        assert own_policy(docs, labels), f"{where}: no NetworkPolicy of its own"
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        assert re.fullmatch(r"[0-9a-f]{64}", annotations.get("checksum/config", "")), f"{where}: checksum/config"
        spread = pod_spec(deployment).get("topologySpreadConstraints", [])
        assert spread and all(selector_matches(c["labelSelector"], labels) for c in spread), f"{where}: spread"


def test_every_job_has_a_service_account_and_a_network_policy(docs: list[Doc]) -> None:
    service_accounts = {d["metadata"]["name"] for d in kind(docs, "ServiceAccount")}
    for job in kind(docs, "Job"):
        assert pod_spec(job)["serviceAccountName"] in service_accounts, name_of(job)
        assert pod_spec(job)["restartPolicy"] in ("Never", "OnFailure"), name_of(job)
        assert own_policy(docs, pod_labels(job)), f"{name_of(job)}: no NetworkPolicy opens its egress"
        assert "helm.sh/hook" in job["metadata"].get("annotations", {}), f"{name_of(job)} is not a hook"


def test_a_default_deny_policy_covers_every_workload(docs: list[Doc]) -> None:
    deny = [p for p in network_policies(docs) if is_default_deny(p)]
    assert deny, "no default-deny NetworkPolicy"
    for workload in workloads(docs):
        assert any(selector_matches(p["spec"]["podSelector"], pod_labels(workload)) for p in deny), name_of(workload)


def test_no_secret_is_inlined(docs: list[Doc]) -> None:
    for workload in workloads(docs):
        for container in containers(workload):
            for name, entry in env_of(container).items():
                if name in SECRET_ENV:
                    assert "value" not in entry, f"{name_of(workload)}: {name} is inlined"
                    assert "secretKeyRef" in entry.get("valueFrom", {}), (
                        f"{name_of(workload)}: {name} not from a Secret"
                    )
    for configmap in kind(docs, "ConfigMap"):
        leaked = SECRET_ENV & set(configmap.get("data", {}))
        assert not leaked, f"{name_of(configmap)} holds {leaked}"


def test_components_get_the_secrets_they_need(docs: list[Doc]) -> None:
    needs = {
        "registry": {"AUTH_PUBLIC_KEYS", "PII_ENCRYPTION_KEYS", "BLIND_INDEX_KEY", "DATABASE_URL"},
        "reporting": {
            "AUTH_PUBLIC_KEYS",
            "WORKLOAD_SIGNING_KEY",
            "PII_ENCRYPTION_KEYS",
            "BLIND_INDEX_KEY",
            "DATABASE_URL",
        },
        "referral": {
            "AUTH_PUBLIC_KEYS",
            "DATABASE_URL",
            "AGENCY_TOKEN_PRIVATE_KEY",
            "AGENCY_TLS_CERT",
            "AGENCY_TLS_KEY",
        },
        "benefits": {"AUTH_PUBLIC_KEYS", "DATABASE_URL"},
        "notify": {"AUTH_PUBLIC_KEYS", "DATABASE_URL"},
        "gateway": {"AUTH_PUBLIC_KEYS", "AUTH_SIGNING_KEY", "FLASK_SECRET_KEY", "SECOND_FACTOR_KEYS", "DATABASE_URL"},
    }
    for name, wanted in needs.items():
        container = pod_spec(deployment_of(docs, name))["containers"][0]
        assert wanted <= set(env_of(container)), f"{name} lacks {wanted - set(env_of(container))}"
        if name != "gateway":
            assert "AUTH_SIGNING_KEY" not in env_of(container), f"{name} must not hold the token signing key"
        if name != "reporting":
            assert "WORKLOAD_SIGNING_KEY" not in env_of(container), f"{name} must not hold reporting's own key"


def test_every_pod_sends_telemetry_to_the_collector(docs: list[Doc]) -> None:
    collector = deployment_of(docs, "otel-collector")
    service = next(s for s in kind(docs, "Service") if service_selects(s, pod_labels(collector)))
    assert 4317 in {p["port"] for p in service["spec"]["ports"]}
    endpoint = f"http://{service['metadata']['name']}:4317"
    config = next(c for c in kind(docs, "ConfigMap") if c["metadata"]["name"] == service["metadata"]["name"])
    collector_config = yaml.safe_load(config["data"]["config.yaml"])
    assert "otlp" in collector_config["receivers"]
    assert pod_spec(collector)["containers"][0]["image"].startswith("otel/opentelemetry-collector:")
    for workload in workloads(docs):
        if workload is collector:
            continue
        for container in pod_spec(workload)["containers"]:
            env = effective_env(docs, container)
            assert env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == endpoint, name_of(workload)
            assert env.get("OTEL_SERVICE_NAME"), name_of(workload)


# ---------- the design's specifics ----------


def test_a_deployment_per_component(docs: list[Doc], chart_values: Doc) -> None:
    deployed = {component(d) for d in kind(docs, "Deployment")}
    assert deployed == set(chart_values["components"]) | {"otel-collector"}
    assert set(COMPONENTS) <= deployed
    for name, values in chart_values["components"].items():
        template = CHART / "templates" / f"{name}.yaml"
        assert template.is_file(), f"{template} is missing"
        container = pod_spec(deployment_of(docs, name))["containers"][0]
        assert container["command"] == ["python", "-m", values["module"]]
        assert container["args"] == ["serve"]


def test_migrations_are_hook_jobs(docs: list[Doc], chart_values: Doc) -> None:
    jobs = {component(j): j for j in kind(docs, "Job")}
    for name, values in chart_values["components"].items():
        if not values["database"]:
            continue
        job = jobs[f"{name}-migrate"]
        container = pod_spec(job)["containers"][0]
        assert container["command"] == ["python", "-m", values["module"]]
        assert container["args"] == ["migrate"]
        assert "secretKeyRef" in env_of(container)["MIGRATION_DATABASE_URL"]["valueFrom"]
        hooks = job["metadata"]["annotations"]["helm.sh/hook"].split(",")
        assert "pre-upgrade" in hooks


def test_pilot_town_is_onboarded(docs: list[Doc]) -> None:
    assert PILOT in onboarded(docs)


def onboarded(docs: list[Doc]) -> set[tuple[str, str, str]]:
    towns = set()
    for job in kind(docs, "Job"):
        container = pod_spec(job)["containers"][0]
        if container["command"] == ["python", "-m", "services.registry"] and container["args"][0] == "onboard-tenant":
            args = container["args"]
            towns.add(
                (args[args.index("--code") + 1], args[args.index("--name") + 1], args[args.index("--district") + 1])
            )
            hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
            assert {"post-install", "post-upgrade"} <= hooks
    return towns


def test_adding_a_tenant_adds_an_onboarding_job(
    render: Callable[..., list[Doc]], rendered: Callable[[str], list[Doc]], tmp_path: Path
) -> None:
    before = rendered("minimal-values")
    values = tmp_path / "second-town.yaml"
    tenants = [dict(zip(("code", "name", "district"), town, strict=True)) for town in (PILOT, SECOND_TOWN)]
    values.write_text(yaml.safe_dump({"tenants": tenants}, allow_unicode=True), encoding="utf-8")
    after = render("-f", str(CHART / "ci" / "minimal-values.yaml"), "-f", str(values))
    assert onboarded(before) == {PILOT}
    assert onboarded(after) == {PILOT, SECOND_TOWN}
    assert len(kind(after, "Job")) == len(kind(before, "Job")) + 1


def test_a_tenant_outside_its_district_is_refused(helm: str, tmp_path: Path) -> None:
    values = tmp_path / "wrong.yaml"
    values.write_text(yaml.safe_dump({"tenants": [{"code": "120111009", "name": "x", "district": "110111"}]}))
    command = [helm, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "-f", str(values)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "does not belong to district" in result.stderr


def test_services_reach_each_other_only_where_the_design_says(docs: list[Doc]) -> None:
    gateway = deployment_of(docs, "gateway")
    gateway_policy = own_policy(docs, pod_labels(gateway))
    assert gateway_policy
    ports = {
        name: pod_spec(deployment_of(docs, name))["containers"][0]["ports"][0]["containerPort"] for name in COMPONENTS
    }
    for name in COMPONENTS:
        if name == "gateway":
            continue
        callee = deployment_of(docs, name)
        callee_policy = own_policy(docs, pod_labels(callee))
        assert callee_policy
        assert egress_reaches(gateway_policy, pod_labels(callee), ports[name]), f"gateway cannot reach {name}"
        assert ingress_allows(callee_policy, pod_labels(gateway), ports[name]), f"{name} refuses the gateway"
        for other in COMPONENTS:
            if other in ("gateway", name):
                continue
            allowed = (other, name) in {("reporting", "registry"), ("reporting", "notify")}
            caller_policy = own_policy(docs, pod_labels(deployment_of(docs, other)))
            assert caller_policy
            assert egress_reaches(caller_policy, pod_labels(callee), ports[name]) == allowed, f"{other} -> {name}"
            assert ingress_allows(callee_policy, pod_labels(deployment_of(docs, other)), ports[name]) == allowed
    for name in COMPONENTS:
        policy = own_policy(docs, pod_labels(deployment_of(docs, name)))
        assert policy and {53, 4317} <= egress_ports(policy), f"{name}: DNS and the collector must be allowed"


def test_the_agency_api_has_its_own_service_and_policy(docs: list[Doc], render: Callable[..., list[Doc]]) -> None:
    """ADR 0014: the referral pods' agency port behind a Service of its own, open (to agencyApi.from) on that port
    only; the internal port stays the gateway's."""
    referral = deployment_of(docs, "referral")
    labels = pod_labels(referral)
    assert effective_env(docs, pod_spec(referral)["containers"][0])["AGENCY_GRPC_PORT"] == "50063"
    (edge,) = [
        s for s in kind(docs, "Service") if service_selects(s, labels) and s["metadata"]["name"].endswith("-agency-api")
    ]
    assert [(p["port"], p["targetPort"]) for p in edge["spec"]["ports"]] == [(50063, 50063)]
    policies = [
        p
        for p in network_policies(docs)
        if not is_default_deny(p) and selector_matches(p["spec"]["podSelector"], labels)
    ]
    gateway = pod_labels(deployment_of(docs, "gateway"))
    stranger = {"app.kubernetes.io/name": "elsewhere"}
    assert any(ingress_allows(p, stranger, 50063) for p in policies), "agencies cannot reach the agency API"
    assert not any(ingress_allows(p, stranger, 50053) for p in policies), "the internal port is open to strangers"
    assert any(ingress_allows(p, gateway, 50053) for p in policies)

    limited = render("--set", "agencyApi.from[0].ipBlock.cidr=10.20.0.0/16")
    (policy,) = [p for p in network_policies(limited) if p["metadata"]["name"].endswith("-agency-api")]
    assert policy["spec"]["ingress"] == [
        {"from": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 50063}]}
    ]
    assert not [d for d in render("--set", "agencyApi.enabled=false") if d["metadata"]["name"].endswith("-agency-api")]


GRPC_TLS_DIR = "/etc/minorprot/grpc-tls"
SERVICES = COMPONENTS[:-1]


def grpc_tls_files(docs: list[Doc], name: str) -> tuple[dict[str, str], set[str]]:
    """The GRPC_* environment of a component's container and the files its grpc-tls volume mounts there."""
    deployment = deployment_of(docs, name)
    container = pod_spec(deployment)["containers"][0]
    env = {k: v["value"] for k, v in env_of(container).items() if k.startswith("GRPC_") and "value" in v}
    mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == GRPC_TLS_DIR]
    if not mounts:
        return env, set()
    assert mounts[0]["readOnly"] is True
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    secret = volumes[mounts[0]["name"]]["secret"]
    assert secret["secretName"] == "minorprot-grpc-tls"
    return env, {f"{GRPC_TLS_DIR}/{item['path']}" for item in secret["items"] if item["key"] == item["path"]}


def test_grpc_is_tls_between_the_components(rendered: Callable[[str], list[Doc]]) -> None:
    """ADR 0020: every service serves TLS from the operator's Secret, every caller verifies with its CA, the
    gateway holds the CA but no key, and the probes check the plaintext health server nobody else may reach."""
    docs = rendered("default")
    for name in SERVICES:
        env, files = grpc_tls_files(docs, name)
        assert env["GRPC_TLS_CERT_FILE"] == f"{GRPC_TLS_DIR}/tls.crt", name
        assert env["GRPC_TLS_KEY_FILE"] == f"{GRPC_TLS_DIR}/tls.key", name
        assert {env["GRPC_TLS_CERT_FILE"], env["GRPC_TLS_KEY_FILE"]} <= files, name
        container = pod_spec(deployment_of(docs, name))["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["grpc-health"] == int(env["GRPC_HEALTH_PORT"]) == 9465, name
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["grpc"]["port"] == 9465, f"{name} {probe}"
        labels = pod_labels(deployment_of(docs, name))
        policy = own_policy(docs, labels)
        assert policy
        for caller in COMPONENTS:
            assert not ingress_allows(policy, pod_labels(deployment_of(docs, caller)), 9465), f"{caller} -> {name}"
    for caller in ("reporting", "gateway"):
        env, files = grpc_tls_files(docs, caller)
        assert env["GRPC_TLS_CA_FILE"] == f"{GRPC_TLS_DIR}/ca.crt" and env["GRPC_TLS_CA_FILE"] in files, caller
    gateway_env, gateway_files = grpc_tls_files(docs, "gateway")
    assert gateway_files == {f"{GRPC_TLS_DIR}/ca.crt"} and set(gateway_env) == {"GRPC_TLS_CA_FILE"}
    for name in ("registry", "referral", "benefits", "notify"):  # they call nobody
        assert "GRPC_TLS_CA_FILE" not in grpc_tls_files(docs, name)[0], name
    for job in kind(docs, "Job"):  # neither serves nor calls gRPC: no TLS settings that would need the files
        for container in containers(job):
            assert not any(n.startswith("GRPC_TLS") for n in env_of(container)), name_of(job)


def test_grpc_tls_can_be_turned_off(render: Callable[..., list[Doc]]) -> None:
    docs = render("--set", "grpcTls.enabled=false")
    for name in COMPONENTS:
        env, files = grpc_tls_files(docs, name)
        assert not env and not files, name
        container = pod_spec(deployment_of(docs, name))["containers"][0]
        assert not any(v.get("secret") for v in pod_spec(deployment_of(docs, name))["volumes"]), name
        if name != "gateway":
            assert container["livenessProbe"]["grpc"]["port"] == container["ports"][0]["containerPort"], name


def test_reporting_is_told_where_the_registry_and_notify_are(docs: list[Doc]) -> None:
    container = pod_spec(deployment_of(docs, "reporting"))["containers"][0]
    env = effective_env(docs, container)
    assert env["REGISTRY_TARGET"] == f"{RELEASE}-registry:50051"
    assert env["NOTIFY_TARGET"] == f"{RELEASE}-notify:50055"  # a reporter's receipt (SendReceipt), as itself
    assert "WORKLOAD_SIGNING_KEY" in env_of(container)
    gateway_env = effective_env(docs, pod_spec(deployment_of(docs, "gateway"))["containers"][0])
    for name in COMPONENTS[:-1]:
        assert gateway_env[f"{name.upper()}_TARGET"].startswith(f"{RELEASE}-{name}:")


def test_strimzi_kafka_when_enabled(rendered: Callable[[str], list[Doc]], chart_values: Doc) -> None:
    docs = rendered("production-operators-values")
    assert len(kind(docs, "Kafka")) == 1 and len(kind(docs, "KafkaNodePool")) == 1
    for stateful in kind(docs, "Kafka", "KafkaNodePool", "KafkaTopic"):
        assert stateful["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", name_of(stateful)
    topics = {t["spec"]["topicName"] for t in kind(docs, "KafkaTopic")}
    domain = set(chart_values["kafka"]["topics"])
    assert topics == domain | {f"{t}.dlt" for t in domain}
    users = {u["metadata"]["name"]: u for u in kind(docs, "KafkaUser")}
    for name, values in chart_values["components"].items():
        container = pod_spec(deployment_of(docs, name))["containers"][0]
        if not (values["kafka"]["produces"] or values["kafka"]["consumes"]):
            assert f"{RELEASE}-{name}" not in users and "KAFKA_SASL_PASSWORD" not in env_of(container)
            continue
        user = users[f"{RELEASE}-{name}"]
        acls = user["spec"]["authorization"]["acls"]
        granted = {(a["resource"].get("name"), op) for a in acls for op in a["operations"]}
        for topic in values["kafka"]["produces"]:
            assert (topic, "Write") in granted, f"{name} cannot write {topic}"
        for topic in values["kafka"]["consumes"]:
            assert (topic, "Read") in granted and (f"{topic}.dlt", "Write") in granted, f"{name} on {topic}"
        written = {t for t, op in granted if op == "Write"}
        assert written <= set(values["kafka"]["produces"]) | {f"{t}.dlt" for t in values["kafka"]["consumes"]}
        password = env_of(container)["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert password["name"] == user["metadata"]["name"]


def test_external_kafka_and_postgresql(rendered: Callable[[str], list[Doc]]) -> None:
    docs = rendered("external-services-values")
    assert not [d for d in docs if d["apiVersion"].split("/")[0] in CRD_GROUPS]
    external = yaml.safe_load((CHART / "ci" / "external-services-values.yaml").read_text(encoding="utf-8"))
    for name in COMPONENTS:
        container = pod_spec(deployment_of(docs, name))["containers"][0]
        env = effective_env(docs, container)
        if name != "gateway":  # the gateway uses no Kafka (docs/adr/0006)
            assert env["KAFKA_BOOTSTRAP_SERVERS"] == external["kafka"]["external"]["bootstrapServers"]
            assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
            sasl = env_of(container)["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
            assert sasl == {"name": "minorprot-kafka", "key": "password"}
        ref = env_of(container)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "minorprot-db", "key": f"{name}-database-url"}
    topic_jobs = [j for j in kind(docs, "Job") if component(j) == "kafka-topics"]
    assert len(topic_jobs) == 1
    assert pod_spec(topic_jobs[0])["containers"][0]["command"] == ["python", "-m", "platform_runtime.topics"]


def test_cloudnative_pg_when_enabled(rendered: Callable[[str], list[Doc]], chart_values: Doc) -> None:
    docs = rendered("production-operators-values")
    (cluster,) = kind(docs, "Cluster")
    for stateful in kind(docs, "Cluster", "Database"):
        assert stateful["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", name_of(stateful)
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    databases = {d["spec"]["name"]: d for d in kind(docs, "Database")}
    for values in chart_values["components"].values():
        db = values["database"]
        assert databases[db]["spec"]["owner"] == f"{db}_owner"
        assert databases[db]["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
        assert roles[f"{db}_app"].get("bypassrls", False) is False, "the app role must be subject to RLS"
        assert f"{db}_owner" in roles
        assert (f"{db}_relay" in roles) == values["outboxRelay"]


def test_a_silo_tenant_gets_its_own_databases(rendered: Callable[[str], list[Doc]], chart_values: Doc) -> None:
    docs = rendered("silo-tenant-values")
    databases = {d["spec"]["name"] for d in kind(docs, "Database")}
    for name, values in chart_values["components"].items():
        env = effective_env(docs, pod_spec(deployment_of(docs, name))["containers"][0])
        if values["tenantSilos"]:
            assert f"{values['database']}_zhoukoudian" in databases
            assert env["TENANT_DATABASES"] == f"110111009:{values['database']}_zhoukoudian"
        else:
            assert "TENANT_DATABASES" not in env
    assert ("110111009", "周口店地区", "110111") in onboarded(docs)


def test_checksum_follows_the_configuration(
    render: Callable[..., list[Doc]], rendered: Callable[[str], list[Doc]]
) -> None:
    def checksums(objects: list[Doc]) -> dict[str, str]:
        return {
            component(d): d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for d in kind(objects, "Deployment")
        }

    before, after = checksums(rendered("default")), checksums(render("--set", "logLevel=DEBUG"))
    for name in COMPONENTS:
        assert before[name] != after[name], f"{name}: a configuration change must roll the pods"
    assert before["otel-collector"] == after["otel-collector"]


# ---------- values schema ----------


def _schema_objects(node: Any, path: str = "#") -> Iterator[tuple[str, Doc]]:
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path, node
        for key, value in node.items():
            yield from _schema_objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _schema_objects(value, f"{path}/{index}")


def test_values_schema_is_closed_at_every_level() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    assert schema["additionalProperties"] is False
    for path, node in _schema_objects(schema):
        extra = node.get("additionalProperties")
        # fixed keys are closed; maps of user-chosen keys (annotations, nodeSelector, env) only take strings
        assert extra is False or extra == {"type": "string"}, f"{path} is open"
        if extra is False:
            assert "properties" in node, f"{path}"


def test_a_mistyped_value_is_rejected(helm: str) -> None:
    command = [helm, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION]
    result = subprocess.run([*command, "--set", "components.registry.replicaCoutn=3"], capture_output=True, text=True)
    assert result.returncode != 0 and "replicaCoutn" in result.stderr
    result = subprocess.run(
        [*command, "--set", "components.gateway.env.FLASK_SECRET_KEY=x"], capture_output=True, text=True
    )
    assert result.returncode != 0, "a secret must not be accepted as a plain env value"


# ---------- images ----------


DOCKERFILE = REPO_ROOT / "deploy" / "docker" / "Dockerfile"


def dockerfile_stages() -> dict[str, dict[str, Any]]:
    """Stages of the Dockerfile: base, USER and ENTRYPOINT of each (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stages: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            match = re.match(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert match, line
            current = {"base": match.group(1), "user": None, "entrypoint": None, "runs": []}
            stages[match.group(2) or f"stage{len(stages)}"] = current
        elif current is not None and instruction == "USER":
            current["user"] = rest.strip()
        elif current is not None and instruction == "ENTRYPOINT":
            current["entrypoint"] = json.loads(rest)
        elif current is not None and instruction == "RUN":
            current["runs"].append(rest)
    return stages


def effective(stages: dict[str, dict[str, Any]], name: str, field: str) -> Any:
    stage = stages[name]
    while stage[field] is None and stage["base"] in stages:
        stage = stages[stage["base"]]
    return stage[field]


def chain(stages: dict[str, dict[str, Any]], name: str) -> list[str]:
    names = [name]
    while stages[names[-1]]["base"] in stages:
        names.append(stages[names[-1]]["base"])
    return names


@pytest.mark.parametrize("image", COMPONENTS)
def test_dockerfile_builds_a_non_root_image_with_an_existing_entrypoint(image: str) -> None:
    stages = dockerfile_stages()
    assert image in stages, f"no stage named {image} in {DOCKERFILE}"
    user = effective(stages, image, "user")
    assert user, f"{image}: no USER"
    uid = user.split(":")[0]
    assert uid not in ("0", "root") and (not uid.isdigit() or int(uid) >= 1000), f"{image}: USER {user}"
    entrypoint = effective(stages, image, "entrypoint")
    assert entrypoint[:2] == ["python", "-m"], entrypoint
    module = entrypoint[2]
    expected = "gateway" if image == "gateway" else f"services.{image}"
    assert module == expected
    main = REPO_ROOT / Path(*module.split(".")) / "__main__.py"
    assert main.is_file(), f"{image}: the entrypoint {module} has no {main.relative_to(REPO_ROOT)}"
    # the final image derives from the slim runtime only: no stage that installs packages or compilers
    for stage in chain(stages, image):
        for run in stages[stage]["runs"]:
            assert not re.search(r"\b(pip|apt-get install|gcc|build-essential)\b", run), f"{image}: {stage} {run}"


def test_dockerfile_pins_the_base_and_installs_the_generated_package() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base.group(1)), base
    assert re.search(r"pip install --no-deps \./gen/python", text)
    stages = dockerfile_stages()
    for image in COMPONENTS:
        assert "deps" not in chain(stages, image), f"{image} must not derive from the build stage"
    dockerignore = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8")
    assert "**/tests/" in dockerignore


def test_install_helm_script_is_idempotent(helm: str) -> None:
    result = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "install-helm.sh")], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == helm
    assert "building" not in result.stderr, "a second run must not build again"


def _copied_service_packages(stages: dict[str, dict[str, Any]], image: str) -> set[str]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    copied: set[str] = set()
    current = ""
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["FROM"]:
            current = words[3] if len(words) > 3 else ""
        elif words[:1] == ["COPY"] and current in chain(stages, image):
            copied |= {m.group(1) for m in re.finditer(r"\bservices/(\w+)/", line)}
    return copied


@pytest.mark.parametrize("image", COMPONENTS)
def test_every_image_holds_the_service_packages_its_code_imports(image: str) -> None:
    source = REPO_ROOT / ("gateway" if image == "gateway" else f"services/{image}")
    imported = {
        m.group(1)
        for path in source.rglob("*.py")
        if "tests" not in path.parts
        for m in re.finditer(r"^(?:from|import) services\.(\w+)", path.read_text(encoding="utf-8"), re.MULTILINE)
    }
    copied = _copied_service_packages(dockerfile_stages(), image)
    missing = imported - copied
    assert not missing, f"the {image} image imports services {sorted(missing)} its stages never COPY"
    if image == "gateway":  # the gateway reaches the services over gRPC only: its image holds none of them
        importers = [
            str(path.relative_to(REPO_ROOT))
            for path in source.rglob("*.py")
            if re.search(r"^\s*(?:from|import) services\b", path.read_text(encoding="utf-8"), re.MULTILINE)
        ]
        assert not importers, f"gateway code and tests import services: {importers}"
        assert not copied, f"the gateway image holds services {sorted(copied)}"


def test_notify_reaches_smtp_the_carrier_and_webhooks_and_nothing_else_does(docs: list[Doc]) -> None:
    """ADR 0015: notify's channels leave the cluster (SMTP submission, https); no other component may."""

    def external_ports(component: str) -> set[int]:
        labels = pod_labels(deployment_of(docs, component))
        ports = set()
        for policy in network_policies(docs):
            if is_default_deny(policy) or not selector_matches(policy["spec"]["podSelector"], labels):
                continue
            for rule in policy["spec"].get("egress", []):
                if any("ipBlock" in peer for peer in rule.get("to", [])):
                    ports |= {p["port"] for p in rule.get("ports", [])}
        return ports

    assert {587, 465, 443} <= external_ports("notify")  # besides PostgreSQL and Kafka where those are external
    for component in ("registry", "reporting", "referral", "benefits", "gateway"):
        assert not external_ports(component) & {25, 587, 465, 443}, component
    secrets = {
        name
        for name, entry in env_of(pod_spec(deployment_of(docs, "notify"))["containers"][0]).items()
        if "valueFrom" in entry
    }
    assert {"SMS_CARRIER_API_KEY", "WEBHOOK_SIGNING_KEY", "SMTP_PASSWORD"} <= secrets
    gateway_env = env_of(pod_spec(deployment_of(docs, "gateway"))["containers"][0])
    assert "valueFrom" in gateway_env["SMS_INBOUND_KEY"]
