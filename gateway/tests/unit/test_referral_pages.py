"""The referral pages against fake services: who is offered which page, and what each form sends (the pages are
walked in the browser against the real referral service in tests/e2e/test_referral_browser.py)."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient
from minorprot.referral.v1 import referral_pb2, routing_pb2

from gateway import bootstrap
from gateway.accounts import NewUser
from gateway.tests.unit.conftest import PASSWORD, TOWN, csrf_from, login
from gateway.tests.unit.fakes import FakeBackends, stamp
from platform_runtime.auth import Role


def referral(status: str = "sent") -> referral_pb2.Referral:
    return referral_pb2.Referral(
        referral_id="ref1",
        tenant="110111008",
        report_id="rep1",
        agency_code="police",
        agency_name="区公安局",
        status=status,
        opened_at=stamp(),
        due_at=stamp(),
        version=2,
        case_facts=referral_pb2.CaseFacts(situation_types=["wandering"], approximate_age=9, place_text="良乡站"),
    )


@pytest.fixture
def with_referral(backends: FakeBackends) -> FakeBackends:
    backends.referral_replies["GetReferral"] = referral_pb2.GetReferralResponse(referral=referral())
    backends.referral_replies["ListAgencyReferrals"] = referral_pb2.ListAgencyReferralsResponse(referrals=[referral()])
    backends.referral_replies["ListAgencies"] = routing_pb2.ListAgenciesResponse(
        agencies=[routing_pb2.DirectoryAgency(code="health", name_zh="区卫生局")]
    )
    return backends


def test_the_agency_officer_sees_the_inbox_and_acts_with_version_and_key(
    client: FlaskClient, with_referral: FakeBackends
) -> None:
    login(client, "police_officer")
    inbox = client.get("/agency/referrals?view=overdue")
    assert inbox.status_code == 200 and 'data-referral-id="ref1"' in inbox.get_data(as_text=True)
    _, listed = with_referral.last("ListAgencyReferrals")
    assert listed.due == "overdue"
    page = client.get("/referral/ref1").get_data(as_text=True)
    assert "良乡站" in page and 'id="form-accept"' in page and 'id="form-complete"' not in page
    token = csrf_from(client, "/referral/ref1")
    response = client.post(
        "/referral/ref1/accept",
        data={"csrf_token": token, "text": "收到", "expected_version": "2", "idempotency_key": "k1-accept"},
    )
    assert response.status_code == 302
    _, sent = with_referral.last("AcceptReferral")
    assert (sent.referral_id, sent.note, sent.expected_version, sent.idempotency_key) == (
        "ref1",
        "收到",
        2,
        "k1-accept",
    )


def test_the_caseworker_answers_cancels_and_reassigns_but_never_accepts(
    client: FlaskClient, with_referral: FakeBackends
) -> None:
    login(client)
    page = client.get("/referral/ref1").get_data(as_text=True)
    assert 'id="form-cancel"' in page and 'id="form-reassign"' in page and 'id="form-accept"' not in page
    token = csrf_from(client, "/referral/ref1")
    client.post("/referral/ref1/accept", data={"csrf_token": token, "text": "x"})
    assert not [call for call in with_referral.calls if call[0] == "AcceptReferral"]
    client.post("/referral/ref1/reassign", data={"csrf_token": token, "agency_code": "health", "text": "更合适"})
    _, sent = with_referral.last("ReassignReferral")
    assert (sent.agency_code, sent.reason) == ("health", "更合适")


@pytest.mark.parametrize(
    ("user", "path"),
    [
        ("caseworker", "/agency/referrals"),
        ("caseworker", "/office/referrals"),
        ("caseworker", "/admin/credentials"),
        ("police_officer", "/admin/rules"),
        ("district_officer", "/admin/directory"),
    ],
)
def test_pages_of_other_roles_are_refused(
    client: FlaskClient, with_referral: FakeBackends, user: str, path: str
) -> None:
    login(client, user)
    assert client.get(path).status_code == 403


def test_a_service_refusal_is_shown_on_the_page(client: FlaskClient, with_referral: FakeBackends) -> None:
    from gateway.clients import BackendError
    from platform_runtime.errors import FieldViolation

    with_referral.fail["CompleteReferral"] = BackendError(
        "INVALID_ARGUMENT", "bad", (FieldViolation("outcome", "is required"),)
    )
    with_referral.referral_replies["GetReferral"] = referral_pb2.GetReferralResponse(referral=referral("accepted"))
    login(client, "police_officer")
    token = csrf_from(client, "/referral/ref1")
    followed = client.post("/referral/ref1/complete", data={"csrf_token": token, "text": ""}, follow_redirects=True)
    assert "outcome: is required" in followed.get_data(as_text=True)


def test_the_rest_calls_for_programs(client: FlaskClient, with_referral: FakeBackends) -> None:
    token = client.post("/api/v1/token", json={"username": "police_officer", "password": "correct horse battery"})
    bearer = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
    listed = client.get("/api/v1/agency/referrals?due=soon", headers=bearer).get_json()
    assert listed["referrals"][0]["referral_id"] == "ref1"
    with_referral.referral_replies["AcceptReferral"] = referral_pb2.AcceptReferralResponse(
        referral=referral("accepted")
    )
    accepted = client.post(
        "/api/v1/referrals/ref1/accept",
        json={"text": "收到", "expected_version": 2},
        headers=bearer | {"Idempotency-Key": "prog-1"},
    )
    assert accepted.status_code == 200 and accepted.get_json()["status"] == "accepted"
    _, sent = with_referral.last("AcceptReferral")
    assert (sent.idempotency_key, sent.expected_version, sent.note) == ("prog-1", 2, "收到")
    refused = client.post("/api/v1/referrals/ref1/cancel", json={"text": "x"}, headers=bearer)
    assert refused.status_code == 400


@pytest.fixture
def admin_client(client: FlaskClient, components: bootstrap.Components) -> FlaskClient:
    components.users.save_user(NewUser("admin.wang", "王管理员", Role.DISTRICT_ADMIN, TOWN), PASSWORD)
    login(client, "admin.wang")
    return client


def test_the_administrator_saves_a_unit_and_a_rule_version(
    admin_client: FlaskClient, with_referral: FakeBackends
) -> None:
    token = csrf_from(admin_client, "/admin/directory?code=health")
    admin_client.post(
        "/admin/directory",
        data={
            "csrf_token": token,
            "code": "health",
            "name_zh": "区卫生健康委",
            "level": "district",
            "duties": "先救治后救助\n定点医院",
            "contact_user_ids": "doctor.li, nurse.wu",
            "webhook": "https://his.example/hook",
            "member": "on",
        },
    )
    _, saved = with_referral.last("SaveAgency")
    assert (saved.agency.name_zh, list(saved.agency.duties), list(saved.agency.contact_user_ids)) == (
        "区卫生健康委",
        ["先救治后救助", "定点医院"],
        ["doctor.li", "nurse.wu"],
    )
    rule = {"code": "MEDICAL_HEALTH", "agency_code": "health", "reason": "先救治", "due_in_minutes": 120}
    with_referral.referral_replies["AddRuleSet"] = routing_pb2.AddRuleSetResponse(
        rule_set=routing_pb2.RuleSet(version=3, effective_from="2026-12-05")
    )
    token = csrf_from(admin_client, "/admin/rules")
    response = admin_client.post(
        "/admin/rules",
        data={"csrf_token": token, "do": "save", "rules": json.dumps([rule]), "effective_from": "2026-12-05"},
    )
    assert response.status_code == 302 and "version=3" in response.headers["Location"]
    _, added = with_referral.last("AddRuleSet")
    assert (added.effective_from, added.rules[0].code, added.rules[0].due_in_minutes) == (
        "2026-12-05",
        "MEDICAL_HEALTH",
        120,
    )
    broken = admin_client.post("/admin/rules", data={"csrf_token": token, "do": "save", "rules": "[{"})
    assert "不是有效的 JSON" in broken.get_data(as_text=True)
