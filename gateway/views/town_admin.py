"""Town administration: the town's villages and communities, its users and their roles, and the audit log of
who read which case file, when and why. For the town administrator only."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from minorprot.registry.v1 import registry_pb2
from minorprot.reporting.v1 import reporting_pb2
from werkzeug.wrappers import Response

from gateway.accounts import NewUser, UserProblems
from gateway.clients import BackendError
from gateway.errors import flash_refusal
from gateway.i18n import gettext
from gateway.security import caller, components, login_required, require_role
from platform_runtime.auth import Role
from platform_runtime.vocabulary import Fact, SituationType, Urgency

bp = Blueprint("town_admin", __name__)
Page = str | tuple[str, int] | Response

ADMINS = frozenset({Role.TOWN_ADMIN})
VILLAGES_SAVED = "已保存:新增 %(added)s,改名 %(renamed)s,撤销 %(retired)s"
# The roles a town gives its own people; district and agency accounts are made by the platform's operators.
TOWN_ROLES = (
    (Role.CASEWORKER, "社工(儿童督导员)"),
    (Role.CHILD_DIRECTOR, "儿童主任"),
    (Role.TOWN_ADMIN, "乡镇管理员"),
    (Role.MANDATED_REPORTER, "强制报告人"),
)
URGENCIES = [(name, value) for name, value in reporting_pb2.Urgency.items() if value]
ACTION_LABELS = {
    "read_case_file": "查阅档案",
    "read_change_history": "查阅变更记录",
    "export_register": "导出台账",
    "read_child": "查看儿童",
    "list_children": "浏览台账",
    "match_child": "查重",
    "merge_children": "合并",
    "unmerge_children": "撤销合并",
    "set_villages": "修改村(社区)",
    "list_audit_entries": "查看审计日志",
}


@bp.route("/admin")
@login_required
def admin() -> Page:
    user = require_role(ADMINS)
    villages = components().backends.list_villages(caller(), include_retired=True)
    return render_template(
        "register/admin.html",
        villages=villages,
        villages_text="\n".join(f"{v.code},{v.name}" for v in villages if not v.retired),
        users=components().users.town_users(user.tenant),
        town_roles=TOWN_ROLES,
    )


@bp.route("/admin/villages", methods=["POST"])
@login_required
def villages() -> Response:
    require_role(ADMINS)
    listed = []
    for number, line in enumerate(request.form.get("villages", "").splitlines(), start=1):
        if not line.strip():
            continue
        code, _, name = line.replace("，", ",").partition(",")
        if not name.strip():
            flash(gettext("第 %(number)s 行:应为 代码,名称", number=number), "error")
            return redirect(url_for("town_admin.admin"))
        listed.append(registry_pb2.Village(code=code.strip(), name=name.strip()))
    try:
        result = components().backends.set_villages(caller(), listed)
    except BackendError as exc:
        if exc.code != "INVALID_ARGUMENT":
            raise
        flash_refusal(exc)
        return redirect(url_for("town_admin.admin"))
    flash(gettext(VILLAGES_SAVED, added=result.added, renamed=result.renamed, retired=result.retired))
    return redirect(url_for("town_admin.admin"))


@bp.route("/admin/users", methods=["POST"])
@login_required
def add_user() -> Response:
    admin_user = require_role(ADMINS)
    form = request.form
    role = next((r for r, _ in TOWN_ROLES if r.value == form.get("role")), None)
    username = form.get("username", "").strip().lower()
    users = components().users
    if role is None:
        flash(gettext("请选择角色"), "error")
    elif any(u.username == username for u in users.town_users(admin_user.tenant)):
        # save_user would reset that user's password: adding never changes an existing account.
        flash(gettext("用户名 %(username)s 已存在", username=username), "error")
    else:
        new = NewUser(
            username,
            form.get("display_name", "").strip(),
            role,
            admin_user.tenant,
            phone=form.get("phone", "").strip(),
            organisation=form.get("organisation", "").strip(),
        )
        try:
            users.save_user(new, form.get("password", ""))
            flash(gettext("已添加用户:%(name)s", name=new.display_name))
        except UserProblems as exc:
            flash(str(exc), "error")
    return redirect(url_for("town_admin.admin"))


@bp.route("/admin/users/<user_id>/villages", methods=["POST"])
@login_required
def assign_villages(user_id: str) -> Response:
    """A village child director's villages: the registry shows them these villages' children only."""
    admin_user = require_role(ADMINS)
    chosen = request.form.getlist("villages")
    known = {v.code for v in components().backends.list_villages(caller(), include_retired=True)}
    try:
        if not set(chosen) <= known:
            raise UserProblems(gettext("不是本镇的村(社区):%(codes)s", codes=", ".join(sorted(set(chosen) - known))))
        director = components().users.assign_villages(admin_user.tenant, user_id, chosen)
        flash(gettext("已保存:%(name)s", name=director.display_name))
    except UserProblems as exc:
        flash(str(exc), "error")
    return redirect(url_for("town_admin.admin"))


@bp.route("/admin/triage-rules")
@login_required
def triage_rules() -> Page:
    require_role(ADMINS)
    reply = components().backends.list_triage_rule_sets(caller())
    return render_template(
        "register/triage_rules.html",
        rule_sets=reply.rule_sets,
        legal_minimum=reply.legal_minimum,
        urgency={value: Urgency(name.removeprefix("URGENCY_").lower()).label for name, value in URGENCIES},
        situations={s.value: s.label for s in SituationType},
        facts={f.value: f.label for f in Fact},
    )


@bp.route("/admin/audit")
@login_required
def audit() -> Page:
    user = require_role(ADMINS)
    args = {name: request.args.get(name, "").strip()[:64] for name in ("child_id", "actor", "page_token")}
    purposeful = request.args.get("all") != "1"
    reply = components().backends.list_audit_entries(
        caller(),
        registry_pb2.ListAuditEntriesRequest(
            child_id=args["child_id"],
            actor=args["actor"],
            purposeful_only=purposeful,
            page_size=100,
            page_token=args["page_token"],
        ),
    )
    users = components().users.town_users(user.tenant)
    return render_template(
        "register/audit.html",
        entries=reply.entries,
        next_token=reply.next_page_token,
        args=args,
        purposeful=purposeful,
        users=users,
        names={u.user_id: u.display_name for u in users},
        actions=ACTION_LABELS,
    )
