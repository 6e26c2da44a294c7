"""Fixtures of the chart tests: helm (built from the Go module proxy when missing) and the rendered scenarios.

Every scenario under deploy/helm/minorprot/ci/ (plus the chart's defaults) is rendered once per session and
shared by the tests; a test that needs other values renders them itself with `render`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "deploy" / "helm" / "minorprot"
INSTALL_HELM = REPO_ROOT / "scripts" / "install-helm.sh"
# Kubernetes version the objects are validated against (kubernetes-validate ships its schemas).
KUBE_VERSION = "1.33.0"
RELEASE = "minorprot"
NAMESPACE = "minorprot"
# The chart's own values.yaml alone, then every ci/*-values.yaml.
SCENARIOS = ["default", *sorted(p.name.removesuffix(".yaml") for p in (CHART / "ci").glob("*-values.yaml"))]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Doc = dict[str, Any]


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - the safe loader (its C version when available)


def load_yaml_documents(text: str) -> list[Doc]:
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc]


def scenario_args(scenario: str) -> list[str]:
    return [] if scenario == "default" else ["-f", str(CHART / "ci" / f"{scenario}.yaml")]


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of a helm binary of the pinned version; scripts/install-helm.sh builds it once (a few minutes)."""
    result = subprocess.run(["bash", str(INSTALL_HELM)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"scripts/install-helm.sh failed:\n{result.stderr[-4000:]}")
    path = result.stdout.strip().splitlines()[-1]
    assert Path(path).is_file(), path
    return path


@pytest.fixture(scope="session")
def render(helm: str) -> Callable[..., list[Doc]]:
    """`render(*helm_args)`: the objects of `helm template` with extra arguments (e.g. -f file, --set k=v)."""

    def _render(*args: str) -> list[Doc]:
        command = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
        result = subprocess.run([*command, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise AssertionError(f"helm template {' '.join(args)} failed:\n{result.stderr}")
        return load_yaml_documents(result.stdout)

    return _render


@pytest.fixture(scope="session")
def rendered(render: Callable[..., list[Doc]]) -> Iterator[Callable[[str], list[Doc]]]:
    """`rendered(scenario)`: the objects of one scenario, rendered once per session."""
    cache: dict[str, list[Doc]] = {}

    def _get(scenario: str) -> list[Doc]:
        if scenario not in cache:
            cache[scenario] = render(*scenario_args(scenario))
        return cache[scenario]

    yield _get


@pytest.fixture(params=SCENARIOS)
def scenario(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def docs(scenario: str, rendered: Callable[[str], list[Doc]]) -> list[Doc]:
    return rendered(scenario)


@pytest.fixture(scope="session")
def chart_values() -> Doc:
    values: Doc = load_yaml((CHART / "values.yaml").read_text(encoding="utf-8"))
    return values
