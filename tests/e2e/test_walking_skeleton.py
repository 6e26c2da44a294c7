"""The walking skeleton, end to end, every service its own process.

A caseworker submits a discovery report through the portal's API → reporting stores and triages it and
asks the registry to match or register the child → events flow over Kafka → referral opens a referral by
its routing rules → notify puts a notification in the township caseworker's inbox → the portal shows it.
Checked: each step's effect in each service's own database; one trace across the portal, reporting,
registry, referral and notify, Kafka hops included; and that another town sees none of it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import grpc
import pytest
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc
from sqlalchemy import create_engine, text

from platform_runtime.auth import Principal, Role
from platform_runtime.local_stack import dev_token_issuer
from tests.e2e.conftest import RunningStack
from tests.support.infra import PILOT_TENANT
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
T = TypeVar("T")


def rows(url: str, tenant: str, sql: str, **params: Any) -> list[Any]:
    """Read a service's own database as its owner, with the tenant set as the service does."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})
            return list(connection.execute(text(sql), params).all())
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def submitted(platform: RunningStack) -> dict[str, Any]:
    token = platform.login("caseworker", platform.password)
    name = "李" + "晓明"[: 1 + uuid.uuid4().int % 2]
    status, reply = platform.call(
        "POST",
        "/api/v1/reports",
        token,
        {
            "channel": "staff_hotline",
            "child": {"name": name, "sex": "male", "approximate_age": "8", "description": "穿蓝色外套"},
            "place": {"division_code": PILOT_TENANT + "201", "text": "良乡镇某村村口"},
            "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="minutes"),
            "situation_types": ["wandering"],
            "narrative": "村民来电：一名男孩连续两天独自在村口徘徊，夜里无人接回。",
        },
    )
    assert status == 201, reply
    status, report = platform.call("GET", f"/api/v1/reports/{reply['report_id']}", token)
    assert status == 200, report
    return {"token": token, "receipt_number": reply["receipt_number"], "report": report}


def test_every_step_takes_effect_in_each_service(platform: RunningStack, submitted: dict[str, Any]) -> None:
    report = submitted["report"]
    report_id, child_id = report["report_id"], report["child_id"]
    assert submitted["receipt_number"].startswith("R-")
    assert child_id, f"the report was not linked: {report}"
    db = platform.databases

    stored = rows(
        db["reporting"].owner_url, PILOT_TENANT, "SELECT status, child_id FROM reports WHERE id = :id", id=report_id
    )
    assert [(r.status, r.child_id) for r in stored] == [("linked", child_id)]
    child = rows(db["registry"].owner_url, PILOT_TENANT, "SELECT provisional FROM children WHERE id = :id", id=child_id)
    assert [r.provisional for r in child] == [True]
    eventually(
        lambda: rows(
            db["registry"].owner_url,
            PILOT_TENANT,
            "SELECT 1 FROM timeline_entries WHERE child_id = :c AND reference_id = :r",
            c=child_id,
            r=report_id,
        ),
        what="the report on the child's case-file timeline",
    )
    referrals = eventually(
        lambda: rows(
            db["referral"].owner_url,
            PILOT_TENANT,
            "SELECT id, agency_code, child_id FROM referrals WHERE report_id = :r",
            r=report_id,
        ),
        what="a referral",
    )
    assert {r.agency_code for r in referrals} == {"civil_affairs"}
    eventually(
        lambda: all(
            r.child_id == child_id
            for r in rows(
                db["referral"].owner_url,
                PILOT_TENANT,
                "SELECT child_id FROM referrals WHERE report_id = :r",
                r=report_id,
            )
        ),
        what="the referral to learn the child",
    )
    referral_ids = {r.id for r in referrals}
    eventually(
        lambda: rows(
            db["registry"].owner_url,
            PILOT_TENANT,
            "SELECT 1 FROM timeline_entries WHERE child_id = :c AND reference_id = :r",
            c=child_id,
            r=min(referral_ids),
        ),
        what="the referral on the child's case-file timeline",
    )
    notified = eventually(
        lambda: [
            n
            for n in rows(db["notify"].owner_url, PILOT_TENANT, "SELECT subject_id, recipient_role FROM notifications")
            if n.subject_id in referral_ids
        ],
        what="a notification",
    )
    assert {n.recipient_role for n in notified} == {"caseworker"}

    # The portal shows it in the caseworker's inbox.
    inbox = eventually(
        lambda: [
            n
            for n in platform.call("GET", "/api/v1/inbox", submitted["token"])[1]["notifications"]
            if n.get("subject_id") in referral_ids
        ],
        what="the notification in the portal inbox",
    )
    assert inbox


def test_one_trace_spans_the_portal_and_every_service(platform: RunningStack, submitted: dict[str, Any]) -> None:
    report_id = submitted["report"]["report_id"]

    def trace_of_submission() -> str | None:
        for span in platform.traces.snapshot():
            if span.service == "reporting" and span.name.endswith("SubmitReport"):
                return span.trace_id
        return None

    trace_id = eventually(trace_of_submission, timeout=30, what="the reporting span")
    wanted = {"gateway", "reporting", "registry", "referral", "notify"}
    # The Kafka hops are in the trace: publish spans of the relays and process spans of the consumers.
    # (Topic names on the wire carry this test stack's prefix.) Spans arrive as each process exports them, and
    # notify also joins the trace through other topics (registry.case): wait for each hop, not for a service.
    hops = {
        ("reporting", "reporting.report publish"),
        ("referral", "reporting.report process"),
        ("notify", "referral.referral process"),
    }

    def trace_with_every_hop() -> list[Any] | None:
        spans = [s for s in platform.traces.snapshot() if s.trace_id == trace_id]
        services = {s.service for s in spans}
        found = {
            (service, hop) for service, hop in hops for s in spans if s.service == service and s.name.endswith(hop)
        }
        return spans if wanted <= services and found == hops else None

    spans = eventually(trace_with_every_hop, timeout=60, what=f"spans of {wanted} and the hops {sorted(hops)}")
    assert wanted <= {s.service for s in spans}
    assert report_id


def test_another_town_sees_none_of_it(platform: RunningStack, submitted: dict[str, Any]) -> None:
    report = submitted["report"]
    other = platform.login("zhoukoudian_caseworker", platform.other_town_password)
    status, _ = platform.call("GET", f"/api/v1/reports/{report['report_id']}", other)
    assert status == 404
    _, listed = platform.call("GET", "/api/v1/reports", other)
    assert report["report_id"] not in {r["report_id"] for r in listed["reports"]}
    _, referrals = platform.call("GET", f"/api/v1/referrals?report_id={report['report_id']}", other)
    assert referrals["referrals"] == []
    _, inbox = platform.call("GET", "/api/v1/inbox", other)
    assert inbox["notifications"] == []
    status, _ = platform.call("GET", f"/api/v1/children/{report['child_id']}/case-file?purpose=checking", other)
    assert status == 404


def test_a_benefit_reaches_the_childs_case_file(platform: RunningStack, submitted: dict[str, Any]) -> None:
    """A baby with local household registration is registered → benefits insures it (0–3) → the registry puts
    the enrolment on the child's timeline, from the benefits service's event."""
    born = date.today() - timedelta(days=200)
    # Straight to the registry, with a token for it (the API's token is for the gateway alone).
    caseworker = Principal("e2e-caseworker", "caseworker", Role.CASEWORKER, PILOT_TENANT, PILOT_TENANT[:6])
    token = dev_token_issuer(platform.stack.config.data_dir).issue(caseworker, "registry")
    with grpc.insecure_channel(f"127.0.0.1:{platform.stack.config.grpc_port('registry')}") as channel:
        child = (
            registry_pb2_grpc.RegistryServiceStub(channel)
            .RegisterChild(
                registry_pb2.RegisterChildRequest(
                    legal_name="周小禾",
                    birth_date=common_pb2.Date(year=born.year, month=born.month, day=born.day),
                    household_division_code=PILOT_TENANT + "201",
                    residence_division_code=PILOT_TENANT + "201",
                ),
                metadata=(("authorization", f"Bearer {token}"),),
            )
            .child
        )
    db = platform.databases
    enrolment = eventually(
        lambda: rows(
            db["benefits"].owner_url,
            PILOT_TENANT,
            "SELECT id FROM insurance_enrolments WHERE child_id = :c AND status = 'enrolled'",
            c=child.child_id,
        ),
        what="the child's insurance",
    )
    timeline = eventually(
        lambda: rows(
            db["registry"].owner_url,
            PILOT_TENANT,
            "SELECT kind, source_service FROM timeline_entries WHERE child_id = :c AND reference_id = :r",
            c=child.child_id,
            r=enrolment[0].id,
        ),
        what="the insurance on the child's case-file timeline",
    )
    assert [(t.kind, t.source_service) for t in timeline] == [("insurance_enrolled", "benefits")]
