"""The survey (排查摸底) in the portal: the template, uploading a spreadsheet for a dry run or an import with its
progress, the row-level error report as a workbook, the history of imports, and the register's export by
category and village (audited with its purpose by the registry)."""

from __future__ import annotations

from io import BytesIO
from urllib.parse import quote

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from minorprot.registry.v1 import survey_pb2
from werkzeug.wrappers import Response

from gateway import roles
from gateway.clients import BackendError
from gateway.errors import flash_refusal
from gateway.i18n import gettext
from gateway.security import caller, components, current_user, login_required, require_role
from gateway.survey_jobs import SurveyJob, SurveyJobs
from gateway.survey_workbook import error_workbook

bp = Blueprint("survey", __name__)
Page = str | tuple[str, int] | Response

MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # the registry's limit
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PROBLEM_OUTCOMES = (survey_pb2.SURVEY_ROW_OUTCOME_REJECTED, survey_pb2.SURVEY_ROW_OUTCOME_POSSIBLE_DUPLICATE)
STATUS_LABELS = {
    survey_pb2.SURVEY_IMPORT_STATUS_RUNNING: "进行中",
    survey_pb2.SURVEY_IMPORT_STATUS_FINISHED: "已完成",
    survey_pb2.SURVEY_IMPORT_STATUS_STOPPED: "已中止",
}


def _jobs() -> SurveyJobs:
    jobs = current_app.extensions.get("survey_jobs")
    if jobs is None:
        jobs = current_app.extensions["survey_jobs"] = SurveyJobs(components().backends)
    return jobs


def _download(name: str, content: bytes) -> Response:
    response = send_file(BytesIO(content), mimetype=XLSX, as_attachment=True, download_name=name)
    # Chinese file names: RFC 5987 form as well, for browsers that read it.
    response.headers["Content-Disposition"] = f"attachment; filename=survey.xlsx; filename*=UTF-8''{quote(name)}"
    return response


@bp.route("/survey")
@login_required
def survey() -> Page:
    user = require_role(roles.CASE_FILE_READERS)
    backends = components().backends
    imports = backends.list_survey_imports(caller(), page_size=50)
    return render_template(
        "register/survey.html",
        imports=imports,
        statuses=STATUS_LABELS,
        villages=backends.list_villages(caller()),
        can_import=user.role in roles.CASE_WORKERS,
    )


@bp.route("/survey/template.xlsx")
@login_required
def template() -> Response:
    require_role(roles.CASE_WORKERS)
    reply = components().backends.survey_template(caller())
    return _download(reply.file_name or "survey-template.xlsx", reply.content)


@bp.route("/survey/upload", methods=["POST"])
@login_required
def upload() -> Page:
    user = require_role(roles.CASE_WORKERS)
    request.max_content_length = MAX_UPLOAD_BYTES
    file = request.files.get("file")
    if file is None or not file.filename:
        flash(gettext("请选择 .xlsx 或 .csv 文件"), "error")
        return redirect(url_for("survey.survey"))
    content = file.read()
    job = _jobs().start(
        caller(),
        user.user_id,
        file.filename,
        content,
        dry_run=request.form.get("mode") != "import",
        duplicates=request.form.get("register_possible_duplicates") == "on",
    )
    return redirect(url_for("survey.job", job_id=job.job_id))


def _job(job_id: str) -> SurveyJob:
    job = _jobs().get(current_user().user_id, job_id)
    if job is None:
        abort(404)
    return job


@bp.route("/survey/jobs/<job_id>")
@login_required
def job(job_id: str) -> Page:
    require_role(roles.CASE_WORKERS)
    found = _job(job_id)
    return render_template("register/survey_job.html", job=found, running=not found.finished.is_set())


@bp.route("/survey/jobs/<job_id>/import", methods=["POST"])
@login_required
def import_checked(job_id: str) -> Response:
    """The import of a file just checked in a dry run, without uploading it again."""
    user = require_role(roles.CASE_WORKERS)
    checked = _job(job_id)
    if not (checked.dry_run and checked.finished.is_set() and checked.content):
        abort(409)
    started = _jobs().start(
        caller(),
        user.user_id,
        checked.file_name,
        checked.content,
        dry_run=False,
        duplicates=request.form.get("register_possible_duplicates") == "on",
    )
    return redirect(url_for("survey.job", job_id=started.job_id))


@bp.route("/survey/imports/<import_id>/problems.xlsx")
@login_required
def problems(import_id: str) -> Response:
    """Every rejected row and possible duplicate of an import or dry run, reason by reason."""
    require_role(roles.CASE_FILE_READERS)
    backends = components().backends
    rows: list[survey_pb2.SurveyRowResult] = []
    token = ""
    while True:
        reply = backends.list_survey_import_rows(
            caller(),
            survey_pb2.ListSurveyImportRowsRequest(
                import_id=import_id, outcomes=PROBLEM_OUTCOMES, page_size=10_000, page_token=token
            ),
        )
        rows.extend(reply.rows)
        token = reply.next_page_token
        if not token:
            break
    return _download(f"排查问题行-{import_id[:8]}.xlsx", error_workbook(rows))


@bp.route("/survey/export", methods=["POST"])
@login_required
def export() -> Page:
    require_role(roles.CASE_FILE_READERS)
    wanted = survey_pb2.ExportRegisterRequest(
        purpose=request.form.get("purpose", "").strip(),
        categories=request.form.getlist("category"),
        village_codes=request.form.getlist("village"),
    )
    try:
        name, content = components().backends.export_register(caller(), wanted)
    except BackendError as exc:
        if exc.code != "INVALID_ARGUMENT":
            raise
        flash_refusal(exc)
        return redirect(url_for("survey.survey"))
    return _download(name, content)
