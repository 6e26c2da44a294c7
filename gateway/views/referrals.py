"""Referrals in the portal (帮扶转介): the agency officer's inbox and actions, the referral page for the referrer,
the leading group office's view of the district, and the district administrator's directory, rule versions
(with the preview) and agency credentials.

The referral service decides who may do what (the agency sees only what is addressed to it in its district);
these pages only shape what each role is offered. Every change form carries the version it was read at (a
stale page gets "changed since you read it") and an idempotency key (a double submit changes it once).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from google.protobuf import json_format, timestamp_pb2
from minorprot.referral.v1 import referral_pb2, routing_pb2
from werkzeug.wrappers import Response

from gateway import api_input
from gateway.clients import BackendError
from gateway.errors import flash_refusal
from gateway.i18n import gettext
from gateway.security import caller, components, current_user, login_required, require_role
from platform_runtime.auth import Role
from platform_runtime.vocabulary import CHINA_STANDARD_TIME, Fact, SituationType

bp = Blueprint("referrals", __name__)
Page = str | tuple[str, int] | Response

AGENCY = frozenset({Role.AGENCY_OFFICER})
OFFICE = frozenset({Role.LEADING_GROUP_OFFICE})
ADMIN = frozenset({Role.DISTRICT_ADMIN})
REFERRERS = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN, Role.DISTRICT_OFFICER})
READERS = AGENCY | OFFICE | REFERRERS
ROUTING_READERS = ADMIN | OFFICE

STATUS_LABELS = {
    "opened": "已开启",
    "sent": "待接收",
    "accepted": "已接收",
    "rejected": "已拒绝",
    "returned": "已退回补充",
    "in_progress": "处理中",
    "completed": "已办结",
    "cancelled": "已撤回",
}
INBOX_VIEWS = {
    "new": ("新转介", {"status": "sent"}),
    "soon": ("即将到期", {"due": "soon"}),
    "overdue": ("已逾期", {"due": "overdue"}),
    "all": ("全部", {}),
}
# Which actions each role is offered on a referral page, by the referral's status: the RPC, its request type, the
# request's text field and the states it applies in.
Action = tuple[str, type[Any], str, set[str]]
AGENCY_ACTIONS: dict[str, Action] = {
    "accept": ("AcceptReferral", referral_pb2.AcceptReferralRequest, "note", {"opened", "sent"}),
    "reject": ("RejectReferral", referral_pb2.RejectReferralRequest, "reason", {"opened", "sent", "returned"}),
    "return": ("ReturnReferral", referral_pb2.ReturnReferralRequest, "question", {"opened", "sent"}),
    "progress": ("AddProgress", referral_pb2.AddProgressRequest, "note", {"accepted", "in_progress"}),
    "complete": ("CompleteReferral", referral_pb2.CompleteReferralRequest, "outcome", {"accepted", "in_progress"}),
}
REFERRER_ACTIONS: dict[str, Action] = {
    "answer": ("AnswerReferral", referral_pb2.AnswerReferralRequest, "answer", {"returned"}),
    "cancel": (
        "CancelReferral",
        referral_pb2.CancelReferralRequest,
        "reason",
        {"opened", "sent", "returned", "accepted", "in_progress"},
    ),
    "reassign": (
        "ReassignReferral",
        referral_pb2.ReassignReferralRequest,
        "reason",
        {"opened", "sent", "returned", "accepted", "in_progress", "rejected"},
    ),
}
FORM_ERRORS = frozenset({"INVALID_ARGUMENT", "FAILED_PRECONDITION", "ABORTED", "NOT_FOUND", "PERMISSION_DENIED"})


def _call(method: str, message: Any) -> Any:
    return components().backends.referral(caller(), method, message)


def _when(stamp: timestamp_pb2.Timestamp) -> str:
    if not (stamp.seconds or stamp.nanos):
        return ""
    return stamp.ToDatetime(tzinfo=CHINA_STANDARD_TIME).strftime("%Y-%m-%d %H:%M")


def _view(value: referral_pb2.Referral) -> dict[str, Any]:
    now = datetime.now(CHINA_STANDARD_TIME)
    due = value.due_at.ToDatetime(tzinfo=CHINA_STANDARD_TIME) if value.due_at.seconds else None
    running = value.status in {"opened", "sent", "accepted", "in_progress"}
    facts = value.case_facts
    return {
        "referral_id": value.referral_id,
        "tenant": value.tenant,
        "report_id": value.report_id,
        "child_id": value.child_id,
        "agency_code": value.agency_code,
        "agency_name": value.agency_name or value.agency_code,
        "status": value.status,
        "status_label": STATUS_LABELS.get(value.status, value.status),
        "reason": value.reason,
        "rule_code": value.rule_code,
        "urgent": value.urgent,
        "opened_at": _when(value.opened_at),
        "due_at": _when(value.due_at),
        "overdue": bool(running and due and due <= now),
        "escalated_step": value.escalated_step,
        "last_note": value.last_note,
        "outcome": value.outcome,
        "version": value.version,
        "facts": {
            "situations": [_label(SituationType, code) for code in facts.situation_types],
            "facts": [_label(Fact, code) for code in facts.facts],
            "age": facts.approximate_age or "",
            "division_code": facts.division_code,
            "place_text": facts.place_text,
            "crisis": facts.crisis,
        },
    }


def _label(kind: type[SituationType] | type[Fact], code: str) -> str:
    try:
        return kind(code).label
    except ValueError:
        return code


def _flash_error(error: BackendError) -> None:
    if error.code not in FORM_ERRORS:
        raise error
    flash_refusal(error)


# -- the agency officer -----------------------------------------------------------------------------------


@bp.route("/agency/referrals")
@login_required
def inbox() -> Page:
    require_role(AGENCY)
    view = request.args.get("view", "new")
    if view not in INBOX_VIEWS:
        view = "new"
    _title, filters = INBOX_VIEWS[view]
    reply = _call(
        "ListAgencyReferrals",
        referral_pb2.ListAgencyReferralsRequest(page_size=50, page_token=request.args.get("page", ""), **filters),
    )
    return render_template(
        "referrals/inbox.html",
        views=INBOX_VIEWS,
        view=view,
        referrals=[_view(r) for r in reply.referrals],
        next_page=reply.next_page_token,
    )


# -- one referral: everyone who may see it ---------------------------------------------------------------


@bp.route("/referral/<referral_id>")
@login_required
def detail(referral_id: str) -> Page:
    user = require_role(READERS)
    reply = _call("GetReferral", referral_pb2.GetReferralRequest(referral_id=referral_id))
    referral = _view(reply.referral)
    if user.role in AGENCY:
        offered = {name: spec for name, spec in AGENCY_ACTIONS.items() if referral["status"] in spec[3]}
    else:
        chosen = REFERRER_ACTIONS if user.role in REFERRERS else {"reassign": REFERRER_ACTIONS["reassign"]}
        offered = {name: spec for name, spec in chosen.items() if referral["status"] in spec[3]}
    agencies = []
    if "reassign" in offered:
        listed = _call("ListAgencies", routing_pb2.ListAgenciesRequest()).agencies
        agencies = [(a.code, a.name_zh) for a in listed if a.code != referral["agency_code"]]
    entries = [
        {"action": e.action, "at": _when(e.at), "by": e.by, "text": e.text, "status": e.status, "agency": e.agency_code}
        for e in reply.entries
    ]
    return render_template(
        "referrals/detail.html",
        referral=referral,
        entries=entries,
        offered=offered,
        agencies=agencies,
        idempotency_key=uuid.uuid4().hex,
    )


@bp.route("/referral/<referral_id>/<action>", methods=["POST"])
@login_required
def act(referral_id: str, action: str) -> Response:
    user = current_user()
    table = AGENCY_ACTIONS if user.role in AGENCY else REFERRER_ACTIONS
    require_role(READERS)
    if action not in table:
        flash(gettext("此操作不可用"), "error")
        return redirect(url_for("referrals.detail", referral_id=referral_id))
    method, message_type, text_field, _states = table[action]
    message = message_type(referral_id=referral_id)
    setattr(message, text_field, request.form.get("text", ""))
    version = request.form.get("expected_version", "")
    if version.isdigit():
        message.expected_version = int(version)
    if user.role in AGENCY:
        message.idempotency_key = request.form.get("idempotency_key", "")[:100]
    if action == "reassign":
        message.agency_code = request.form.get("agency_code", "")
    try:
        _call(method, message)
        flash(gettext("已保存"))
    except BackendError as error:
        _flash_error(error)
    return redirect(url_for("referrals.detail", referral_id=referral_id))


# -- a caseworker refers a child for an action of the assistance plan ------------------------------------------


@bp.route("/referrals/new", methods=["GET", "POST"])
@login_required
def new_for_plan() -> Page:
    require_role(frozenset({Role.CASEWORKER, Role.TOWN_ADMIN}))
    child_id = request.values.get("child_id", "")
    if request.method == "POST":
        days = request.form.get("due_in_days", "")
        try:
            opened = _call(
                "OpenPlanReferral",
                referral_pb2.OpenPlanReferralRequest(
                    child_id=child_id,
                    agency_code=request.form.get("agency_code", ""),
                    reason=request.form.get("reason", ""),
                    due_in_days=int(days) if days.isdigit() and len(days) < 4 else 0,
                ),
            ).referral
            flash(gettext("已转介:在帮扶计划的行动中填写转介编号 %(referral)s", referral=opened.referral_id))
            return redirect(url_for("referrals.detail", referral_id=opened.referral_id))
        except BackendError as error:
            _flash_error(error)
    agencies = _call("ListAgencies", routing_pb2.ListAgenciesRequest()).agencies
    return render_template("referrals/new.html", child_id=child_id, agencies=agencies, form=request.form)


# -- the leading group office ------------------------------------------------------------------------------


@bp.route("/office/referrals")
@login_required
def district() -> Page:
    require_role(OFFICE)
    show = request.args.get("show", "all")
    status = request.args.get("status", "")
    message = referral_pb2.ListDistrictReferralsRequest(
        status=status if status in STATUS_LABELS else "",
        overdue_only=show == "overdue",
        escalated_only=show == "escalated",
        page_size=50,
        page_token=request.args.get("page", "")[:200],
    )
    found, next_page = [], ""
    try:
        reply = _call("ListDistrictReferrals", message)
        found, next_page = list(reply.referrals), reply.next_page_token
    except BackendError as error:
        _flash_error(error)
    return render_template(
        "referrals/district.html",
        referrals=[_view(r) for r in found],
        show=show,
        status=status,
        labels=STATUS_LABELS,
        next_page=next_page,
    )


# -- the district administrator -----------------------------------------------------------------------------


@bp.route("/admin/directory", methods=["GET", "POST"])
@login_required
def directory() -> Page:
    require_role(ADMIN)
    if request.method == "POST":
        form = request.form
        agency = routing_pb2.DirectoryAgency(
            code=form.get("code", "").strip(),
            name_zh=form.get("name_zh", ""),
            name_en=form.get("name_en", ""),
            kind=form.get("kind", ""),
            level=form.get("level", "district"),
            duties=[line.strip() for line in form.get("duties", "").splitlines() if line.strip()],
            contact_user_ids=[part.strip() for part in form.get("contact_user_ids", "").split(",") if part.strip()],
            duty_phone=form.get("duty_phone", ""),
            email=form.get("email", ""),
            webhook=form.get("webhook", ""),
            supervisor=form.get("supervisor", ""),
            member=form.get("member") == "on",
        )
        try:
            _call("SaveAgency", routing_pb2.SaveAgencyRequest(agency=agency))
            flash(gettext("已保存:%(name)s", name=agency.code))
            return redirect(url_for("referrals.directory"))
        except BackendError as error:
            _flash_error(error)
    agencies = _call("ListAgencies", routing_pb2.ListAgenciesRequest()).agencies
    editing = next((a for a in agencies if a.code == request.args.get("code")), None)
    return render_template("referrals/directory.html", agencies=agencies, editing=editing)


def _rules_json(rules: Any) -> str:
    data = [json_format.MessageToDict(rule, preserving_proto_field_name=True) for rule in rules]
    return json.dumps(data, ensure_ascii=False, indent=1)


def _rules_from(text: str) -> list[routing_pb2.RoutingRuleSpec]:
    try:
        data = json.loads(text)
        if not isinstance(data, list):
            raise ValueError("a list of rules")
        return [json_format.ParseDict(item, routing_pb2.RoutingRuleSpec()) for item in data]
    except (ValueError, json_format.ParseError) as exc:
        raise BackendError("INVALID_ARGUMENT", gettext("规则不是有效的 JSON:%(error)s", error=exc)) from None


@bp.route("/admin/rules", methods=["GET", "POST"])
@login_required
def rules() -> Page:
    user = require_role(ROUTING_READERS)
    rule_sets = _call("ListRuleSets", routing_pb2.ListRuleSetsRequest()).rule_sets
    chosen = request.args.get("version", "")
    shown = next((s for s in rule_sets if str(s.version) == chosen), rule_sets[0] if rule_sets else None)
    draft = request.form.get("rules") or (_rules_json(shown.rules) if shown else "[]")
    preview = None
    if request.method == "POST":
        try:
            if request.form.get("do") == "save":
                require_role(ADMIN)
                saved = _call(
                    "AddRuleSet",
                    routing_pb2.AddRuleSetRequest(
                        effective_from=request.form.get("effective_from", ""),
                        note=request.form.get("note", ""),
                        rules=_rules_from(draft),
                    ),
                ).rule_set
                flash(
                    gettext("已保存为第 %(version)s 版,自 %(day)s 起", version=saved.version, day=saved.effective_from)
                )
                return redirect(url_for("referrals.rules", version=saved.version))
            preview = _preview(draft)
        except BackendError as error:
            _flash_error(error)
    return render_template(
        "referrals/rules.html",
        rule_sets=rule_sets,
        shown=shown,
        draft=draft,
        preview=preview,
        can_save=user.role in ADMIN,
        situations=list(SituationType),
        facts=list(Fact),
        form=request.form,
    )


def _preview(draft: str) -> dict[str, Any]:
    form = request.form
    age = form.get("age", "")
    message = routing_pb2.PreviewRoutingRequest(
        situation_types=form.getlist("situation_types"),
        facts=form.getlist("facts"),
        approximate_age=int(age) if age.isdigit() and int(age) < 18 else 0,
        urgent=form.get("urgent") == "on",
        crisis=form.get("crisis") == "on",
        day=form.get("day", ""),
    )
    if form.get("source") == "draft":
        message.draft_rules.extend(_rules_from(draft))
    elif form.get("source", "").isdigit():
        message.version = int(form["source"])
    reply = _call("PreviewRouting", message)
    return {
        "version": reply.version,
        "routes": list(reply.routes),
        "verdicts": list(reply.verdicts),
    }


@bp.route("/admin/credentials", methods=["GET", "POST"])
@login_required
def credentials() -> Page:
    require_role(ADMIN)
    issued = None
    if request.method == "POST":
        try:
            if request.form.get("do") == "revoke":
                _call(
                    "RevokeCredential",
                    referral_pb2.RevokeCredentialRequest(credential_id=request.form.get("credential_id", "")),
                )
                flash(gettext("已吊销"))
            else:
                days = request.form.get("valid_days", "")
                issued = _call(
                    "IssueCredential",
                    referral_pb2.IssueCredentialRequest(
                        agency_code=request.form.get("agency_code", ""),
                        name=request.form.get("name", ""),
                        valid_days=int(days) if days.isdigit() and len(days) < 5 else 0,
                    ),
                )
        except BackendError as error:
            _flash_error(error)
    listed = _call("ListCredentials", referral_pb2.ListCredentialsRequest()).credentials
    agencies = _call("ListAgencies", routing_pb2.ListAgenciesRequest()).agencies
    rows = [
        {
            "credential_id": c.credential_id,
            "agency_code": c.agency_code,
            "name": c.name,
            "issued_at": _when(c.issued_at),
            "issued_by": c.issued_by,
            "expires_at": _when(c.expires_at),
            "revoked_at": _when(c.revoked_at),
        }
        for c in listed
    ]
    return render_template("referrals/credentials.html", credentials=rows, agencies=agencies, issued=issued)


# -- REST/JSON for programs (bearer token from POST /api/v1/token) ----------------------------------------------


def _json(message: Any) -> dict[str, Any]:
    data: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return data


@bp.route("/api/v1/agency/referrals")
@login_required
def api_agency_referrals() -> dict[str, Any]:
    """The referrals addressed to the agency officer's agency: ?status=&due=soon|overdue&page_token=."""
    require_role(AGENCY)
    size = request.args.get("page_size", 50, type=int) or 50
    reply = _call(
        "ListAgencyReferrals",
        referral_pb2.ListAgencyReferralsRequest(
            status=request.args.get("status", ""),
            due=request.args.get("due", ""),
            page_size=max(0, min(size, 200)),
            page_token=request.args.get("page_token", ""),
        ),
    )
    return {"referrals": [_json(r) for r in reply.referrals], "next_page_token": reply.next_page_token}


@bp.route("/api/v1/referrals/<referral_id>")
@login_required
def api_referral(referral_id: str) -> dict[str, Any]:
    require_role(READERS)
    return _json(_call("GetReferral", referral_pb2.GetReferralRequest(referral_id=referral_id)))


@bp.route("/api/v1/referrals/<referral_id>/<action>", methods=["POST"])
@login_required
def api_act(referral_id: str, action: str) -> dict[str, Any]:
    """accept | reject | return | progress | complete (agency officers), answer | cancel | reassign (the referrer):
    {"text": ..., "expected_version": n, "agency_code": ...}; changes by agencies are idempotent by the
    Idempotency-Key header."""
    user = require_role(READERS)
    table = AGENCY_ACTIONS if user.role in AGENCY else REFERRER_ACTIONS
    if action not in table:
        raise BackendError("INVALID_ARGUMENT", f"{action} is not an action of this role")
    body = api_input.json_object()
    method, message_type, text_field, _states = table[action]
    message = message_type(referral_id=referral_id)
    setattr(message, text_field, str(body.get("text", "")))
    version = body.get("expected_version")
    if isinstance(version, int) and not isinstance(version, bool):
        message.expected_version = version
    if user.role in AGENCY:
        message.idempotency_key = request.headers.get("Idempotency-Key", "")[:100]
    if action == "reassign":
        message.agency_code = str(body.get("agency_code", ""))
    return _json(_call(method, message).referral)
