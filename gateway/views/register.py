"""The classified register (分类台账) in the portal: search, registering a child after the duplicate check,
and the child's case file in tabs with the casework forms.

Every read of a case file names its purpose and the registry audits it. The purpose is asked when a case
file is opened and kept in the (signed) session for that child, so the tabs and the forms' results are read
again with it, each read audited; opening another child asks again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from minorprot.registry.v1 import casework_pb2, registry_pb2
from werkzeug.wrappers import Response

from gateway import casework_forms, purposes, register_codes, roles
from gateway.clients import BackendError
from gateway.errors import shown
from gateway.i18n import gettext
from gateway.presenters import day, when
from gateway.security import caller, components, current_user, login_required, require_role
from platform_runtime.errors import InvalidInput
from platform_runtime.vocabulary import CHINA_STANDARD_TIME

bp = Blueprint("register", __name__)
CASE_FILE = "case_file"  # the kind of record whose purposes gateway.purposes remembers here
log = logging.getLogger(__name__)
Page = str | tuple[str, int] | Response

PAGE_SIZE = 20
TABS = (
    ("profile", "基本信息"),
    ("family", "家庭与监护"),
    ("categories", "困境类别"),
    ("case", "档案状态与责任人"),
    ("assessments", "评估"),
    ("plan", "帮扶计划"),
    ("visits", "随访"),
    ("timeline", "时间线"),
    ("history", "变更记录"),
)
# The service's refusals a form shows above itself rather than as an error page.
FORM_ERRORS = frozenset({"INVALID_ARGUMENT", "FAILED_PRECONDITION", "ABORTED", "NOT_FOUND"})


@bp.app_template_filter("day")
def _day(value: Any) -> str:
    return day(value)


@bp.app_template_filter("stamp")
def _stamp(value: Any) -> str:
    return when(value)[:16].replace("T", " ")


@bp.app_context_processor
def _codes() -> dict[str, Any]:
    return {"codes": register_codes, "label": lambda choices, code: gettext(register_codes.label(choices, code))}


def _today() -> str:
    return datetime.now(CHINA_STANDARD_TIME).date().isoformat()


# -- search --------------------------------------------------------------------------------------------------


@bp.route("/register")
@login_required
def search() -> Page:
    require_role(roles.CASE_FILE_READERS)
    backends = components().backends
    args = {
        name: request.args.get(name, "").strip()[:100]
        for name in ("name", "identity_number", "village", "category", "status")
    }
    page_token = request.args.get("page_token", "")[:64]
    overdue = request.args.get("overdue") == "1"
    villages = backends.list_villages(caller())
    next_token = ""
    if args["name"] or args["identity_number"]:
        # Names are matched as the registry matches reports: pinyin, homophones, other names.
        probe = registry_pb2.MatchChildRequest(name=args["name"], identity_number=args["identity_number"], limit=50)
        found = [c.child for c in backends.match_child(caller(), probe)]
        found = [child for child in found if casework_forms.in_filters(child, args["village"], args["category"])]
    else:
        reply = backends.list_children(
            caller(),
            registry_pb2.ListChildrenRequest(
                page_size=PAGE_SIZE,
                page_token=page_token,
                division_code=args["village"],
                category=args["category"],
                case_status=args["status"],
                visit_overdue=overdue,
            ),
        )
        found, next_token = list(reply.children), reply.next_page_token
    return render_template(
        "register/search.html",
        children=found,
        args=args,
        next_token=next_token,
        villages=villages,
        village_names={v.code: v.name for v in villages},
        searched_by_name=bool(args["name"] or args["identity_number"]),
        overdue=overdue,
    )


# -- registering a child -------------------------------------------------------------------------------------


@bp.route("/register/new", methods=["GET", "POST"])
@login_required
def new_child() -> Page:
    require_role(roles.REGISTER_KEEPERS)
    backends = components().backends
    villages = backends.list_villages(caller())
    if request.method == "GET":
        return render_template("register/new.html", values={}, errors={}, candidates=[], villages=villages)
    form = request.form
    try:
        child_request = casework_forms.child_request(form)
        if form.get("confirmed") != "yes":
            candidates = backends.match_child(caller(), casework_forms.duplicate_probe(child_request))
            if candidates:
                # Shown before anything is saved: open the existing record, or confirm it is another child.
                return render_template(
                    "register/new.html", values=form, errors={}, candidates=candidates, villages=villages
                )
        child = backends.register_child(caller(), child_request)
    except (InvalidInput, BackendError) as exc:
        errors = _field_errors(exc)
        return render_template("register/new.html", values=form, errors=errors, candidates=[], villages=villages), 400
    flash(gettext("已登记:%(name)s", name=child.legal_name))
    return redirect(url_for("register.child", child_id=child.child_id))


def _field_errors(exc: Exception) -> dict[str, list[str]]:
    if isinstance(exc, BackendError) and exc.code not in FORM_ERRORS:
        raise exc
    violations = exc.violations if isinstance(exc, (InvalidInput, BackendError)) else ()
    errors: dict[str, list[str]] = {}
    for violation in violations:
        errors.setdefault(violation.field or "_", []).append(shown(violation.message))
    if not errors:
        errors["_"] = [shown(exc.message if isinstance(exc, BackendError) else str(exc))]
    return errors


# -- the child's case file -----------------------------------------------------------------------------------


@bp.route("/register/children/<child_id>", methods=["GET", "POST"])
@login_required
def child(child_id: str) -> Page:
    require_role(roles.CASE_FILE_READERS)
    tab = request.args.get("tab", "profile")
    if tab not in dict(TABS):
        abort(404)
    if request.method == "POST":
        purpose = request.form.get("purpose", "").strip()
    else:
        purpose = purposes.remembered(CASE_FILE, child_id)
        if not purpose:
            return render_template("register/purpose.html", child_id=child_id, tab=tab, purpose="", error="")
    backends = components().backends
    try:
        case = backends.get_case_file(caller(), child_id, purpose)
    except BackendError as exc:
        if exc.code != "INVALID_ARGUMENT":
            raise
        return render_template(
            "register/purpose.html", child_id=child_id, tab=tab, purpose=purpose, error=exc.message
        ), 400
    purposes.remember(CASE_FILE, child_id, purpose)
    if case.child.child_id != child_id:  # merged into another record: that one is the child's file now
        purposes.remember(CASE_FILE, case.child.child_id, purpose)
        flash(gettext("此记录已合并到 %(name)s", name=case.child.legal_name))
        return redirect(url_for("register.child", child_id=case.child.child_id, tab=tab))
    changes: list[casework_pb2.ChangeEntry] = []
    if tab == "history":
        history = casework_pb2.ListChangesRequest(child_id=child_id, purpose=purpose, page_size=200)
        changes = list(backends.list_changes(caller(), history).changes)
    user = current_user()
    staff_users = components().users.town_users(user.tenant) if tab == "case" else []
    return render_template(
        "register/child.html",
        case=case,
        child=case.child,
        tab=tab,
        tabs=TABS,
        purpose=purpose,
        changes=changes,
        staff_users=staff_users,
        today=_today(),
        can_edit=user.role in roles.CASE_WORKERS,
        can_manage=user.role in roles.CASE_MANAGERS,
        overdue=bool(case.HasField("next_visit_due") and day(case.next_visit_due) < _today()),
    )


@bp.route("/register/children/<child_id>/profile", methods=["POST"])
@login_required
def profile(child_id: str) -> Response:
    require_role(roles.CASE_WORKERS)
    try:
        components().backends.update_child(caller(), casework_forms.update_child(child_id, request.form))
        flash(gettext("已保存"))
    except (InvalidInput, BackendError) as exc:
        _flash_errors(exc)
    return redirect(url_for("register.child", child_id=child_id, tab="profile"))


# -- suspected duplicates: side by side, merge, undo ---------------------------------------------------------


def _case_file_read(child_id: str) -> registry_pb2.CaseFile | None:
    """The case file read with the purpose the user gave for this child; None when none was given yet."""
    purpose = purposes.remembered(CASE_FILE, child_id)
    return components().backends.get_case_file(caller(), child_id, purpose) if purpose else None


@bp.route("/register/children/<child_id>/duplicates")
@login_required
def duplicates(child_id: str) -> Page:
    require_role(roles.CASE_MANAGERS)
    case = _case_file_read(child_id)
    if case is None:
        return redirect(url_for("register.child", child_id=child_id))
    child = case.child
    probe = registry_pb2.MatchChildRequest(
        name=child.legal_name,
        sex=child.sex,
        division_code=child.residence_division_code or child.household_division_code,
        school=child.school,
        guardian_names=[m.name for m in case.family if m.guardian and m.name],
        limit=10,
    )
    if child.HasField("birth_date"):
        probe.birth_date.CopyFrom(child.birth_date)
    found = [c for c in components().backends.match_child(caller(), probe) if c.child.child_id != child.child_id]
    return render_template("register/duplicates.html", child=child, candidates=found)


@bp.route("/register/children/<child_id>/compare/<other_id>")
@login_required
def compare(child_id: str, other_id: str) -> Page:
    require_role(roles.CASE_MANAGERS)
    case = _case_file_read(child_id)
    if case is None:
        return redirect(url_for("register.child", child_id=child_id))
    # Reading the other record is part of the same task: it is audited with the same purpose.
    purpose = purposes.remembered(CASE_FILE, child_id)  # set: the case file was just read with it
    purposes.remember(CASE_FILE, other_id, purpose)
    other = components().backends.get_case_file(caller(), other_id, purpose)
    return render_template("register/compare.html", left=case, right=other)


@bp.route("/register/children/<child_id>/merge", methods=["POST"])
@login_required
def merge(child_id: str) -> Response:
    require_role(roles.CASE_MANAGERS)
    other_id = request.form.get("other_id", "")
    surviving = request.form.get("surviving", "")
    if surviving not in (child_id, other_id) or not other_id or other_id == child_id:
        abort(400)
    merged = other_id if surviving == child_id else child_id
    try:
        components().backends.merge_children(caller(), surviving, merged, request.form.get("reason", "").strip())
    except BackendError as exc:
        _flash_errors(exc)
        return redirect(url_for("register.compare", child_id=child_id, other_id=other_id))
    flash(gettext("已合并,可在基本信息中撤销"))
    return redirect(url_for("register.child", child_id=surviving))


@bp.route("/register/children/<child_id>/unmerge", methods=["POST"])
@login_required
def unmerge(child_id: str) -> Response:
    require_role(roles.CASE_MANAGERS)
    merged_id = request.form.get("merged_child_id", "")
    try:
        restored = components().backends.unmerge_children(caller(), merged_id, request.form.get("reason", "").strip())
    except BackendError as exc:
        _flash_errors(exc)
        return redirect(url_for("register.child", child_id=child_id))
    if purposes.remembered(CASE_FILE, child_id):
        purposes.remember(CASE_FILE, restored.child_id, purposes.remembered(CASE_FILE, child_id))
    flash(gettext("已撤销合并:%(name)s", name=restored.legal_name))
    return redirect(url_for("register.child", child_id=restored.child_id))


def _flash_errors(exc: Exception) -> None:
    for field, messages in _field_errors(exc).items():
        for message in messages:
            flash(f"{field}: {message}" if field != "_" else message, "error")


@bp.route("/register/children/<child_id>/<form_name>", methods=["POST"])
@login_required
def casework(child_id: str, form_name: str) -> Response:
    user = require_role(roles.CASE_WORKERS)
    tab = casework_forms.TAB_OF_FORM.get(form_name)
    if tab is None:
        abort(404)
    if form_name in ("status", "staff") and user.role not in roles.CASE_MANAGERS:
        abort(403)
    try:
        if form_name == "staff":
            method, change = casework_forms.assign_staff(
                child_id, request.form, components().users.town_users(user.tenant)
            )
        else:
            method, change = casework_forms.FORMS[form_name](child_id, request.form)
        components().backends.casework(caller(), method, change)
        flash(gettext("已保存"))
    except (InvalidInput, BackendError) as exc:
        _flash_errors(exc)
    return redirect(url_for("register.child", child_id=child_id, tab=tab))
