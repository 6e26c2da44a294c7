"""Translation between the benefits views and the protobuf contracts (one place for both directions), and the
benefits domain events as the outbox publishes them (`pending`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from minorprot.benefits.v1 import benefits_pb2, events_pb2
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import events_pb2 as registry_events
from minorprot.registry.v1 import registry_pb2

from platform_runtime.errors import FieldViolation, InvalidInput
from platform_runtime.events import PendingEvent
from platform_runtime.topics import BENEFITS_DISBURSEMENT, BENEFITS_ENTITLEMENT
from services.benefits.domain import events
from services.benefits.domain.policy import BenefitRule, Combine, Kind, PolicyVersion
from services.benefits.service_layer.views import EnrolmentView, RegisteredChild

if TYPE_CHECKING:
    from services.benefits.service_layer.applications import ApplicationView
    from services.benefits.service_layer.catalogue import PolicyView
    from services.benefits.service_layer.ledger import Balance
    from services.benefits.service_layer.run_reading import LineView
    from services.benefits.service_layer.run_state import RunView


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def to_date(value: common_pb2.Date) -> date | None:
    if not value.year:
        return None
    try:
        return date(value.year, value.month, value.day)
    except ValueError:
        return None  # an impossible date is an unknown one: the child is recorded as not decidable


def from_date(value: date | None) -> common_pb2.Date:
    return common_pb2.Date(year=value.year, month=value.month, day=value.day) if value else common_pb2.Date()


def registered_child(event: registry_events.ChildRegistered, occurred_at: datetime) -> RegisteredChild:
    """What the insurance rule needs. An event written before the registry trimmed it carries these in the
    deprecated whole `child` instead (names and numbers in it are not kept)."""
    source: registry_events.ChildRegistered | registry_pb2.Child = event
    registered = event.registered_at if event.HasField("registered_at") else None
    if not event.child_id:
        source = event.child
        registered = event.child.created_at if event.child.HasField("created_at") else None
    return RegisteredChild(
        child_id=source.child_id,
        birth_date=to_date(source.birth_date),
        household_division_code=source.household_division_code,
        registered_at=registered.ToDatetime(tzinfo=UTC) if registered else occurred_at,
    )


def enrolment(view: EnrolmentView) -> benefits_pb2.InsuranceEnrolment:
    return enrolment_message(view.enrolment_id, view.tenant, view.child_id, view.covered_until, view.decided_at)


def enrolment_message(
    enrolment_id: str, tenant: str, child_id: str, covered_until: date | None, enrolled_at: datetime
) -> benefits_pb2.InsuranceEnrolment:
    return benefits_pb2.InsuranceEnrolment(
        enrolment_id=enrolment_id,
        tenant=tenant,
        child_id=child_id,
        covered_until=from_date(covered_until),
        enrolled_at=timestamp(enrolled_at),
    )


def optional_date(value: common_pb2.Date, field: str) -> date | None:
    """An optional date from a request: unset is None, an impossible one is the caller's error."""
    if not value.year:
        return None
    found = to_date(value)
    if found is None:
        raise InvalidInput.single(field, "not a calendar date")
    return found


def rule_message(rule: BenefitRule) -> benefits_pb2.BenefitRule:
    return benefits_pb2.BenefitRule(
        code=rule.code,
        name=rule.name,
        kind=rule.kind.value,
        amount_fen=rule.amount_fen,
        fund=rule.fund,
        min_age_days=rule.min_age_days,
        max_age_years=rule.max_age_years or 0,
        stacks_on=list(rule.stacks_on),
        combine=rule.combine.value,
        prorate=rule.prorate,
        categories=list(rule.categories),
        documents=list(rule.documents),
        review_months=rule.review_months,
    )


def policy_message(view: PolicyView) -> benefits_pb2.PolicyVersion:
    policy = view.policy
    return benefits_pb2.PolicyVersion(
        district=policy.district,
        version=policy.version,
        effective_from=from_date(policy.effective_from),
        effective_until=from_date(policy.effective_until),
        sample=policy.sample,
        arrears_months=policy.arrears_months,
        rules=[rule_message(rule) for rule in policy.rules],
        frozen=view.frozen,
        created_by=view.created_by,
    )


def policy_from(message: benefits_pb2.PolicyVersion) -> PolicyVersion:
    """A policy from a request; every bad value is reported (validated again by the domain)."""
    problems: list[FieldViolation] = []
    rules = []
    for index, rule in enumerate(message.rules):
        try:
            kind, combine = Kind(rule.kind), Combine(rule.combine or Combine.HIGHER.value)
        except ValueError:
            problems.append(
                FieldViolation(f"rules[{index}].kind", "kind is base|supplement|insurance, combine higher|add")
            )
            continue
        rules.append(
            BenefitRule(
                code=rule.code.strip(),
                name=rule.name.strip(),
                kind=kind,
                amount_fen=rule.amount_fen,
                fund=rule.fund.strip(),
                min_age_days=rule.min_age_days,
                max_age_years=rule.max_age_years or None,
                stacks_on=tuple(rule.stacks_on),
                combine=combine,
                prorate=rule.prorate,
                categories=tuple(rule.categories),
                documents=tuple(rule.documents),
                review_months=rule.review_months or 12,
            )
        )
    effective_from = optional_date(message.effective_from, "effective_from")
    if effective_from is None:
        problems.append(FieldViolation("effective_from", "required"))
    if problems:
        raise InvalidInput(problems)
    assert effective_from is not None
    return PolicyVersion(
        district=message.district,
        version=message.version,
        effective_from=effective_from,
        effective_until=optional_date(message.effective_until, "effective_until"),
        rules=tuple(rules),
        sample=message.sample,
        arrears_months=message.arrears_months,
    )


def application_message(view: ApplicationView) -> benefits_pb2.Application:
    return benefits_pb2.Application(
        application_id=view.application_id,
        tenant=view.tenant,
        child_id=view.child_id,
        benefit_code=view.benefit_code,
        status=view.status,
        documents=list(view.documents),
        missing_documents=list(view.missing_documents),
        reason=view.reason,
        source=view.source,
        previous_id=view.previous_id,
        starts_on=from_date(view.starts_on),
        submitted_on=from_date(view.submitted_on),
        town_due_on=from_date(view.town_due_on),
        district_due_on=from_date(view.district_due_on),
        rejection_reason=view.rejection_reason,
        created_by=view.created_by,
        town_reviewed_by=view.town_reviewed_by,
        decided_by=view.decided_by,
        overdue=view.overdue,
        review_due_on=from_date(view.review_due_on),
        review_due=view.review_due,
    )


def run_message(view: RunView) -> benefits_pb2.Run:
    return benefits_pb2.Run(
        run_id=view.run_id,
        district=view.district,
        period=from_date(view.period),
        status=view.status,
        done=view.done,
        total=view.total,
        line_count=view.line_count,
        total_fen=view.total_fen,
        batches=view.batches,
        created_by=view.created_by,
        computed_by=view.computed_by,
        checked_by=view.checked_by,
        approved_by=view.approved_by,
        paid_by=view.paid_by,
        updated_at=timestamp(view.updated_at),
    )


def line_message(view: LineView) -> benefits_pb2.RunLine:
    return benefits_pb2.RunLine(
        line_id=view.line_id,
        seq=view.seq,
        town=view.town,
        child_id=view.child_id,
        benefit_code=view.benefit_code,
        service_month=from_date(view.service_month),
        kind=view.kind,
        amount_fen=view.amount_fen,
        policy_version=view.policy_version,
        explanation=view.explanation,
        payment_status=view.payment_status,
        reference=view.reference,
    )


def balance_message(balance: Balance) -> benefits_pb2.Balance:
    return benefits_pb2.Balance(
        fund=balance.fund,
        town=balance.town,
        period=from_date(balance.period),
        kind=balance.kind,
        amount_fen=balance.amount_fen,
        entries=balance.entries,
    )


# -- domain events -------------------------------------------------------------------------------------------


def pending(tenant: str, event: events.BenefitsEvent) -> PendingEvent:
    """A domain event as the outbox takes it: a child's insurance and entitlements on benefits.entitlement keyed
    by the child, a run's steps and failed payments on benefits.disbursement keyed by the run."""
    match event:
        case events.InsuranceEnrolled() | events.EntitlementChanged():
            return PendingEvent(BENEFITS_ENTITLEMENT, tenant, "child", event.child_id, event_message(event))
        case events.DisbursementRunChanged() | events.PaymentFailed():
            return PendingEvent(BENEFITS_DISBURSEMENT, tenant, "run", event.run_id, event_message(event))


def event_message(event: events.BenefitsEvent) -> Message:
    match event:
        case events.InsuranceEnrolled():
            return events_pb2.InsuranceEnrolled(
                enrolment=enrolment_message(
                    event.enrolment_id, event.tenant, event.child_id, event.covered_until, event.enrolled_at
                )
            )
        case events.EntitlementChanged():
            return events_pb2.EntitlementChanged(
                entitlement_id=event.entitlement_id,
                child_id=event.child_id,
                benefit_code=event.benefit_code,
                change=event.change,
                effective_on=from_date(event.effective_on),
                reason=event.reason,
                monthly_amount_fen=event.monthly_amount_fen,
            )
        case events.DisbursementRunChanged():
            return events_pb2.DisbursementRunChanged(
                run_id=event.run_id,
                district=event.district,
                period=from_date(event.period),
                status=event.status,
                line_count=event.line_count,
                total_fen=event.total_fen,
                by=event.by,
            )
        case events.PaymentFailed():
            return events_pb2.PaymentFailed(
                run_id=event.run_id,
                reference=event.reference,
                child_id=event.child_id,
                benefit_code=event.benefit_code,
                amount_fen=event.amount_fen,
                reason=event.reason,
            )
