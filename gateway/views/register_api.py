"""The register's actions in the JSON API (/api/v1): search, registering a child after the duplicate check,
casework on a case file, and the dashboard's numbers. The same request building as the pages
(`casework_forms`); the same error shape (`errors.respond`). Described in `register_openapi.py`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, request
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import registry_pb2
from werkzeug.wrappers import Response

from gateway import api_input, casework_forms, roles
from gateway.i18n import gettext
from gateway.presenters import day
from gateway.security import caller, components, login_required, require_role
from platform_runtime.errors import InvalidInput

bp = Blueprint("register_api", __name__, url_prefix="/api/v1")
Reply = Response | tuple[dict[str, Any], int] | dict[str, Any]
SEX_CODES = {common_pb2.SEX_MALE: "male", common_pb2.SEX_FEMALE: "female"}
MAX_TEXT = 4000


def _fields() -> dict[str, str]:
    """A flat JSON object as the forms' fields: strings as they are, numbers as text, true as a ticked box."""
    fields: dict[str, str] = {}
    for name, value in api_input.json_object().items():
        if isinstance(value, bool):
            fields[name] = "on" if value else ""
        elif isinstance(value, (str, int, float)):
            fields[name] = str(value)[:MAX_TEXT]
        elif value is not None:
            raise InvalidInput.single(str(name)[:60], "must be a string, a number or true/false")
    return fields


def child_json(child: registry_pb2.Child) -> dict[str, Any]:
    return {
        "child_id": child.child_id,
        "legal_name": child.legal_name,
        "sex": SEX_CODES.get(child.sex, "unknown"),
        "birth_date": day(child.birth_date),
        "identity_number_masked": child.identity_number_masked,
        "residence_division_code": child.residence_division_code,
        "household_division_code": child.household_division_code,
        "school": child.school,
        "grade": child.grade,
        "categories": list(child.categories),
        "provisional": child.provisional,
    }


def _candidate(candidate: registry_pb2.MatchCandidate) -> dict[str, Any]:
    return {"child": child_json(candidate.child), "score": candidate.score, "reasons": list(candidate.reasons)}


@bp.route("/children", methods=["GET"])
@login_required
def search_children() -> Reply:
    require_role(roles.CASE_FILE_READERS)
    args = {name: request.args.get(name, "").strip()[:100] for name in ("name", "identity_number", "village")}
    category, status = request.args.get("category", "")[:60], request.args.get("status", "")[:30]
    backends = components().backends
    if args["name"] or args["identity_number"]:
        probe = registry_pb2.MatchChildRequest(name=args["name"], identity_number=args["identity_number"], limit=50)
        found = backends.match_child(caller(), probe)
        kept = [c for c in found if casework_forms.in_filters(c.child, args["village"], category)]
        return {"children": [_candidate(c) for c in kept], "next_page_token": ""}
    reply = backends.list_children(
        caller(),
        registry_pb2.ListChildrenRequest(
            page_size=min(max(request.args.get("page_size", 50, type=int) or 50, 1), 500),
            page_token=request.args.get("page_token", "")[:64],
            division_code=args["village"],
            category=category,
            case_status=status,
        ),
    )
    return {
        "children": [{"child": child_json(c), "score": 1.0, "reasons": []} for c in reply.children],
        "next_page_token": reply.next_page_token,
    }


@bp.route("/children", methods=["POST"])
@login_required
def register_child() -> Reply:
    """409 with the possible duplicates unless `confirmed_not_duplicate` is true."""
    require_role(roles.REGISTER_KEEPERS)
    fields = _fields()
    wanted = casework_forms.child_request(fields)
    backends = components().backends
    if fields.get("confirmed_not_duplicate") != "on":
        candidates = backends.match_child(caller(), casework_forms.duplicate_probe(wanted))
        if candidates:
            return {
                "error": "Possible duplicate",
                "message": gettext("这名儿童可能已登记:请核对后确认"),
                "possible_duplicates": [_candidate(c) for c in candidates],
            }, 409
    return {"child": child_json(backends.register_child(caller(), wanted))}, 201


@bp.route("/children/<child_id>/casework/<action>", methods=["POST"])
@login_required
def casework(child_id: str, action: str) -> Reply:
    """One casework change, named as the portal's forms are (family, category, status, assessment, ...)."""
    user = require_role(roles.CASE_WORKERS)
    if action not in casework_forms.TAB_OF_FORM:
        abort(404)
    if action in ("status", "staff") and user.role not in roles.CASE_MANAGERS:
        abort(403)
    fields = _fields()
    if action == "staff":
        method, change = casework_forms.assign_staff(child_id, fields, components().users.town_users(user.tenant))
    else:
        method, change = casework_forms.FORMS[action](child_id, fields)
    components().backends.casework(caller(), method, change)
    return {"child_id": child_id, "action": action, "done": True}


@bp.route("/dashboard", methods=["GET"])
@login_required
def dashboard() -> Reply:
    require_role(roles.CASE_FILE_READERS)
    town = request.args.get("town", "")[:9]
    stats = components().backends.register_statistics(caller(), town)

    def counts(pairs: Any) -> dict[str, int]:
        return {pair.key: pair.count for pair in pairs}

    return {
        "town_code": stats.town_code,
        "children": stats.children,
        "by_category": counts(stats.by_category),
        "by_village": counts(stats.by_village),
        "by_case_status": counts(stats.by_case_status),
        "by_risk_level": counts(stats.by_risk_level),
        "overdue_visits": stats.overdue_visits,
        "overdue_plan_actions": stats.overdue_plan_actions,
    }
