"""Translation between routing's domain (agencies, rules, previews) and `referral.v1.routing` messages."""

from __future__ import annotations

from datetime import date
from typing import Any

from minorprot.referral.v1 import routing_pb2

from platform_runtime import errors
from services.referral.domain.agencies import Agency, Contacts, Level
from services.referral.domain.routing import Preview, RoutingRule, rule_to_dict
from services.referral.service_layer.routing_config import RuleSetView


def agency(value: Agency) -> routing_pb2.DirectoryAgency:
    return routing_pb2.DirectoryAgency(
        code=value.code,
        name_zh=value.name_zh,
        name_en=value.name_en,
        kind=value.kind or value.code,
        level=value.level.value,
        duties=list(value.duties),
        contact_user_ids=list(value.contacts.user_ids),
        duty_phone=value.contacts.duty_phone,
        email=value.contacts.email,
        webhook=value.contacts.webhook,
        supervisor=value.supervisor,
        member=value.member,
    )


def agency_from(message: routing_pb2.DirectoryAgency) -> Agency:
    try:
        level = Level(message.level or Level.DISTRICT.value)
    except ValueError:
        raise errors.InvalidInput.single("level", "must be city, district or town") from None
    return Agency(
        message.code.strip(),
        message.name_zh,
        message.name_en,
        tuple(duty.strip() for duty in message.duties if duty.strip()),
        kind=message.kind.strip(),
        level=level,
        contacts=Contacts(
            tuple(user.strip() for user in message.contact_user_ids if user.strip()),
            message.duty_phone.strip(),
            message.email.strip(),
            message.webhook.strip(),
        ),
        supervisor=message.supervisor.strip(),
        member=message.member,
    )


def rule(value: RoutingRule) -> routing_pb2.RoutingRuleSpec:
    data = rule_to_dict(value)
    spec = routing_pb2.RoutingRuleSpec(**{key: item for key, item in data.items() if key != "min_age"})
    if value.min_age is not None:
        spec.min_age = value.min_age
    return spec


def rule_data(spec: routing_pb2.RoutingRuleSpec) -> dict[str, Any]:
    """The stored form routing validates (`rule_from_dict`)."""
    return {
        "code": spec.code,
        "agency_code": spec.agency_code,
        "reason": spec.reason,
        "due_in_minutes": spec.due_in_minutes,
        "complete_within_minutes": spec.complete_within_minutes or 30 * 24 * 60,
        "urgent": spec.urgent,
        "any_of_situations": list(spec.any_of_situations),
        "all_of_facts": list(spec.all_of_facts),
        "any_of_facts": list(spec.any_of_facts),
        "min_age": spec.min_age if spec.HasField("min_age") else None,
        "crisis_only": spec.crisis_only,
        "fallback": spec.fallback,
        "reroute_to": spec.reroute_to,
        "group": spec.group,
        "benefit_code": spec.benefit_code,
    }


def rule_set(value: RuleSetView) -> routing_pb2.RuleSet:
    return routing_pb2.RuleSet(
        version=value.version,
        effective_from=value.effective_from.isoformat(),
        note=value.note,
        created_by=value.created_by,
        in_use=value.in_use,
        rules=[rule(item) for item in value.rules],
    )


def day(text: str, field: str, default: date) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise errors.InvalidInput.single(field, "must be a date YYYY-MM-DD") from None


def preview(version: int, value: Preview) -> routing_pb2.PreviewRoutingResponse:
    return routing_pb2.PreviewRoutingResponse(
        version=version,
        routes=[
            routing_pb2.PlannedRoute(
                agency_code=route.agency_code,
                reason=route.reason,
                rule_code=route.rule_code,
                due_in_minutes=int(route.due_in.total_seconds() // 60),
                urgent=route.urgent,
            )
            for route in value.routes
        ],
        verdicts=[
            routing_pb2.RuleVerdict(
                rule_code=verdict.rule_code, agency_code=verdict.agency_code, applied=verdict.applied, why=verdict.why
            )
            for verdict in value.verdicts
        ],
    )
