"""Service replies as plain data for the templates and the JSON API alike (one translation for both).

Codes keep their English value and gain the Chinese label staff use; times are ISO 8601 in Beijing time.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import timestamp_pb2
from minorprot.common.v1 import common_pb2
from minorprot.notify.v1 import notify_pb2
from minorprot.referral.v1 import referral_pb2
from minorprot.registry.v1 import registry_pb2
from minorprot.reporting.v1 import crisis_steps_pb2, reporting_pb2

from gateway.handling import MILESTONES
from gateway.intake import SEX_LABELS
from platform_runtime.vocabulary import (
    CHINA_STANDARD_TIME,
    Channel,
    Fact,
    LabelledEnum,
    PersonTriage,
    ReportStatus,
    SituationType,
    Urgency,
)

PRIORITY_LABELS = {"normal": "一般", "urgent": "紧急", "crisis": "危机", "unspecified": ""}


def when(stamp: timestamp_pb2.Timestamp) -> str:
    if not (stamp.seconds or stamp.nanos):
        return ""
    return stamp.ToDatetime(tzinfo=CHINA_STANDARD_TIME).isoformat(timespec="minutes")


def day(value: common_pb2.Date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}" if value.year else ""


def _code(enum_name: str, prefix: str) -> str:
    """`URGENCY_CRISIS` -> `crisis`: proto enum names carry their type as a prefix."""
    return enum_name.removeprefix(prefix).lower()


def _coded(kind: type[LabelledEnum], value: str) -> dict[str, str]:
    try:
        label = kind(value).label
    except ValueError:
        label = value  # a code newer than this gateway: show it rather than fail
    return {"code": value, "label": label}


def report(value: reporting_pb2.Report) -> dict[str, Any]:
    child = value.child
    urgency = _code(reporting_pb2.Urgency.Name(value.urgency), "URGENCY_")
    sex = _code(common_pb2.Sex.Name(child.sex), "SEX_")
    return {
        "report_id": value.report_id,
        "tenant": value.tenant,
        "channel": _coded(Channel, _code(reporting_pb2.Channel.Name(value.channel), "CHANNEL_")),
        "status": _coded(ReportStatus, value.status),
        "urgency": _coded(Urgency, urgency) if urgency != "unspecified" else None,
        "crisis": value.crisis,
        "child_id": value.child_id,
        "child": {
            "name": child.name,
            "sex": {"code": sex, "label": SEX_LABELS.get(sex, sex)},
            "birth_date": day(child.birth_date),
            "approximate_age": child.approximate_age or None,
            "description": child.description,
            "school": child.school,
            "guardian_names": list(child.guardian_names),
        },
        "division_code": value.division_code,
        "place_text": value.place_text,
        "occurred_at": when(value.occurred_at),
        "received_at": when(value.received_at),
        "situation_types": [_coded(SituationType, code) for code in value.situation_types],
        "facts": [_coded(Fact, code) for code in value.facts],
        "narrative": value.narrative,
        # Narrative, the child's description and guardians, and the reporter come only with a purpose.
        "details_withheld": value.details_withheld,
        "reporter": (
            {
                "name": value.reporter.name,
                "phone": value.reporter.phone,
                "organisation": value.reporter.organisation,
                "role": value.reporter.role,
            }
            if value.HasField("reporter")
            else None
        ),
        "triage_reasons": list(value.triage_reasons),
        "attention_reason": value.attention_reason,
        "group_id": value.group_id,
        "deadlines": [deadline(d) for d in value.deadlines],
        "outcome_notice": value.outcome_notice,
        # A report from the public waits for a person's triage before agencies act on it.
        "person_triage": _coded(PersonTriage, value.person_triage) if value.person_triage else None,
        "version": value.version,
    }


def report_read(value: reporting_pb2.ReportRead) -> dict[str, Any]:
    return {
        "actor": value.actor,
        "role": value.role,
        "purpose": value.purpose,
        "saw_reporter": value.saw_reporter,
        "at": when(value.at),
    }


def deadline(value: reporting_pb2.MilestoneDeadline) -> dict[str, Any]:
    code = _code(reporting_pb2.Milestone.Name(value.milestone), "MILESTONE_")
    label = MILESTONES[code][1] if code in MILESTONES else code
    return {
        "milestone": {"code": code, "label": label},
        "due_at": when(value.due_at),
        "completed_at": when(value.completed_at),
        "breached": value.breached,
    }


def candidate(value: reporting_pb2.LinkCandidate) -> dict[str, Any]:
    sex = _code(common_pb2.Sex.Name(value.sex), "SEX_")
    return {
        "child_id": value.child_id,
        "score": round(value.score, 3),
        "reasons": list(value.reasons),
        "name": value.name,
        "sex": {"code": sex, "label": SEX_LABELS.get(sex, sex)},
        "birth_date": day(value.birth_date),
        "identity_number_masked": value.identity_number_masked,
        "residence_division_code": value.residence_division_code,
        "school": value.school,
        "provisional": value.provisional,
    }


def submitted(reply: reporting_pb2.SubmitReportResponse) -> dict[str, Any]:
    shown = report(reply.report)
    return {
        "receipt_number": reply.receipt_number,
        "report_id": shown["report_id"],
        "status": shown["status"],
        "urgency": shown["urgency"],
        "crisis": shown["crisis"],
        "triage_reasons": shown["triage_reasons"],
    }


def public_receipt(reply: reporting_pb2.SubmitReportResponse) -> dict[str, Any]:
    """What a member of the public is told after reporting: the receipt and nothing else about the case."""
    return {"receipt_number": reply.receipt_number}


def receipt_status(reply: reporting_pb2.LookupReceiptResponse) -> dict[str, Any]:
    return {
        "receipt_number": reply.receipt_number,
        "received_on": when(reply.received_at)[:10],
        "status": reply.status,
        "outcome_notice": reply.outcome_notice,
    }


def case_file(value: registry_pb2.CaseFile) -> dict[str, Any]:
    child = value.child
    sex = _code(common_pb2.Sex.Name(child.sex), "SEX_")
    return {
        "case_id": value.case_id,
        "status": value.status,
        "responsible_person": value.responsible_person,
        "social_worker": value.social_worker,
        "child_director": value.child_director,
        "child": {
            "child_id": child.child_id,
            "legal_name": child.legal_name,
            "other_names": list(child.other_names),
            "sex": {"code": sex, "label": SEX_LABELS.get(sex, sex)},
            "birth_date": day(child.birth_date),
            "identity_number_masked": child.identity_number_masked,
            "ethnicity_code": child.ethnicity_code,
            "residence_division_code": child.residence_division_code,
            "residence_address": child.residence_address,
            "school": child.school,
            "grade": child.grade,
            "categories": list(child.categories),
            "provisional": child.provisional,
        },
        "timeline": [
            {
                "at": when(entry.at),
                "kind": entry.kind,
                "summary": entry.summary,
                "source_service": entry.source_service,
                "reference_id": entry.reference_id,
            }
            for entry in value.timeline
        ],
    }


def referral(value: referral_pb2.Referral) -> dict[str, Any]:
    return {
        "referral_id": value.referral_id,
        "report_id": value.report_id,
        "child_id": value.child_id,
        "agency_code": value.agency_code,
        "agency_name": value.agency_name,
        "status": value.status,
        "reason": value.reason,
        "rule_code": value.rule_code,
        "opened_at": when(value.opened_at),
        "due_at": when(value.due_at),
        "urgent": value.urgent,
    }


def notification(value: notify_pb2.Notification) -> dict[str, Any]:
    priority = _code(notify_pb2.Priority.Name(value.priority), "PRIORITY_")
    return {
        "notification_id": value.notification_id,
        "title": value.title,
        "body": value.body,
        "priority": {"code": priority, "label": PRIORITY_LABELS.get(priority, priority)},
        "subject_type": value.subject_type,
        "subject_id": value.subject_id,
        "created_at": when(value.created_at),
        "read": bool(value.read_at.seconds or value.read_at.nanos),
    }


# A crisis's chain (notify's levels), the roles it tells and how it was acknowledged, as staff name them
# (Chinese keys of the portal's catalogue, gateway.messages).
CRISIS_LEVELS = {
    "duty_officer": "当日值班人员",
    "town_admin": "乡镇管理员",
    "district_civil_affairs": "区民政",
    "leading_group_office": "领导小组办公室",
}
CRISIS_STEP_KINDS = {"alerted": "告警已发送至", "escalated": "无人确认,已升级至", "acknowledged": "已确认"}
ACKNOWLEDGED_VIA = {"portal": "平台", "sms": "短信回复", "api": "接口调用"}
ROLE_INBOXES = {
    "caseworker": "乡镇社工",
    "town_admin": "乡镇管理员",
    "district_officer": "区民政",
    "leading_group_office": "领导小组办公室",
    "child_director": "儿童主任",
}


def _step_person(value: crisis_steps_pb2.StepPerson) -> dict[str, str]:
    """A person by name, a role's shared inbox by the role (a catalogue key); never an address (none reaches
    the gateway)."""
    kind, _, who = value.recipient.partition(":")
    if kind == "role":
        return {"role": ROLE_INBOXES.get(who, who), "name": ""}
    return {"role": "", "name": value.name or who}


def crisis_step(value: crisis_steps_pb2.CrisisStep) -> dict[str, Any]:
    return {
        "kind": value.kind,
        "label": CRISIS_STEP_KINDS.get(value.kind, value.kind),
        "step": value.step,
        "level": CRISIS_LEVELS.get(value.level, value.level),
        "people": [_step_person(person) for person in value.people],
        "via": ACKNOWLEDGED_VIA.get(value.via, value.via),
        "at": when(value.at),
    }
