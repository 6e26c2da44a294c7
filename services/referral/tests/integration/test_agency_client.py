"""The example agency client (services/referral/agency_client) against the real TLS edge: list, a change retried
with the same key, completion, and following the stream across a restart of the client."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from services.referral.agency_client.cli import main
from services.referral.tests.integration.builders import submitted
from services.referral.tests.integration.test_agency_api import issue, stack
from tests.support.events import message

pytestmark = pytest.mark.integration

__all__ = ["stack"]  # a fixture, used by name


def client(stack_, token: str, ca_file: str, *args: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    assert main(["--target", stack_.edge_target, "--ca-file", ca_file, "--token", token, *args], out=out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_example_client_works_and_follows_referrals(stack, consumer, secrets, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(stack.certificate)
    _, token = issue(stack, secrets, "education")
    for number in range(2):
        consumer.process(message(submitted(f"report-c{number}", ["out_of_school"]), f"event-c{number}"))

    listed = client(stack, token, str(ca_file), "list")
    assert sorted(r["report_id"] for r in listed) == ["report-c0", "report-c1"]
    referral_id = str(next(r["referral_id"] for r in listed if r["report_id"] == "report-c0"))
    first = client(stack, token, str(ca_file), "accept", referral_id, "--note", "收到", "--key", "k-1")
    again = client(stack, token, str(ca_file), "accept", referral_id, "--note", "收到", "--key", "k-1")
    assert first == again and first[0]["status"] == "accepted"
    done = client(stack, token, str(ca_file), "complete", referral_id, "--outcome", "已复学", "--key", "k-2")
    assert done[0]["status"] == "completed"

    cursor = tmp_path / "seen.cursor"
    head = client(stack, token, str(ca_file), "follow", "--cursor-file", str(cursor), "--count", "3")
    rest = client(stack, token, str(ca_file), "follow", "--cursor-file", str(cursor), "--count", "1")
    changes = [(c["referral"]["report_id"], c["referral"]["status"]) for c in head + rest]
    assert changes == [
        ("report-c0", "sent"),
        ("report-c1", "sent"),
        ("report-c0", "accepted"),
        ("report-c0", "completed"),
    ]


def test_without_a_credential_or_with_a_wrong_one_it_says_so(stack, tmp_path, capsys):
    assert main(["--target", stack.edge_target, "list"]) == 2
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(stack.certificate)
    assert main(["--target", stack.edge_target, "--ca-file", str(ca_file), "--token", "x.y.z", "list"]) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err
