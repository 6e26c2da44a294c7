"""REST/JSON under /api/v1: the portal's operations for programs. Authenticate with a bearer token from
`POST /api/v1/token`, or with the browser session plus the `X-CSRF-Token` header on writes.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, request
from werkzeug.wrappers import Response

from gateway import api_input, handling, intake, openapi, presenters, public, roles
from gateway.accounts import LoginFailed, LoginThrottled, SecondFactorNotEnrolled
from gateway.limits import LOGIN_FAILURES
from gateway.security import (
    caller,
    client_ip,
    components,
    csrf_exempt,
    current_user,
    login_required,
    require_role,
)
from platform_runtime.errors import InvalidInput, RateLimited, Unauthenticated

bp = Blueprint("api", __name__, url_prefix="/api/v1")
Reply = Response | tuple[Response, int] | dict[str, Any]


# One check of every /api/ request's path, query and JSON body (gateway/api_input.py) before any view runs.
bp.before_app_request(api_input.check_request)


@bp.route("/openapi.json")
def openapi_document() -> Reply:
    return jsonify(openapi.document())


@bp.route("/token", methods=["POST"])
@csrf_exempt
def token() -> Reply:
    body = api_input.json_object()
    try:
        user = components().users.sign_in_with_code(
            str(body.get("username", "")), str(body.get("password", "")), str(body.get("code", "")), client_ip()
        )
    except LoginThrottled:
        raise RateLimited(LOGIN_FAILURES.window_seconds) from None
    except LoginFailed:
        raise Unauthenticated("wrong username, password or code") from None
    except SecondFactorNotEnrolled:
        raise Unauthenticated("this role needs a second factor: enrol it by signing in to the portal once") from None
    tokens = components().tokens
    return {"access_token": tokens.for_user(user), "token_type": "Bearer", "expires_in": tokens.user_token_seconds}


@bp.route("/me")
@login_required
def me() -> Reply:
    user = current_user()
    return {
        "user_id": user.user_id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "tenant": user.tenant,
        "district": user.district,
        "agency": user.agency,
        "channels": [channel.value for channel in roles.channels_for(user.role)],
    }


@bp.route("/reports", methods=["GET"])
@login_required
def list_reports() -> Reply:
    require_role(roles.REPORT_READERS)
    # The service caps a page at 200; anything outside int32 would not even fit the request.
    page_size = min(max(request.args.get("page_size", 50, type=int) or 50, 1), 200)
    found = components().backends.list_reports(caller(), page_size=page_size)
    return {"reports": [presenters.report(r) for r in found]}


@bp.route("/reports", methods=["POST"])
@login_required
def submit_report() -> Reply:
    user = current_user()
    if not roles.can_submit(user.role):
        abort(403)
    key = request.headers.get(intake.IDEMPOTENCY_HEADER)
    request_pb = intake.build_request(api_input.json_object(), default_division=user.tenant, idempotency_key=key)
    reply = components().backends.submit_report(caller(), request_pb)
    return jsonify(presenters.submitted(reply)), 201


@bp.route("/reports/<report_id>")
@login_required
def get_report(report_id: str) -> Reply:
    require_role(roles.REPORT_READERS)
    # ?purpose=... opens the details (narrative, reporter); the reporting service logs the read with it.
    purpose = request.args.get("purpose", "")
    return presenters.report(components().backends.get_report(caller(), report_id, purpose))


@bp.route("/reports/<report_id>/reads")
@login_required
def report_reads(report_id: str) -> Reply:
    require_role(roles.REPORT_READERS)
    reply = components().backends.list_report_reads(
        caller(),
        report_id,
        page_size=max(0, min(request.args.get("page_size", 0, type=int) or 0, 200)),
        page_token=request.args.get("page_token", "")[:200],
    )
    return {"reads": [presenters.report_read(r) for r in reply.reads], "next_page_token": reply.next_page_token}


@bp.route("/reports/<report_id>/candidates")
@login_required
def link_candidates(report_id: str) -> Reply:
    require_role(roles.REPORT_READERS)
    found = components().backends.list_link_candidates(caller(), report_id)
    return {"candidates": [presenters.candidate(c) for c in found]}


@bp.route("/reports/<report_id>/link", methods=["POST"])
@login_required
def link(report_id: str) -> Reply:
    """`{"child_id": ...}` confirms a child of the register; `{"new_child": true}` registers a new one."""
    require_role(roles.REPORT_READERS)
    body = api_input.json_object()
    backends = components().backends
    if body.get("new_child") is True:
        return presenters.report(backends.link_to_new_child(caller(), report_id))
    child_id = str(body.get("child_id", "")).strip()
    if not child_id:
        raise InvalidInput.single("child_id", "give a child_id, or new_child: true")
    return presenters.report(backends.confirm_link(caller(), report_id, child_id))


@bp.route("/reports/<report_id>/triage", methods=["POST"])
@login_required
def decide_triage(report_id: str) -> Reply:
    """`{"decision": "confirm" | "reject", "expected_version": 3}`: a person's triage of a report from the public."""
    require_role(roles.REPORT_READERS)
    confirmed, expected_version = handling.triage_decision(api_input.json_object())
    return presenters.report(components().backends.decide_triage(caller(), report_id, confirmed, expected_version))


@bp.route("/reports/<report_id>/milestones", methods=["POST"])
@login_required
def record_milestone(report_id: str) -> Reply:
    require_role(roles.REPORT_READERS)
    request_pb = handling.milestone_request(report_id, api_input.json_object())
    return presenters.report(components().backends.record_milestone(caller(), request_pb))


@bp.route("/reports/<report_id>/outcome-notice", methods=["POST"])
@login_required
def outcome_notice(report_id: str) -> Reply:
    require_role(roles.REPORT_READERS)
    text = str(api_input.json_object().get("text", ""))
    return presenters.report(components().backends.give_outcome_notice(caller(), report_id, text))


@bp.route("/reports/<report_id>/close", methods=["POST"])
@login_required
def close_report(report_id: str) -> Reply:
    require_role(roles.REPORT_READERS)
    return presenters.report(components().backends.close_report(caller(), report_id))


@bp.route("/children/<child_id>/case-file")
@login_required
def case_file(child_id: str) -> Reply:
    require_role(roles.CASE_FILE_READERS)
    purpose = request.args.get("purpose", "")
    return presenters.case_file(components().backends.get_case_file(caller(), child_id, purpose))


@bp.route("/referrals")
@login_required
def referrals() -> Reply:
    require_role(roles.REFERRAL_READERS)
    found = components().backends.list_referrals(
        caller(), request.args.get("child_id", ""), request.args.get("report_id", "")
    )
    return {"referrals": [presenters.referral(r) for r in found]}


@bp.route("/inbox")
@login_required
def inbox() -> Reply:
    unread_only = request.args.get("unread_only", "").lower() in ("1", "true", "yes")
    found = components().backends.list_inbox(caller(), unread_only=unread_only)
    return {"notifications": [presenters.notification(n) for n in found]}


@bp.route("/inbox/<notification_id>/read", methods=["POST"])
@login_required
def mark_read(notification_id: str) -> Reply:
    return presenters.notification(components().backends.mark_read(caller(), notification_id))


@bp.route("/public/<town_code>/reports", methods=["POST"])
@csrf_exempt
def public_report(town_code: str) -> Reply:
    reply = public.submit(
        components(), town_code, api_input.json_object(), client_ip(), request.headers.get(intake.IDEMPOTENCY_HEADER)
    )
    return jsonify(presenters.public_receipt(reply)), 201


@bp.route("/public/receipts/lookup", methods=["POST"])
@csrf_exempt
def public_lookup() -> Reply:
    reply = public.lookup(components(), str(api_input.json_object().get("receipt_number", "")), client_ip())
    return presenters.receipt_status(reply)
