"""The JSON API under /api/v1 fuzzed from its own OpenAPI document, against the whole platform (every service as
its own process on PostgreSQL, the real Kafka broker): no request, however malformed, gets a 5xx, and every
answer has a documented status and matches the documented body, the one error shape included.

schemathesis fuzzes every operation as the pilot town's caseworker (a bearer token) and with no credentials,
with valid and invalid data (its positive and negative modes, boundary values from its coverage phase). Then
what a fuzzer rarely finds is sent to every operation by hand and judged by the same checks: another town's
ids, huge strings, bytes that are not UTF-8, NUL, lone surrogates, negative, huge and infinite numbers.

Run time is bounded: a few derandomized examples per operation, no shrinking, one worker.
"""

from __future__ import annotations

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

pytestmark = pytest.mark.e2e

PORT_OFFSET = 460  # clear of `make up` (0), the browser tests (100-280), the e2e stack (200), benches and faults
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SEED = 20261204
EXAMPLES_PER_OPERATION = 5
HUGE_TEXT = "汉" * 20_000
NOT_TEXT = ["\x00", "a\ud800b"]
NUMBERS = [-1, 2**64, 1.5]
WRONG_SHAPES: list[Any] = [None, [], [{}], {"\ud800": 1}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, postgres_url: str, kafka: KafkaSettings) -> Iterator[RunningStack]:
    with running_platform(tmp_path_factory.mktemp("stack"), postgres_url, kafka, PORT_OFFSET) as running:
        yield running


@dataclass(frozen=True)
class Seeded:
    caseworker_token: str
    other_town_ids: list[str]  # a child and a report the pilot town's caseworker must not reach


def _child_and_report(stack: RunningStack, token: str, town: str) -> list[str]:
    status, registered = stack.call(
        "POST",
        "/api/v1/children",
        token,
        {"legal_name": "周测试", "sex": "female", "birth_date": "2015-03-02", "confirmed_not_duplicate": True},
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
            "child": {"name": "周测试"},
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
    _child_and_report(stack, caseworker, PILOT_TENANT)
    return Seeded(caseworker, _child_and_report(stack, other, OTHER_TENANT))


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
