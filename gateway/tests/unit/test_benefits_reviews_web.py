"""The periodic review (复核) on the benefits pages: an approved application whose entitlement is due for review
is marked "review due" on the list and on its page, and the town's staff record the review there
(RecordReview). The benefits service itself is faked here; tests/e2e/test_benefits_reviews_browser.py runs the
same pages against the real one."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from minorprot.benefits.v1 import benefits_pb2
from minorprot.common.v1 import common_pb2

from gateway.clients import Caller
from gateway.tests.unit.conftest import csrf_from, login
from gateway.tests.unit.fakes import FakeBackends

APPROVED = benefits_pb2.Application(
    application_id="app1",
    tenant="110111008",
    child_id="child1",
    benefit_code="BLA_ORPHAN",
    status="approved",
    review_due_on=common_pb2.Date(year=2025, month=3, day=1),
    review_due=True,
)


def reply_with(backends: FakeBackends, application: benefits_pb2.Application) -> None:
    recorded = backends.benefits

    def benefits(caller: Caller, method: str, request: Any) -> Any:
        reply = recorded(caller, method, request)
        if method == "ListApplications":
            reply.applications.append(application)
        elif hasattr(reply, "application"):
            reply.application.CopyFrom(application)
        return reply

    backends.benefits = benefits  # type: ignore[method-assign]


def test_an_application_due_for_review_is_marked_on_the_list_and_its_page(
    client: FlaskClient, backends: FakeBackends
) -> None:
    reply_with(backends, APPROVED)
    login(client)
    listed = client.get("/benefits/applications").get_data(as_text=True)
    assert 'class="review-due">待复核<' in listed
    page = client.get("/benefits/applications/app1").get_data(as_text=True)
    assert 'id="review">2025-03-01 <strong id="review-due">待复核</strong>' in page
    assert 'id="record-review"' in page


def test_the_town_records_the_review(client: FlaskClient, backends: FakeBackends) -> None:
    reply_with(backends, APPROVED)
    login(client)
    token = csrf_from(client, "/benefits/applications/app1")
    posted = client.post("/benefits/applications/app1", data={"action": "record_review", "csrf_token": token})
    assert posted.status_code == 302
    _, request = backends.last("RecordReview")
    assert request.application_id == "app1"


def test_an_application_not_due_shows_its_next_review_only(client: FlaskClient, backends: FakeBackends) -> None:
    not_due = benefits_pb2.Application()
    not_due.CopyFrom(APPROVED)
    not_due.review_due = False
    reply_with(backends, not_due)
    login(client)
    page = client.get("/benefits/applications/app1").get_data(as_text=True)
    assert 'id="review">2025-03-01</dd>' in page
    assert "review-due" not in page and "record-review" not in page
    assert "review-due" not in client.get("/benefits/applications").get_data(as_text=True)
