"""The staff portal: inbox, discovery reports, case files and referrals of the signed-in user's town."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from gateway import handling, intake, presenters, purposes, roles
from gateway.accounts import User
from gateway.clients import BackendError
from gateway.i18n import gettext
from gateway.security import caller, components, current_user, login_required, require_role
from platform_runtime.auth import Role
from platform_runtime.errors import InvalidInput
from platform_runtime.vocabulary import AgencyKind, Fact, ReporterRole

bp = Blueprint("portal", __name__)
log = logging.getLogger(__name__)
Page = str | tuple[str, int] | Response


@bp.route("/")
@login_required
def home() -> Page:
    try:
        inbox = [presenters.notification(n) for n in components().backends.list_inbox(caller(), unread_only=False)]
        inbox_error = ""
    except BackendError as exc:
        # The inbox is a convenience on the home page: without the notify service the rest still works.
        log.warning("inbox unavailable: %s", exc)
        inbox, inbox_error = [], gettext("消息暂不可用")
    return render_template("home.html", inbox=inbox, inbox_error=inbox_error)


@bp.route("/inbox/<notification_id>/read", methods=["POST"])
@login_required
def mark_read(notification_id: str) -> Response:
    components().backends.mark_read(caller(), notification_id)
    return redirect(url_for("portal.home"))


def _form_defaults(user: User) -> dict[str, Any]:
    channel = roles.channels_for(user.role)[0]
    reporter: dict[str, str] = {}
    if user.role in (Role.MANDATED_REPORTER, Role.CHILD_DIRECTOR, Role.AGENCY_OFFICER):
        # Mandated reporters and agencies answer for their reports: they report as themselves.
        reporter = {"name": user.display_name, "phone": user.phone, "organisation": user.organisation}
        default_role = roles.DEFAULT_REPORTER_ROLE.get(user.role)
        reporter |= {"role": default_role.value if default_role else "", "agency": user.agency}
    return {
        "channel": channel.value,
        "place": {"division_code": user.tenant},
        "occurred_at": intake.now_for_form(),
        "reporter": reporter,
        "situation_types": [],
        "facts": [],
        intake.IDEMPOTENCY_FIELD: intake.new_idempotency_key(),
    }


def _report_form(user: User, values: dict[str, Any], errors: dict[str, list[str]]) -> str:
    return render_template(
        "report_form.html",
        values=values,
        errors=errors,
        channels=intake.choices(roles.channels_for(user.role)),
        sexes=intake.SEX_CHOICES,
        situation_groups=intake.SITUATION_GROUPS,
        facts=intake.choices(Fact),
        reporter_roles=intake.choices(ReporterRole),
        agencies=intake.choices(AgencyKind),
    )


@bp.route("/reports/new", methods=["GET", "POST"])
@login_required
def new_report() -> Page:
    user = current_user()
    if not roles.can_submit(user.role):
        abort(403)
    if request.method == "GET":
        return _report_form(user, _form_defaults(user), {})
    payload = intake.payload_from_form(request.form)
    try:
        request_pb = intake.build_request(
            payload, default_division=user.tenant, idempotency_key=request.form.get(intake.IDEMPOTENCY_FIELD)
        )
        reply = components().backends.submit_report(caller(), request_pb)
    except (InvalidInput, BackendError) as exc:
        errors = intake.form_errors(exc)
        if errors is None:
            raise
        return _report_form(user, payload, errors), 400
    sending = intake.receipt_asked(payload)
    return render_template("receipt.html", receipt=presenters.submitted(reply), sending=sending)


@bp.route("/reports")
@login_required
def reports() -> Page:
    require_role(roles.REPORT_READERS)
    found = components().backends.list_reports(caller(), page_size=100)
    return render_template("reports.html", reports=[presenters.report(r) for r in found])


@bp.route("/reports/<report_id>", methods=["GET", "POST"])
@login_required
def report(report_id: str) -> Page:
    """The report; its details (narrative, reporter) once the user has said why they open them."""
    require_role(roles.REPORT_READERS)
    backends = components().backends
    if request.method == "POST":
        purpose = request.form.get("purpose", "").strip()
        try:
            backends.get_report(caller(), report_id, purpose)  # checked (and logged) by the service
        except BackendError as exc:
            if exc.code != "INVALID_ARGUMENT":
                raise
            found = backends.get_report(caller(), report_id)
            return _report_page(found, purpose_error=exc.message), 400
        purposes.remember("report", report_id, purpose)
        return redirect(url_for("portal.report", report_id=report_id))
    found = backends.get_report(caller(), report_id, purposes.remembered("report", report_id))
    return _report_page(found)


def _report_page(found: Any, purpose_error: str = "") -> str:
    user = current_user()
    reads = []
    if user.role in roles.AUDIT_READERS:
        # The first 200 reads; the API pages through the rest (GET /api/v1/reports/<id>/reads).
        page = components().backends.list_report_reads(caller(), found.report_id, page_size=200)
        reads = [presenters.report_read(r) for r in page.reads]
    return render_template(
        "report.html",
        report=presenters.report(found),
        crisis_steps=_crisis_steps(found),
        reads=reads,
        purpose_error=purpose_error,
        milestones=handling.MILESTONE_CHOICES,
        now=intake.now_for_form(),
    )


def _crisis_steps(found: Any) -> list[dict[str, Any]]:
    """Who was alerted, escalated to and acknowledged a crisis report (reporting keeps them from notify)."""
    if not found.crisis:
        return []
    try:
        return [presenters.crisis_step(s) for s in components().backends.list_crisis_steps(caller(), found.report_id)]
    except BackendError as exc:
        # The steps are a part of the page: without them the rest of the report still shows.
        log.warning("crisis steps unavailable: %s", exc)
        return []


# Handling a report: each form posts here and comes back to the report (errors are shown as error pages).


@bp.route("/reports/<report_id>/link", methods=["GET", "POST"])
@login_required
def link(report_id: str) -> Page:
    require_role(roles.REPORT_READERS)
    backends = components().backends
    if request.method == "GET":
        candidates = [presenters.candidate(c) for c in backends.list_link_candidates(caller(), report_id)]
        return render_template("link.html", report_id=report_id, candidates=candidates)
    if request.form.get("new_child"):
        backends.link_to_new_child(caller(), report_id)
    else:
        backends.confirm_link(caller(), report_id, request.form.get("child_id", "").strip())
    return redirect(url_for("portal.report", report_id=report_id))


@bp.route("/reports/<report_id>/triage", methods=["POST"])
@login_required
def decide_triage(report_id: str) -> Response:
    """A report from the public confirmed (its agency referrals open) or rejected by the person on duty."""
    require_role(roles.REPORT_READERS)
    confirmed, expected_version = handling.triage_decision(request.form)
    components().backends.decide_triage(caller(), report_id, confirmed, expected_version)
    return redirect(url_for("portal.report", report_id=report_id))


@bp.route("/reports/<report_id>/milestones", methods=["POST"])
@login_required
def record_milestone(report_id: str) -> Response:
    require_role(roles.REPORT_READERS)
    components().backends.record_milestone(caller(), handling.milestone_request(report_id, request.form))
    return redirect(url_for("portal.report", report_id=report_id))


@bp.route("/reports/<report_id>/outcome-notice", methods=["POST"])
@login_required
def outcome_notice(report_id: str) -> Response:
    require_role(roles.REPORT_READERS)
    components().backends.give_outcome_notice(caller(), report_id, request.form.get("text", ""))
    return redirect(url_for("portal.report", report_id=report_id))


@bp.route("/reports/<report_id>/close", methods=["POST"])
@login_required
def close_report(report_id: str) -> Response:
    require_role(roles.REPORT_READERS)
    components().backends.close_report(caller(), report_id)
    return redirect(url_for("portal.report", report_id=report_id))


@bp.route("/children/<child_id>/case-file", methods=["GET", "POST"])
@login_required
def case_file(child_id: str) -> Page:
    require_role(roles.CASE_FILE_READERS)
    if request.method == "GET":
        return render_template("case_file.html", child_id=child_id, case=None, purpose="", error="")
    purpose = request.form.get("purpose", "").strip()
    try:
        found = components().backends.get_case_file(caller(), child_id, purpose)
    except BackendError as exc:
        if exc.code != "INVALID_ARGUMENT":
            raise
        return render_template("case_file.html", child_id=child_id, case=None, purpose=purpose, error=exc.message), 400
    return render_template("case_file.html", child_id=child_id, case=presenters.case_file(found), purpose=purpose)


@bp.route("/referrals")
@login_required
def referrals() -> Page:
    require_role(roles.REFERRAL_READERS)
    child_id = request.args.get("child_id", "")
    report_id = request.args.get("report_id", "")
    found = components().backends.list_referrals(caller(), child_id, report_id)
    return render_template(
        "referrals.html", referrals=[presenters.referral(r) for r in found], child_id=child_id, report_id=report_id
    )
