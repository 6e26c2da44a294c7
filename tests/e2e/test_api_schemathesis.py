"""The JSON API under /api/v1 fuzzed from its own OpenAPI document, against the whole platform (every service as
its own process on PostgreSQL, the real Kafka broker): no request, however malformed, gets a 5xx, and every
answer has a documented status and matches the documented body, the one error shape included.

schemathesis fuzzes every operation as the pilot town's caseworker (a bearer token) and with no credentials,
with valid and invalid data (its positive and negative modes, boundary values from its coverage phase). Then
what a fuzzer rarely finds is sent to every operation by hand and judged by the same checks: another town's
ids, huge strings, bytes that are not UTF-8, NUL, lone surrogates, negative, huge and infinite numbers.

The portal's pages and forms get the same treatment last (signed in as people of five roles, their sessions
made before the fuzzer's wrong passwords throttle sign-ins): every route the gateway serves, with hostile path
values and the other town's ids, GET and POST (with the session's CSRF token and hostile text in every field its
page's forms have): no 5xx, and no page of the other town's child or report.

Run time is bounded: a few derandomized examples per operation, no shrinking, one worker.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from platform_runtime.settings import KafkaSettings
from tests.e2e.conftest import RunningStack, running_platform
from tests.support.infra import OTHER_TENANT, PILOT_TENANT
from tests.support.second_factor import demo_code

pytestmark = pytest.mark.e2e

PORT_OFFSET = 460  # clear of `make up` (0), the browser tests (100-280), the e2e stack (200), benches and faults
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SEED = 20261204
EXAMPLES_PER_OPERATION = 5
HUGE_TEXT = "汉" * 20_000
NOT_TEXT = ["\x00", "a\ud800b"]
NUMBERS = [-1, 2**64, 1.5]
WRONG_SHAPES: list[Any] = [None, [], [{}], {"\ud800": 1}]
OTHER_CHILD = "外镇测试"  # the other town's child's name: no page of the pilot town's people may show it
PORTAL_USERS = ("caseworker", "town_admin", "police_officer", "finance_auditor", "district_officer")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FIELD = re.compile(r'<(?:input|textarea|select)[^>]*\bname="([^"]+)"')
PATH_VALUES = ["%00", "%ED%A0%80", "x" * 3000, "..%2F..%2Fadmin", "99999999999999999999"]
FORM_VALUES = ["a\x00b", "汉" * 20_000, "<script>alert(1)</script>", "-1e999"]
# Signing out, in, or switching language is not a page to probe with the session the probe needs.
NOT_PROBED = ("/logout", "/login", "/language/", "/static/")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, postgres_url: str, kafka: KafkaSettings) -> Iterator[RunningStack]:
    with running_platform(tmp_path_factory.mktemp("stack"), postgres_url, kafka, PORT_OFFSET) as running:
        yield running


@dataclass(frozen=True)
class Seeded:
    caseworker_token: str
    other_town_ids: list[str]  # a child and a report the pilot town's caseworker must not reach
    pilot_ids: list[str]  # a child and a report of the pilot town
    portal: dict[str, requests.Session]  # signed in to the portal, by username


def _child_and_report(stack: RunningStack, token: str, town: str, name: str) -> list[str]:
    status, registered = stack.call(
        "POST",
        "/api/v1/children",
        token,
        {"legal_name": name, "sex": "female", "birth_date": "2015-03-02", "confirmed_not_duplicate": True},
    )
    assert status == 201, registered
    status, submitted = stack.call(
        "POST",
        "/api/v1/reports",
        token,
        {
            "channel": "staff_walk_in",
            "occurred_at": "2026-11-30T09:00",
            "situation_types": ["de_facto_unattended"],
            "narrative": "家访发现 found on a home visit",
            "place": {"division_code": town},
            "child": {"name": name},
        },
    )
    assert status == 201, submitted
    return [registered["child"]["child_id"], submitted["report_id"]]


@pytest.fixture(scope="module")
def seeded(stack: RunningStack) -> Seeded:
    """Both towns' caseworkers sign in before any fuzzing (the fuzzer's wrong passwords throttle sign-ins from
    this address) and each records a child and a report: the pilot town's give the lists real rows to check
    against their schemas, the other town's are the ids no one in the pilot town may reach."""
    caseworker = stack.login("caseworker", stack.password)
    other = stack.login("zhoukoudian_caseworker", stack.other_town_password)
    pilot = _child_and_report(stack, caseworker, PILOT_TENANT, "周测试")
    portal = {user: _portal_session(stack, user) for user in PORTAL_USERS}
    return Seeded(caseworker, _child_and_report(stack, other, OTHER_TENANT, OTHER_CHILD), pilot, portal)


def _csrf(page: str) -> str:
    found = CSRF.search(page)
    assert found, page[:2000]
    return found.group(1)


def _portal_session(stack: RunningStack, username: str) -> requests.Session:
    """Signed in as a person is: the password, then the authenticator's code (the demo users' comes from it)."""
    session = requests.Session()
    login = session.get(f"{stack.base_url}/login", timeout=30)
    form = {"username": username, "password": stack.password, "csrf_token": _csrf(login.text)}
    reply = session.post(f"{stack.base_url}/login", data=form, timeout=30)
    if reply.url.endswith("/login/code"):
        code = demo_code(stack.password, f"{stack.base_url}/{username}")
        reply = session.post(
            f"{stack.base_url}/login/code", data={"code": code, "csrf_token": _csrf(reply.text)}, timeout=30
        )
    assert 'id="whoami"' in reply.text, f"{username} could not sign in to the portal: {reply.url}"
    return session


def _fuzz(stack: RunningStack, workdir: Path, *headers: str) -> subprocess.CompletedProcess[str]:
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "run", f"{stack.base_url}/api/v1/openapi.json"),
        *("--url", stack.base_url, "--checks", ",".join(check.__name__ for check in CHECKS)),
        *("--phases", "examples,coverage,fuzzing", "--max-examples", str(EXAMPLES_PER_OPERATION)),
        *("--seed", str(SEED), "--generation-deterministic", "--no-shrink"),
        *("--workers", "1", "--request-timeout", "30", "--continue-on-failure", "--suppress-health-check", "all"),
        *("--no-color", "--warnings", "off"),
        *(option for header in headers for option in ("--header", header)),
    ]
    # In a folder of its own: schemathesis keeps its state in ./.schemathesis.
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600, check=False)


def test_caseworker_gets_no_server_error_nor_undocumented_answer(
    stack: RunningStack, seeded: Seeded, tmp_path: Path
) -> None:
    run = _fuzz(stack, tmp_path, f"Authorization: Bearer {seeded.caseworker_token}")
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]


def test_anonymous_caller_gets_no_server_error_nor_undocumented_answer(
    stack: RunningStack, seeded: Seeded, tmp_path: Path
) -> None:
    run = _fuzz(stack, tmp_path)
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]


def _hostile_requests(path: str, spec: dict[str, Any], other_ids: list[str]) -> Iterator[tuple[bool, dict[str, Any]]]:
    """(whether it names another town's record, requests.request keyword arguments): one hostile change at a
    time to a plausible call."""
    names = [p["name"] for p in spec.get("parameters", []) if p["in"] == "path"]
    query = [p["name"] for p in spec.get("parameters", []) if p["in"] == "query"]
    body_schema = spec.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    properties = list(body_schema.get("properties", {})) or ["text", "child_id", "legal_name"]

    def url(value: str) -> str:
        filled = path
        for name in names:
            filled = filled.replace("{" + name + "}", value)
        return filled

    plausible = url("00000000-0000-0000-0000-000000000000")
    if names:
        for value in other_ids:
            yield True, {"url": url(value), "json": {}}
        for value in ["%00", "%FF%FE", "%ED%A0%80", "-1", "9" * 40, "x" * 5000, "..%2F..%2Fme"]:
            yield False, {"url": url(value), "json": {}}
    for name in query:
        for raw in ["%00", "%FF%FE", "%ED%A0%80", "-1", "9" * 40, "-" + "9" * 40, "1e999", "x" * 5000]:
            yield False, {"url": f"{plausible}?{name}={raw}"}
    if "requestBody" in spec or spec.get("_method") == "post":
        for raw_body, content_type in (
            (b"\xff\xfe\x00{", "application/json"),
            (b'{"a": 1e999, "b": -1e999, "c": NaN}', "application/json"),
            (b"[1, 2]", "application/json"),
            ("text=é".encode("latin-1"), "text/plain"),
        ):
            yield False, {"url": plausible, "data": raw_body, "headers": {"Content-Type": content_type}}
        for name in properties:
            for value in [*NOT_TEXT, HUGE_TEXT, *NUMBERS, *WRONG_SHAPES]:
                yield False, {"url": plausible, "json": {name: value}}
            for number in (b"-1e999", b"99999999999999999999999999"):
                yield (
                    False,
                    {
                        "url": plausible,
                        "data": b'{"' + name.encode() + b'": ' + number + b"}",
                        "headers": {"Content-Type": "application/json"},
                    },
                )


def test_hostile_inputs_get_no_server_error(stack: RunningStack, seeded: Seeded) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.base_url}/api/v1/openapi.json")
    failures: list[str] = []
    session = requests.Session()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document itself is valid
        operation = result.ok()
        method = operation.method.upper()
        spec = operation.definition.raw | {"_method": operation.method.lower()}
        case = schema.make_case(operation=operation)
        for who in ({"Authorization": f"Bearer {seeded.caseworker_token}"}, {}):
            for other_town, hostile in _hostile_requests(operation.path, spec, seeded.other_town_ids):
                url = stack.base_url + hostile.pop("url")
                reply = session.request(method, url, headers=who | hostile.pop("headers", {}), timeout=30, **hostile)
                if other_town and reply.status_code < 400:
                    failures.append(f"{method} {url}: another town's record answered {reply.status_code}")
                try:
                    case.validate_response(reply, checks=CHECKS)
                except FailureGroup as failed:
                    failures.append(f"{method} {url[:300]} {hostile!r:.300}: {failed}"[:3000])
    assert not failures, "\n\n".join(failures[:40]) + f"\n\n{len(failures)} failures"


def _portal_routes(stack: RunningStack) -> list[tuple[str, set[str]]]:
    """Every route the gateway serves, as Flask lists them from the gateway's own settings: (rule, methods)."""
    listed = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "gateway.app:create_app", "routes", "--all-methods"],
        env=stack.stack.config.environment("gateway"),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    routes = []
    for line in listed.splitlines()[2:]:
        endpoint, methods, rule = re.split(r"\s{2,}", line.strip())  # columns padded with spaces
        if not rule.startswith(("/api/", *NOT_PROBED)) and endpoint != "static":
            routes.append((rule, {method.strip() for method in methods.split(",")} - {"HEAD", "OPTIONS"}))
    return routes


PARAMETER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


def _filled(rule: str, ids: list[str], other: str) -> str:
    """The rule with its child and report ids from `ids` (child, report) and every other parameter `other`."""
    by_name = {"child_id": ids[0], "report_id": ids[1]}
    return PARAMETER.sub(lambda found: by_name.get(found.group(1), other), rule)


def test_portal_pages_and_forms_get_no_server_error_nor_show_another_town(stack: RunningStack, seeded: Seeded) -> None:
    routes = _portal_routes(stack)
    assert len(routes) > 60, routes
    failures: list[str] = []
    probes = 0
    for username, session in seeded.portal.items():
        token = _csrf(session.get(f"{stack.base_url}/notifications/me", timeout=30).text)
        for rule, methods in routes:
            names = set(PARAMETER.findall(rule))
            # The other town's child and report where the route names one; hostile values in every parameter.
            paths = [(_filled(rule, seeded.other_town_ids, "x"), True)] if names & {"child_id", "report_id"} else []
            paths += [(PARAMETER.sub(value, rule), False) for value in PATH_VALUES] if names else [(rule, False)]
            for path, other_town in paths:
                if "GET" not in methods:
                    continue
                probes += 1
                reply = session.get(stack.base_url + path, timeout=30, allow_redirects=False)
                if reply.status_code >= 500:
                    failures.append(f"{username} GET {path[:200]}: {reply.status_code}")
                elif other_town and OTHER_CHILD in reply.text:
                    failures.append(f"{username} GET {path}: the other town's child shown")
            if "POST" not in methods:
                continue
            # Hostile text in every field the page's own forms have, posted to the pilot town's record, and an
            # empty form to the other town's.
            own = _filled(rule, seeded.pilot_ids, "x")
            page = session.get(stack.base_url + own, timeout=30).text if "GET" in methods else ""
            fields = set(FIELD.findall(page)) - {"csrf_token"} or {"text", "reason", "note", "name", "child_id"}
            posts = [(own, {name: value for name in fields}) for value in FORM_VALUES]
            # The other town's record asked for with a purpose, as the audited reads want.
            posts += [(path, {"purpose": "核实情况"}) for path, other_town in paths if other_town]
            for path, form in posts:
                probes += 1
                reply = session.post(
                    stack.base_url + path, data=form | {"csrf_token": token}, timeout=30, allow_redirects=False
                )
                if reply.status_code >= 500:
                    sample = next(iter(form.values()), "")[:20]
                    failures.append(f"{username} POST {path[:200]} {sample!r}: {reply.status_code}")
                elif OTHER_CHILD in reply.text:
                    failures.append(f"{username} POST {path}: the other town's child shown")
    print(f"portal probes: {probes} requests over {len(routes)} routes as {len(seeded.portal)} people")
    assert not failures, "\n".join(failures[:60]) + f"\n{len(failures)} failures"
