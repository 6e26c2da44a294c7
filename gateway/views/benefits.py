"""The classified guarantee in the portal: applications and their reviews (town staff, the district), the
district's monthly runs with their steps and progress, the bank's payment file and return file, the ledger
and the finance auditor's fund-usage report (.xlsx, CSV), and the district administrator's policy versions.

Every page calls the benefits service as the signed-in user; the service decides what is allowed (the
maker/checker rule, who may see which town), the portal only shapes the screens by role.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from minorprot.benefits.v1 import benefits_pb2
from minorprot.common.v1 import common_pb2
from openpyxl import Workbook
from werkzeug.wrappers import Response

from gateway import roles
from gateway.clients import BackendError
from gateway.errors import flash_refusal
from gateway.i18n import gettext
from gateway.security import caller, components, login_required, require_role
from platform_runtime.auth import Role
from platform_runtime.vocabulary import china_today

bp = Blueprint("benefits", __name__)

STEPS = ("compute", "check", "approve", "pay", "close")
NEXT_STEP = {"draft": "compute", "computed": "check", "checked": "approve", "approved": "pay", "reconciled": "close"}
CHUNKS_PER_REQUEST = 20  # a long step advances this many chunks per click; the page carries on by itself
RECONCILED = "已对账:成功 %(paid)s,失败 %(failed)s,未变 %(unchanged)s,未回 %(outstanding)s"
BALANCE_COLUMNS = ("period", "fund", "town", "kind", "amount_fen", "amount_yuan", "entries")


def _call(method: str, message: Any) -> Any:
    return components().backends.benefits(caller(), method, message)


def _date(value: str) -> common_pb2.Date:
    """A form's yyyy-mm-dd (or yyyy-mm for a month); an empty or bad value is left for the service to refuse."""
    try:
        parts = [int(part) for part in value.strip().split("-")]
        day = date(parts[0], parts[1], parts[2] if len(parts) > 2 else 1)
    except (ValueError, IndexError):
        return common_pb2.Date()
    return common_pb2.Date(year=day.year, month=day.month, day=day.day)


def yuan(fen: int) -> str:
    """Fen shown as yuan with two decimals, by integer arithmetic."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def day(value: common_pb2.Date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}" if value.year else ""


@bp.app_template_filter("yuan")
def _yuan_filter(fen: int) -> str:
    return yuan(fen)


@bp.app_template_filter("day")
def _day_filter(value: common_pb2.Date) -> str:
    return day(value)


# -- home ----------------------------------------------------------------------------------------------------


@bp.route("/benefits")
@login_required
def home() -> Response:
    user = require_role(roles.BENEFIT_USERS)
    if user.role in roles.BENEFIT_APPLICANTS:
        return redirect(url_for("benefits.applications"))
    if user.role is Role.DISTRICT_ADMIN:
        return redirect(url_for("benefits.policies"))
    if user.role is Role.FINANCE_AUDITOR:
        return redirect(url_for("benefits.ledger"))
    return redirect(url_for("benefits.runs"))


# -- applications ---------------------------------------------------------------------------------------------


@bp.route("/benefits/applications", methods=["GET", "POST"])
@login_required
def applications() -> str | Response:
    user = require_role(roles.BENEFIT_APPLICATION_READERS)
    if request.method == "POST":
        require_role(roles.BENEFIT_APPLICANTS)
        try:
            reply = _call(
                "CreateApplication",
                benefits_pb2.CreateApplicationRequest(
                    child_id=request.form.get("child_id", "").strip(),
                    benefit_code=request.form.get("benefit_code", ""),
                    documents=request.form.getlist("documents"),
                    reason=request.form.get("reason", ""),
                    starts_on=_date(request.form.get("starts_on", "")),
                    account_ref=request.form.get("account_ref", ""),
                ),
            )
        except BackendError as exc:
            flash_refusal(exc)
            return redirect(url_for("benefits.applications"))
        flash(gettext("已创建申报"))
        return redirect(url_for("benefits.application", application_id=reply.application.application_id))
    status = request.args.get("status", "")
    reply = _call("ListApplications", benefits_pb2.ListApplicationsRequest(status=status, **_page()))
    policy = _current_policy()
    return render_template(
        "benefits/applications.html",
        applications=reply.applications,
        next_page=reply.next_page_token,
        status=status,
        rules=[r for r in policy.rules if r.kind != "insurance"] if policy else [],
        can_apply=user.role in roles.BENEFIT_APPLICANTS,
    )


@bp.route("/benefits/applications/<application_id>", methods=["GET", "POST"])
@login_required
def application(application_id: str) -> str | Response:
    user = require_role(roles.BENEFIT_APPLICATION_READERS)
    if request.method == "POST":
        action = request.form.get("action", "")
        approve = request.form.get("decision") == "approve"
        reason = request.form.get("reason", "")
        actions: dict[str, tuple[str, Any]] = {
            "documents": (
                "UpdateApplication",
                benefits_pb2.UpdateApplicationRequest(
                    application_id=application_id,
                    documents=request.form.getlist("documents"),
                    starts_on=_date(request.form.get("starts_on", "")),
                    child_id=request.form.get("child_id", "").strip(),
                    benefit_code=request.form.get("benefit_code", ""),
                    account_ref=request.form.get("account_ref", ""),
                ),
            ),
            "submit": ("SubmitApplication", benefits_pb2.SubmitApplicationRequest(application_id=application_id)),
            "review": (
                "ReviewApplication",
                benefits_pb2.ReviewApplicationRequest(application_id=application_id, approve=approve, reason=reason),
            ),
            "decide": (
                "DecideApplication",
                benefits_pb2.DecideApplicationRequest(
                    application_id=application_id,
                    approve=approve,
                    reason=reason,
                    starts_on=_date(request.form.get("starts_on", "")),
                ),
            ),
            "reapply": ("ReapplyApplication", benefits_pb2.ReapplyApplicationRequest(application_id=application_id)),
            "withdraw": (
                "WithdrawApplication",
                benefits_pb2.WithdrawApplicationRequest(application_id=application_id),
            ),
            "record_review": ("RecordReview", benefits_pb2.RecordReviewRequest(application_id=application_id)),
        }
        if action not in actions:
            abort(400)
        try:
            reply = _call(*actions[action])
        except BackendError as exc:
            flash_refusal(exc)
            return redirect(url_for("benefits.application", application_id=application_id))
        flash(gettext("已保存"))
        return redirect(url_for("benefits.application", application_id=reply.application.application_id))
    found = _call("GetApplication", benefits_pb2.GetApplicationRequest(application_id=application_id)).application
    policy = _current_policy()
    rule = next((r for r in policy.rules if r.code == found.benefit_code), None) if policy else None
    return render_template(
        "benefits/application.html",
        a=found,
        checklist=list(rule.documents) if rule else [],
        rules=[r for r in policy.rules if r.kind != "insurance"] if policy else [],
        role=user.role.value,
    )


def _current_policy() -> benefits_pb2.PolicyVersion | None:
    """The newest version in effect today (for names and checklists on the screens)."""
    today = china_today()
    versions = _call("ListPolicyVersions", benefits_pb2.ListPolicyVersionsRequest()).versions
    for version in versions:  # newest first
        starts = date(version.effective_from.year, version.effective_from.month, version.effective_from.day)
        if starts <= today:
            return version  # type: ignore[no-any-return]
    return None


# -- runs -----------------------------------------------------------------------------------------------------


@bp.route("/benefits/runs", methods=["GET", "POST"])
@login_required
def runs() -> str | Response:
    require_role(roles.BENEFIT_LEDGER_READERS)
    if request.method == "POST":
        require_role(roles.BENEFIT_RUNNERS)
        try:
            reply = _call("OpenRun", benefits_pb2.OpenRunRequest(period=_date(request.form.get("period", ""))))
        except BackendError as exc:
            flash_refusal(exc)
            return redirect(url_for("benefits.runs"))
        return redirect(url_for("benefits.run", run_id=reply.run.run_id))
    reply = _call("ListRuns", benefits_pb2.ListRunsRequest(**_page()))
    return render_template("benefits/runs.html", runs=reply.runs, next_page=reply.next_page_token)


@bp.route("/benefits/runs/<run_id>", methods=["GET", "POST"])
@login_required
def run(run_id: str) -> str | Response:
    user = require_role(roles.BENEFIT_LEDGER_READERS)
    if request.method == "POST":
        require_role(roles.BENEFIT_RUNNERS)
        step = request.form.get("step", "")
        if step not in STEPS:
            abort(400)
        try:
            _call(
                "AdvanceRun",
                benefits_pb2.AdvanceRunRequest(run_id=run_id, step=step, max_chunks=CHUNKS_PER_REQUEST),
            )
        except BackendError as exc:
            flash_refusal(exc)
        return redirect(url_for("benefits.run", run_id=run_id))
    found = _call("GetRun", benefits_pb2.GetRunRequest(run_id=run_id)).run
    failed_only = request.args.get("failed") == "1"
    lines = _call(
        "ListRunLines",
        benefits_pb2.ListRunLinesRequest(run_id=run_id, payment_status="failed" if failed_only else "", **_page()),
    )
    step = NEXT_STEP.get(found.status, "")
    in_progress = step in ("compute", "pay") and 0 < found.done < found.total
    return render_template(
        "benefits/run.html",
        run=found,
        lines=lines.lines,
        next_page=lines.next_page_token,
        next_step=step,
        in_progress=in_progress,
        failed_only=failed_only,
        can_run=user.role in roles.BENEFIT_RUNNERS,
        steps=("draft", "computed", "checked", "approved", "paid", "reconciled", "closed"),
    )


@bp.route("/benefits/runs/<run_id>/payment-file/<int:batch>")
@login_required
def payment_file(run_id: str, batch: int) -> Response:
    require_role(roles.BENEFIT_LEDGER_READERS)
    try:
        file = _call("GetPaymentFile", benefits_pb2.GetPaymentFileRequest(run_id=run_id, batch=batch))
    except BackendError as exc:
        flash_refusal(exc)
        return redirect(url_for("benefits.run", run_id=run_id))
    return send_file(io.BytesIO(file.content), mimetype="text/csv", as_attachment=True, download_name=file.name)


@bp.route("/benefits/runs/<run_id>/reconcile", methods=["POST"])
@login_required
def reconcile(run_id: str) -> Response:
    require_role(roles.BENEFIT_RUNNERS)
    upload = request.files.get("return_file")
    content = upload.read(20 * 1024 * 1024) if upload else b""
    try:
        result = _call("ReconcileRun", benefits_pb2.ReconcileRunRequest(run_id=run_id, content=content))
    except BackendError as exc:
        flash_refusal(exc)
        return redirect(url_for("benefits.run", run_id=run_id))
    counts = {"paid": result.paid, "failed": result.failed, "unchanged": result.unchanged}
    flash(gettext(RECONCILED, **counts, outstanding=result.outstanding))
    return redirect(url_for("benefits.run", run_id=run_id, failed="1" if result.failed else ""))


@bp.route("/benefits/runs/<run_id>/reissue", methods=["POST"])
@login_required
def reissue(run_id: str) -> Response:
    require_role(roles.BENEFIT_RUNNERS)
    accounts = {
        key.removeprefix("account-"): value.strip()
        for key, value in request.form.items()
        if key.startswith("account-") and value.strip()
    }
    try:
        reply = _call("ReissuePayments", benefits_pb2.ReissuePaymentsRequest(run_id=run_id, accounts=accounts))
    except BackendError as exc:
        flash_refusal(exc)
        return redirect(url_for("benefits.run", run_id=run_id, failed="1"))
    flash(gettext("已重新发放,批次 %(batch)s", batch=reply.batch))
    return redirect(url_for("benefits.run", run_id=run_id))


# -- ledger and the fund-usage report ------------------------------------------------------------------------


def _balances() -> list[benefits_pb2.Balance]:
    period = _date(request.args.get("period", ""))
    return list(_call("ListBalances", benefits_pb2.ListBalancesRequest(period=period)).balances)


def _rows(balances: Iterable[benefits_pb2.Balance]) -> list[list[Any]]:
    return [[day(b.period)[:7], b.fund, b.town, b.kind, b.amount_fen, yuan(b.amount_fen), b.entries] for b in balances]


@bp.route("/benefits/ledger")
@login_required
def ledger() -> str:
    require_role(roles.BENEFIT_LEDGER_READERS)
    balances = _balances()
    totals: dict[str, int] = {}
    for balance in balances:
        totals[balance.kind] = totals.get(balance.kind, 0) + balance.amount_fen
    return render_template(
        "benefits/ledger.html", balances=balances, totals=totals, period=request.args.get("period", "")
    )


@bp.route("/benefits/ledger.csv")
@login_required
def ledger_csv() -> Response:
    require_role(roles.BENEFIT_LEDGER_READERS)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(BALANCE_COLUMNS)
    writer.writerows(_rows(_balances()))
    data = io.BytesIO(out.getvalue().encode("utf-8-sig"))  # the BOM lets spreadsheet programs read UTF-8
    return send_file(data, mimetype="text/csv", as_attachment=True, download_name="fund-usage.csv")


@bp.route("/benefits/ledger.xlsx")
@login_required
def ledger_xlsx() -> Response:
    require_role(roles.BENEFIT_LEDGER_READERS)
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "资金使用 Fund usage"
    sheet.append(list(BALANCE_COLUMNS))
    for row in _rows(_balances()):
        sheet.append(row)
    data = io.BytesIO()
    workbook.save(data)
    data.seek(0)
    return send_file(
        data,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name="fund-usage.xlsx",
    )


# -- policies -------------------------------------------------------------------------------------------------


@bp.route("/benefits/policies", methods=["GET", "POST"])
@login_required
def policies() -> str | Response:
    user = require_role(roles.BENEFIT_POLICY_READERS)
    versions = list(_call("ListPolicyVersions", benefits_pb2.ListPolicyVersionsRequest()).versions)
    if request.method == "POST":
        admin = require_role(frozenset({Role.DISTRICT_ADMIN}))
        try:
            if request.form.get("action") == "sample" or not versions:
                _call("LoadSamplePolicy", benefits_pb2.LoadSamplePolicyRequest())
                flash(gettext("已载入样例标准(金额为样例)"))
                return redirect(url_for("benefits.policies"))
            edited = _edited(versions[0], admin.district)
            saved = _call("SavePolicyVersion", benefits_pb2.SavePolicyVersionRequest(version=edited))
        except BackendError as exc:
            flash_refusal(exc)
            return redirect(url_for("benefits.policies"))
        flash(gettext("已保存第 %(version)s 版", version=saved.version.version))
        return redirect(url_for("benefits.policies"))
    return render_template("benefits/policies.html", versions=versions, can_edit=user.role is Role.DISTRICT_ADMIN)


def _edited(base: benefits_pb2.PolicyVersion, district: str) -> benefits_pb2.PolicyVersion:
    """A new version from the form: the newest version's rules with the amounts typed (in yuan)."""
    edited = benefits_pb2.PolicyVersion()
    edited.CopyFrom(base)
    edited.version = 0
    edited.frozen = False
    edited.created_by = ""
    edited.district = district
    edited.sample = request.form.get("sample") == "on"
    edited.effective_from.CopyFrom(_date(request.form.get("effective_from", "")))
    edited.ClearField("effective_until")
    for rule in edited.rules:
        typed = request.form.get(f"amount-{rule.code}", "").strip()
        if typed:
            rule.amount_fen = _fen(typed)
    return edited


def _fen(typed: str) -> int:
    """Yuan as typed ("1440" or "1440.50") to whole fen, without floating point; bad input becomes -1 (refused)."""
    whole, _, cents = typed.replace(",", "").partition(".")
    if not whole.isdigit() or (cents and (not cents.isdigit() or len(cents) > 2)):
        return -1
    return int(whole) * 100 + int(cents.ljust(2, "0") or 0)


# -- the 0–3 insurance for every local child ----------------------------------------------------------------


@bp.route("/benefits/insurance", methods=["GET", "POST"])
@login_required
def insurance() -> str | Response:
    user = require_role(roles.BENEFIT_APPLICANTS)
    report = None
    year = None
    if request.method == "POST":
        try:
            if request.form.get("action") == "enrol":
                require_role(frozenset({Role.TOWN_ADMIN}))
                year = _call(
                    "EnrolInsuranceYear",
                    benefits_pb2.EnrolInsuranceYearRequest(year=int(request.form.get("year", "0") or 0)),
                )
            else:
                upload = request.files.get("roster")
                report = _call(
                    "ImportInsuranceRoster",
                    benefits_pb2.ImportInsuranceRosterRequest(
                        content=upload.read() if upload else b"", file_name=(upload.filename or "") if upload else ""
                    ),
                )
        except (BackendError, ValueError) as exc:
            if isinstance(exc, BackendError):
                flash_refusal(exc)
            else:
                flash(gettext("年份应为数字"), "error")
    return render_template(
        "benefits/insurance.html",
        report=report,
        year=year,
        this_year=china_today().year,
        can_enrol=user.role is Role.TOWN_ADMIN,
    )


@bp.route("/benefits/insurance/<int:year>.csv")
@login_required
def insurer_file(year: int) -> Response:
    require_role(roles.BENEFIT_APPLICANTS)
    file = _call("GetInsurerFile", benefits_pb2.GetInsurerFileRequest(year=year))
    return send_file(io.BytesIO(file.content), mimetype="text/csv", as_attachment=True, download_name=file.name)


def _page() -> dict[str, Any]:
    """The page a list page asks its service for: 50 rows after the `page` token of the "next page" link."""
    return {"page_size": 50, "page_token": request.args.get("page", "")[:200]}
