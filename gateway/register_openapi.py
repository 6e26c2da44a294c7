"""The register's part of the OpenAPI document (gateway/views/register_api.py): paths and body schemas,
with the registry's code lists (register_codes) as enums."""

from __future__ import annotations

from typing import Any

from gateway import register_codes
from gateway.casework_forms import FORMS

_STRING = {"type": "string"}
_DATE = {"type": "string", "format": "date", "description": "YYYY-MM-DD"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _codes(choices: register_codes.Choices) -> dict[str, Any]:
    return {"type": "string", "enum": [code for code, _ in choices]}


def _replies(status: str, schema: dict[str, Any], **more: dict[str, Any]) -> dict[str, Any]:
    return {
        status: {"description": "OK", **_json(schema)},
        **more,
        "default": {"description": "Error", **_json(_ref("Error"))},
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_CHILD_ID = {"name": "child_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
PATHS: dict[str, Any] = {
    "/api/v1/children": {
        "get": {
            "summary": "The register: by name (pinyin, homophones) or identity number, or filtered and paged",
            "parameters": [
                _query("name", _STRING, "matched as the registry matches reports"),
                _query("identity_number", _STRING, "18 characters"),
                _query("village", {"type": "string", "pattern": "^[0-9]{0,12}$"}, "12-digit village code"),
                _query("category", _codes(register_codes.CATEGORIES), "a current difficulty category"),
                _query("status", _codes(register_codes.CASE_STATUSES), "the case status"),
                _query("page_size", {"type": "integer", "minimum": 1, "maximum": 500}, "children per page"),
                _query("page_token", _STRING, "next_page_token of the previous page"),
            ],
            "responses": _replies("200", _ref("ChildPage")),
        },
        "post": {
            "summary": "Register a child; 409 with the possible duplicates unless confirmed_not_duplicate",
            "requestBody": {"required": True, **_json(_ref("NewChild"))},
            "responses": _replies(
                "201",
                {"type": "object", "required": ["child"], "properties": {"child": _ref("Child")}},
                **{"409": {"description": "Possible duplicates", **_json(_ref("PossibleDuplicates"))}},
            ),
        },
    },
    "/api/v1/children/{child_id}/casework/{action}": {
        "post": {
            "summary": "One change to the case file: the body holds the fields of the portal's form of that name",
            "parameters": [
                _CHILD_ID,
                {
                    "name": "action",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": [*FORMS, "staff"]},
                },
            ],
            "requestBody": {"required": True, **_json(_ref("CaseworkFields"))},
            "responses": _replies("200", _ref("CaseworkDone")),
        }
    },
    "/api/v1/dashboard": {
        "get": {
            "summary": "The register in numbers (a district officer may name a town of the district)",
            "parameters": [_query("town", {"type": "string", "pattern": "^[0-9]{0,9}$"}, "9-digit town code")],
            "responses": _replies("200", _ref("RegisterStatistics")),
        }
    },
}

_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
SCHEMAS: dict[str, Any] = {
    "Child": {
        "type": "object",
        "required": ["child_id", "legal_name", "sex", "categories"],
        "properties": {
            "child_id": _STRING,
            "legal_name": _STRING,
            "sex": {"type": "string", "enum": ["male", "female", "unknown"]},
            "birth_date": _STRING,
            "identity_number_masked": _STRING,
            "residence_division_code": _STRING,
            "household_division_code": _STRING,
            "school": _STRING,
            "grade": _STRING,
            "categories": {"type": "array", "items": _codes(register_codes.CATEGORIES)},
            "provisional": {"type": "boolean"},
        },
    },
    "ChildCandidate": {
        "type": "object",
        "required": ["child", "score", "reasons"],
        "properties": {
            "child": _ref("Child"),
            "score": {"type": "number"},
            "reasons": {"type": "array", "items": _STRING},
        },
    },
    "ChildPage": {
        "type": "object",
        "required": ["children", "next_page_token"],
        "properties": {"children": {"type": "array", "items": _ref("ChildCandidate")}, "next_page_token": _STRING},
    },
    "NewChild": {
        "type": "object",
        "required": ["legal_name"],
        "properties": {
            "legal_name": _STRING,
            "sex": {"type": "string", "enum": ["male", "female", ""]},
            "birth_date": _DATE,
            "identity_number": _STRING,
            "residence_division_code": _STRING,
            "residence_address": _STRING,
            "household_division_code": _STRING,
            "household_address": _STRING,
            "school": _STRING,
            "grade": _STRING,
            "contact_name": _STRING,
            "contact_relationship": _STRING,
            "contact_phone": _STRING,
            "confirmed_not_duplicate": {"type": "boolean"},
        },
    },
    "PossibleDuplicates": {
        "type": "object",
        "required": ["possible_duplicates"],
        "properties": {
            "error": _STRING,
            "message": _STRING,
            "possible_duplicates": {"type": "array", "items": _ref("ChildCandidate")},
        },
    },
    "CaseworkFields": {
        "type": "object",
        "description": "family: name, relationship, guardian, status, status_since, status_until, evidence; "
        "family-remove: member_id, reason; category: category, source, evidence, valid_from; category-end: "
        "entry_id, valid_to, reason; status: status, reason; staff: responsible_user_id, responsible_person, "
        "social_worker_user_id, social_worker, child_director_user_id, child_director; assessment: kind, "
        "assessed_on, assessor, summary, score.<domain> (0-4) and finding.<domain> for each of the six domains; "
        "goal: description; goal-update: goal_id, status; action: goal_id, description, owner_kind, owner, "
        "due_on, referral_id; action-update: action_id, status, note; visit: visited_on, visitor, findings",
        "additionalProperties": {"oneOf": [_STRING, {"type": "number"}, {"type": "boolean"}]},
    },
    "CaseworkDone": {
        "type": "object",
        "required": ["child_id", "action", "done"],
        "properties": {"child_id": _STRING, "action": _STRING, "done": {"type": "boolean"}},
    },
    "RegisterStatistics": {
        "type": "object",
        "required": ["town_code", "children", "overdue_visits", "overdue_plan_actions"],
        "properties": {
            "town_code": _STRING,
            "children": {"type": "integer"},
            "by_category": _COUNTS,
            "by_village": _COUNTS,
            "by_case_status": _COUNTS,
            "by_risk_level": _COUNTS,
            "overdue_visits": {"type": "integer"},
            "overdue_plan_actions": {"type": "integer"},
        },
    },
}
