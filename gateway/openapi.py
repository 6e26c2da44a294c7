"""The OpenAPI 3 description of /api/v1, served at /api/v1/openapi.json. Code lists come from the
shared vocabulary (`platform_runtime.vocabulary`), so the document cannot drift from what the service accepts.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from minorprot.referral.v1 import referral_pb2

from gateway import api_schemas, register_openapi
from gateway.handling import MILESTONES
from gateway.second_factor import SECOND_FACTOR_ROLES
from gateway.views.referrals import AGENCY_ACTIONS, REFERRER_ACTIONS
from platform_runtime.vocabulary import KNOWN_SEXES, AgencyKind, Channel, Fact, ReporterRole, SituationType


def _codes(kind: type[Enum]) -> dict[str, Any]:
    return {"type": "string", "enum": [member.value for member in kind]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ok(schema: dict[str, Any], status: str = "200") -> dict[str, Any]:
    return {status: {"description": "OK", **_json(schema)}, "default": {"description": "Error", **_json(_ref("Error"))}}


def _query(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": {"type": "string"}}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_STRING = {"type": "string"}
_REPORT = _ref("Report")


def document() -> dict[str, Any]:
    described = _document()
    # The register's part is kept beside its views (gateway/register_openapi.py).
    described["paths"] |= register_openapi.PATHS
    described["components"]["schemas"] |= register_openapi.SCHEMAS | api_schemas.SCHEMAS
    return described


def _document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Minor protection portal API (未成年人社会保护平台)",
            "version": "1.0.0",
            "description": "Bearer tokens come from POST /api/v1/token; a browser session works too, with the "
            "X-CSRF-Token header on writes. Every call acts for the user's own town.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/token": {
                "post": {
                    "summary": "Exchange username, password and (for some roles) a second-factor code for a short-lived access token",
                    "security": [],
                    "requestBody": {"required": True, **_json(_ref("Credentials"))},
                    "responses": _ok(_ref("AccessToken")),
                }
            },
            "/api/v1/me": {"get": {"summary": "The signed-in user", "responses": _ok(_ref("Me"))}},
            "/api/v1/reports": {
                "get": {
                    "summary": "Recent discovery reports of the user's town",
                    "parameters": [_query("page_size", "at most 200")],
                    "responses": _ok(api_schemas.list_of("reports", "Report")),
                },
                "post": {
                    "summary": "Submit a discovery report (发现报告)",
                    "requestBody": {"required": True, **_json(_ref("ReportSubmission"))},
                    "responses": _ok(_ref("SubmittedReport"), "201"),
                },
            },
            "/api/v1/reports/{report_id}": {
                "get": {
                    "summary": "One report; with a purpose its details (narrative, reporter), and the read is logged",
                    "parameters": [_path("report_id"), _query("purpose", "why the details are opened", required=False)],
                    "responses": _ok(_REPORT),
                }
            },
            "/api/v1/reports/{report_id}/reads": {
                "get": {
                    "summary": "Administrators: who opened the report's details, when and why, oldest first",
                    "parameters": [
                        _path("report_id"),
                        _query("page_size", "1..200, 50 if left out"),
                        _query("page_token", "from the previous page"),
                    ],
                    "responses": _ok(api_schemas.list_of("reads", "ReportRead", "next_page_token")),
                }
            },
            "/api/v1/reports/{report_id}/candidates": {
                "get": {
                    "summary": "Children of the register who may be the report's child (for linking)",
                    "parameters": [_path("report_id")],
                    "responses": _ok(api_schemas.list_of("candidates", "LinkCandidate")),
                }
            },
            "/api/v1/reports/{report_id}/link": {
                "post": {
                    "summary": "Link the report to a child: one of the register (child_id) or a new one (new_child)",
                    "parameters": [_path("report_id")],
                    "requestBody": {
                        "required": True,
                        **_json(
                            {
                                "type": "object",
                                "properties": {"child_id": _STRING, "new_child": {"type": "boolean"}},
                            }
                        ),
                    },
                    "responses": _ok(_REPORT),
                }
            },
            "/api/v1/reports/{report_id}/milestones": {
                "post": {
                    "summary": "Record a milestone of the time limits",
                    "parameters": [_path("report_id")],
                    "requestBody": {
                        "required": True,
                        **_json(
                            {
                                "type": "object",
                                "required": ["milestone"],
                                "properties": {
                                    "milestone": {"type": "string", "enum": list(MILESTONES)},
                                    "completed_at": {
                                        "type": "string",
                                        "description": "ISO 8601, when it happened if not now; Beijing time "
                                        "without an offset",
                                    },
                                },
                            }
                        ),
                    },
                    "responses": _ok(_REPORT),
                }
            },
            "/api/v1/reports/{report_id}/triage": {
                "post": {
                    "summary": "A person's triage of a report from the public (person_triage awaiting): confirm "
                    "(its agency referrals open) or reject (none do); 409 when it is not awaiting triage",
                    "parameters": [_path("report_id")],
                    "requestBody": {
                        "required": True,
                        **_json(
                            {
                                "type": "object",
                                "required": ["decision"],
                                "properties": {
                                    "decision": {"type": "string", "enum": ["confirm", "reject"]},
                                    "expected_version": {
                                        "type": "integer",
                                        "description": "the report version read: 409 if it changed since",
                                    },
                                },
                            }
                        ),
                    },
                    "responses": _ok(_REPORT),
                }
            },
            "/api/v1/reports/{report_id}/outcome-notice": {
                "post": {
                    "summary": "The outcome the reporter sees with the receipt (no child or family data)",
                    "parameters": [_path("report_id")],
                    "requestBody": {
                        "required": True,
                        **_json({"type": "object", "required": ["text"], "properties": {"text": _STRING}}),
                    },
                    "responses": _ok(_REPORT),
                }
            },
            "/api/v1/reports/{report_id}/close": {
                "post": {
                    "summary": "Close the report (an outcome notice is required first)",
                    "parameters": [_path("report_id")],
                    "responses": _ok(_REPORT),
                }
            },
            "/api/v1/children/{child_id}/case-file": {
                "get": {
                    "summary": "A child's case file; the purpose is written to the audit log",
                    "parameters": [_path("child_id"), _query("purpose", "why the file is opened", required=True)],
                    "responses": _ok(_ref("CaseFile")),
                }
            },
            "/api/v1/referrals": {
                "get": {
                    "summary": "Referrals to member units",
                    "parameters": [_query("child_id", "filter"), _query("report_id", "filter")],
                    "responses": _ok(api_schemas.list_of("referrals", "ReferralSummary")),
                }
            },
            "/api/v1/agency/referrals": {
                "get": {
                    "summary": "The referrals addressed to the agency officer's agency (ADR 0014 for agency systems)",
                    "parameters": [
                        _query("status", "sent, accepted, in_progress, ..."),
                        _query("due", "soon or overdue"),
                        _query("page_token", "from the previous page"),
                    ],
                    "responses": _ok(api_schemas.list_of("referrals", "Referral", "next_page_token")),
                }
            },
            "/api/v1/referrals/{referral_id}": {
                "get": {
                    "summary": "A referral and its history",
                    "parameters": [_path("referral_id")],
                    "responses": _ok({"type": "object", "properties": {"referral": _ref("Referral")}}),
                }
            },
            "/api/v1/referrals/{referral_id}/{action}": {
                "post": {
                    "summary": "accept, reject, return, progress, complete (agency officers; Idempotency-Key header) or "
                    "answer, cancel, reassign (the referrer): {text, expected_version, agency_code}",
                    "parameters": [
                        _path("referral_id"),
                        _path("action") | {"schema": {"type": "string", "enum": [*AGENCY_ACTIONS, *REFERRER_ACTIONS]}},
                    ],
                    "requestBody": {"required": True, **_json(_ref("ReferralAction"))},
                    "responses": _ok(_ref("Referral")),
                }
            },
            "/api/v1/inbox": {
                "get": {
                    "summary": "The user's in-app notifications",
                    "parameters": [_query("unread_only", "true to list unread ones only")],
                    "responses": _ok(api_schemas.list_of("notifications", "Notification")),
                }
            },
            "/api/v1/inbox/{notification_id}/read": {
                "post": {
                    "summary": "Mark a notification read",
                    "parameters": [_path("notification_id")],
                    "responses": _ok(_ref("Notification")),
                }
            },
            "/api/v1/public/{town_code}/reports": {
                "post": {
                    "summary": "A public report to a town, anonymous or named; returns only a receipt number",
                    "security": [],
                    "parameters": [_path("town_code")],
                    "requestBody": {"required": True, **_json(_ref("ReportSubmission"))},
                    "responses": _ok({"type": "object", "properties": {"receipt_number": _STRING}}, "201"),
                }
            },
            "/api/v1/public/receipts/lookup": {
                "post": {
                    "summary": "Status and outcome notice of a report, by its receipt number",
                    "security": [],
                    "requestBody": {
                        "required": True,
                        **_json(
                            {
                                "type": "object",
                                "required": ["receipt_number"],
                                "properties": {"receipt_number": _STRING},
                            }
                        ),
                    },
                    "responses": _ok(_ref("ReceiptStatus")),
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Credentials": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": _STRING,
                        "password": {"type": "string", "format": "password"},
                        "code": {
                            "type": "string",
                            "description": "The second factor, required for the roles "
                            + ", ".join(sorted(role.value for role in SECOND_FACTOR_ROLES))
                            + ": the current 6-digit code of the user's "
                            "authenticator (TOTP, RFC 6238, 30 s; each code once) or an unused recovery code. "
                            "A user of those roles enrols by signing in to the portal once.",
                        },
                    },
                },
                "AccessToken": {
                    "type": "object",
                    "properties": {"access_token": _STRING, "token_type": _STRING, "expires_in": {"type": "integer"}},
                },
                "ReportSubmission": {
                    "type": "object",
                    "required": ["channel", "occurred_at", "situation_types", "narrative"],
                    "properties": {
                        "channel": _codes(Channel),
                        "child": {
                            "type": "object",
                            "properties": {
                                "name": _STRING,
                                "sex": {"type": "string", "enum": [sex.code for sex in KNOWN_SEXES]},
                                "birth_date": {"type": "string", "format": "date"},
                                "approximate_age": {"type": "integer", "minimum": 0, "maximum": 17},
                                "identity_number": _STRING,
                                "description": _STRING,
                                "school": _STRING,
                                "guardian_names": {"type": "array", "items": _STRING},
                            },
                        },
                        "place": {
                            "type": "object",
                            "properties": {
                                "division_code": {"type": "string", "description": "defaults to the user's town"},
                                "text": _STRING,
                            },
                        },
                        "occurred_at": {
                            "type": "string",
                            "description": "ISO 8601; without an offset it is Beijing time",
                        },
                        "situation_types": {"type": "array", "items": _codes(SituationType)},
                        "facts": {"type": "array", "items": _codes(Fact)},
                        "narrative": _STRING,
                        "reporter": {
                            "type": "object",
                            "properties": {
                                "name": _STRING,
                                "phone": _STRING,
                                "organisation": _STRING,
                                "role": _codes(ReporterRole),
                                "agency": _codes(AgencyKind),
                            },
                        },
                        "receipt_contact": {
                            "type": "object",
                            "description": "Send the reporter the receipt number (only with consent true); kept until "
                            "sent, never shown to staff",
                            "properties": {
                                "consent": {"type": "boolean"},
                                "address": {
                                    "type": "string",
                                    "description": "a mobile number (SMS) or an e-mail address; empty: reporter.phone",
                                },
                                "locale": {"type": "string", "enum": ["zh-CN", "en"]},
                            },
                        },
                    },
                },
                "SubmittedReport": {
                    "type": "object",
                    "properties": {
                        "receipt_number": _STRING,
                        "report_id": _STRING,
                        "status": _ref("Coded"),
                        "urgency": {"allOf": [_ref("Coded")], "nullable": True},
                        "crisis": {"type": "boolean"},
                        "triage_reasons": {"type": "array", "items": _STRING},
                    },
                },
                "Referral": api_schemas.message_schema(referral_pb2.Referral.DESCRIPTOR),
                "ReferralAction": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "description": "the note, reason, question, outcome or answer"},
                        "expected_version": {"type": "integer", "description": "the version the caller read"},
                        "agency_code": {"type": "string", "description": "reassign: the member unit"},
                    },
                },
                "ReceiptStatus": {
                    "type": "object",
                    "properties": {
                        "receipt_number": _STRING,
                        "received_on": {"type": "string", "format": "date"},
                        "status": _STRING,
                        "outcome_notice": _STRING,
                    },
                },
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": _STRING,
                        "message": _STRING,
                        "violations": {
                            "type": "array",
                            "items": {"type": "object", "properties": {"field": _STRING, "message": _STRING}},
                        },
                    },
                },
            },
        },
    }
