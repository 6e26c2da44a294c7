"""A crisis report's page shows its escalation: who was alerted, escalated to and acknowledged, when, by name
and role (reporting keeps the steps from notify); a report that was never a crisis does not ask for them."""

from __future__ import annotations

from flask.testing import FlaskClient
from google.protobuf import timestamp_pb2
from minorprot.reporting.v1 import crisis_steps_pb2

from gateway.clients import BackendError
from gateway.tests.unit.fakes import FakeBackends
from gateway.tests.unit.test_report_reads import submitted

S = crisis_steps_pb2


def at(minute: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=1_764_813_600 + 60 * minute)  # 2025-12-04 10:00 Beijing time


STEPS = [
    S.CrisisStep(
        kind="alerted",
        step=1,
        level="duty_officer",
        people=[S.StepPerson(recipient="user:duty1", name="王值班")],
        at=at(0),
    ),
    S.CrisisStep(
        kind="escalated",
        step=2,
        level="town_admin",
        people=[S.StepPerson(recipient="role:town_admin"), S.StepPerson(recipient="user:admin1", name="李镇管")],
        at=at(15),
    ),
    S.CrisisStep(
        kind="acknowledged", people=[S.StepPerson(recipient="user:admin1", name="李镇管")], via="sms", at=at(17)
    ),
]


def test_a_crisis_reports_page_shows_who_was_told_and_who_acknowledged(
    client: FlaskClient, backends: FakeBackends
) -> None:
    report_id = submitted(client, backends)
    backends.reports[0].crisis = True
    backends.crisis_steps = STEPS
    page = client.get(f"/reports/{report_id}").get_data(as_text=True)
    timeline = page[page.index('id="crisis-steps"') :]
    timeline = timeline[: timeline.index("</ol>")]
    assert [line.split("</time>")[0][-16:] for line in timeline.split("<li")[1:]] == [
        "2025-12-04 10:00",
        "2025-12-04 10:15",
        "2025-12-04 10:17",
    ]
    assert "告警已发送至" in timeline and "当日值班人员:王值班" in timeline
    assert "乡镇管理员:乡镇管理员、李镇管" in timeline
    assert "已确认" in timeline and "李镇管 (短信回复)" in timeline
    assert backends.last("list_crisis_steps")[1] == report_id
    client.get("/language/en")
    english = client.get(f"/reports/{report_id}").get_data(as_text=True)
    assert "Duty officer of the day:王值班" in english and "李镇管 (SMS reply)" in english


def test_a_report_that_was_never_a_crisis_does_not_ask_and_the_page_survives_without_the_steps(
    client: FlaskClient, backends: FakeBackends
) -> None:
    report_id = submitted(client, backends)
    backends.reports[0].crisis = False
    backends.crisis_steps = STEPS
    page = client.get(f"/reports/{report_id}").get_data(as_text=True)
    assert 'id="crisis-steps"' not in page
    assert all(name != "list_crisis_steps" for name, _, _ in backends.calls)

    backends.reports[0].crisis = True

    def unavailable(*_: object) -> list[S.CrisisStep]:
        raise BackendError("UNAVAILABLE", "reporting is restarting")

    backends.list_crisis_steps = unavailable  # type: ignore[method-assign,assignment]
    reply = client.get(f"/reports/{report_id}")
    assert reply.status_code == 200 and 'id="crisis-steps"' not in reply.get_data(as_text=True)
