"""The OpenAPI schemas of the JSON API's answers built from `presenters` (reports, case files, referrals,
notifications, the signed-in user), and of answers that are a service's message as protobuf's JSON mapping
(`message_schema`, from the message's own descriptor, so it cannot drift from the contract)."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

_STRING = {"type": "string"}
_BOOLEAN = {"type": "boolean"}
_INTEGER = {"type": "integer"}
_TIME = {"type": "string", "description": "ISO 8601 in Beijing time, empty if not set"}
_DAY = {"type": "string", "description": "YYYY-MM-DD, empty if not known"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"allOf": [schema], "nullable": True}


def _object(properties: dict[str, Any], *optional: str) -> dict[str, Any]:
    """An object whose properties are all present except `optional` ones."""
    return {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }


def list_of(key: str, item: str, *more: str) -> dict[str, Any]:
    """`{key: [item, ...]}` (and string fields `more`, e.g. next_page_token)."""
    return _object({key: _array(_ref(item))} | {name: _STRING for name in more})


_WELL_KNOWN = {"google.protobuf.Timestamp": {"type": "string", "format": "date-time"}}
_SCALARS = {
    FieldDescriptor.TYPE_BOOL: _BOOLEAN,
    FieldDescriptor.TYPE_INT32: _INTEGER,
    FieldDescriptor.TYPE_SINT32: _INTEGER,
    FieldDescriptor.TYPE_UINT32: _INTEGER,
    FieldDescriptor.TYPE_FIXED32: _INTEGER,
    FieldDescriptor.TYPE_SFIXED32: _INTEGER,
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}


def message_schema(descriptor: Descriptor) -> dict[str, Any]:
    """A message as `json_format.MessageToDict(preserving_proto_field_name=True)` writes it: fields left at
    their default are omitted (so none is required), 64-bit integers are strings, enums their names."""
    properties: dict[str, Any] = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = _field_schema(field.message_type.fields_by_name["value"])
            properties[field.name] = {"type": "object", "additionalProperties": value}
            continue
        schema = _field_schema(field)
        properties[field.name] = _array(schema) if field.is_repeated else schema
    return {"type": "object", "properties": properties}


def _field_schema(field: FieldDescriptor) -> dict[str, Any]:
    if field.message_type is not None:
        return _WELL_KNOWN.get(field.message_type.full_name) or message_schema(field.message_type)
    if field.enum_type is not None:
        return {"type": "string", "enum": [value.name for value in field.enum_type.values]}
    return _SCALARS.get(field.type, _STRING)  # strings, and 64-bit integers (as strings)


_CODED = _object({"code": _STRING, "label": _STRING})
SCHEMAS: dict[str, Any] = {
    "Coded": _CODED,
    "Me": _object(
        {
            "user_id": _STRING,
            "username": _STRING,
            "display_name": _STRING,
            "role": _STRING,
            "tenant": _STRING,
            "district": _STRING,
            "agency": _STRING,
            "channels": _array(_STRING),
        }
    ),
    "Deadline": _object({"milestone": _ref("Coded"), "due_at": _TIME, "completed_at": _TIME, "breached": _BOOLEAN}),
    "Report": _object(
        {
            "report_id": _STRING,
            "tenant": _STRING,
            "channel": _ref("Coded"),
            "status": _ref("Coded"),
            "urgency": _nullable(_ref("Coded")),
            "crisis": _BOOLEAN,
            "child_id": _STRING,
            "child": _object(
                {
                    "name": _STRING,
                    "sex": _ref("Coded"),
                    "birth_date": _DAY,
                    "approximate_age": {"type": "integer", "nullable": True},
                    "description": _STRING,
                    "school": _STRING,
                    "guardian_names": _array(_STRING),
                }
            ),
            "division_code": _STRING,
            "place_text": _STRING,
            "occurred_at": _TIME,
            "received_at": _TIME,
            "situation_types": _array(_ref("Coded")),
            "facts": _array(_ref("Coded")),
            "narrative": _STRING,
            "details_withheld": _BOOLEAN,
            "reporter": _nullable(
                _object({"name": _STRING, "phone": _STRING, "organisation": _STRING, "role": _STRING})
            ),
            "triage_reasons": _array(_STRING),
            "attention_reason": _STRING,
            "group_id": _STRING,
            "deadlines": _array(_ref("Deadline")),
            "outcome_notice": _STRING,
            "person_triage": _nullable(_ref("Coded")),
            "version": _INTEGER,
        },
        "details_withheld",
        "attention_reason",
        "group_id",
        "person_triage",
        "version",
    ),
    "ReportRead": _object(
        {"actor": _STRING, "role": _STRING, "purpose": _STRING, "saw_reporter": _BOOLEAN, "at": _TIME}
    ),
    "LinkCandidate": _object(
        {
            "child_id": _STRING,
            "score": {"type": "number"},
            "reasons": _array(_STRING),
            "name": _STRING,
            "sex": _ref("Coded"),
            "birth_date": _DAY,
            "identity_number_masked": _STRING,
            "residence_division_code": _STRING,
            "school": _STRING,
            "provisional": _BOOLEAN,
        }
    ),
    "CaseFile": _object(
        {
            "case_id": _STRING,
            "status": _STRING,
            "responsible_person": _STRING,
            "social_worker": _STRING,
            "child_director": _STRING,
            "child": _object(
                {
                    "child_id": _STRING,
                    "legal_name": _STRING,
                    "other_names": _array(_STRING),
                    "sex": _ref("Coded"),
                    "birth_date": _DAY,
                    "identity_number_masked": _STRING,
                    "ethnicity_code": _STRING,
                    "residence_division_code": _STRING,
                    "residence_address": _STRING,
                    "school": _STRING,
                    "grade": _STRING,
                    "categories": _array(_STRING),
                    "provisional": _BOOLEAN,
                }
            ),
            "timeline": _array(
                _object(
                    {
                        "at": _TIME,
                        "kind": _STRING,
                        "summary": _STRING,
                        "source_service": _STRING,
                        "reference_id": _STRING,
                    }
                )
            ),
        }
    ),
    "ReferralSummary": _object(
        {
            "referral_id": _STRING,
            "report_id": _STRING,
            "child_id": _STRING,
            "agency_code": _STRING,
            "agency_name": _STRING,
            "status": _STRING,
            "reason": _STRING,
            "rule_code": _STRING,
            "opened_at": _TIME,
            "due_at": _TIME,
            "urgent": _BOOLEAN,
        }
    ),
    "Notification": _object(
        {
            "notification_id": _STRING,
            "title": _STRING,
            "body": _STRING,
            "priority": _ref("Coded"),
            "subject_type": _STRING,
            "subject_id": _STRING,
            "created_at": _TIME,
            "read": _BOOLEAN,
        }
    ),
}
