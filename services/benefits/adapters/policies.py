"""Policy versions in and out of the database (their rules kept as JSON, the one place that shape lives)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.benefits.adapters.orm import PolicyVersionRecord
from services.benefits.domain.policy import BenefitRule, Combine, Kind, PolicyVersion


def rules_json(policy: PolicyVersion) -> str:
    return json.dumps(
        [
            {
                "code": rule.code,
                "name": rule.name,
                "kind": rule.kind.value,
                "amount_fen": rule.amount_fen,
                "fund": rule.fund,
                "min_age_days": rule.min_age_days,
                "max_age_years": rule.max_age_years,
                "stacks_on": list(rule.stacks_on),
                "combine": rule.combine.value,
                "prorate": rule.prorate,
                "categories": list(rule.categories),
                "documents": list(rule.documents),
                "review_months": rule.review_months,
            }
            for rule in policy.rules
        ],
        ensure_ascii=False,
    )


def rule_from(data: dict[str, Any]) -> BenefitRule:
    return BenefitRule(
        code=str(data["code"]),
        name=str(data["name"]),
        kind=Kind(data["kind"]),
        amount_fen=int(data["amount_fen"]),
        fund=str(data["fund"]),
        min_age_days=int(data.get("min_age_days", 0)),
        max_age_years=None if data.get("max_age_years") is None else int(data["max_age_years"]),
        stacks_on=tuple(data.get("stacks_on", ())),
        combine=Combine(data.get("combine", Combine.HIGHER.value)),
        prorate=bool(data.get("prorate", True)),
        categories=tuple(data.get("categories", ())),
        documents=tuple(data.get("documents", ())),
        review_months=int(data.get("review_months", 12)),
    )


def to_policy(record: PolicyVersionRecord) -> PolicyVersion:
    return PolicyVersion(
        district=record.tenant_id,
        version=record.version,
        effective_from=record.effective_from,
        effective_until=record.effective_until,
        rules=tuple(rule_from(item) for item in json.loads(record.rules)),
        sample=record.sample,
        arrears_months=record.arrears_months,
    )


def load_policies(session: Session, district: str) -> list[PolicyVersion]:
    rows = session.scalars(
        select(PolicyVersionRecord)
        .where(PolicyVersionRecord.tenant_id == district)
        .order_by(PolicyVersionRecord.version)
    )
    return [to_policy(row) for row in rows]
