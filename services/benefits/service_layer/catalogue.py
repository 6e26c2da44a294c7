"""The district's policy catalogue: versions with effective dates, edited by the district administrator.

A version a run has computed with is frozen (`used_at`): changing a standard then means a new version from
a date, so every amount already computed keeps pointing at the rules that produced it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, select

from platform_runtime.auth import Role
from platform_runtime.db import Database, new_id, utcnow
from platform_runtime.errors import Conflict, InvalidInput, PermissionDenied
from platform_runtime.tenancy import require_role
from services.benefits.adapters.orm import PolicyVersionRecord
from services.benefits.adapters.policies import rules_json, to_policy
from services.benefits.domain.policy import PolicyVersion, sample_policy, validate

EDITOR_ROLES = (Role.DISTRICT_ADMIN,)
READER_ROLES = (
    Role.DISTRICT_ADMIN,
    Role.DISTRICT_OFFICER,
    Role.FINANCE_AUDITOR,
    Role.TOWN_ADMIN,
    Role.CASEWORKER,
)


@dataclass(frozen=True)
class PolicyView:
    policy: PolicyVersion
    created_by: str
    created_at: datetime
    used_at: datetime | None

    @property
    def frozen(self) -> bool:
        return self.used_at is not None


class Catalogue:
    def __init__(self, database: Database, *, now: Callable[[], datetime] = utcnow) -> None:
        self._database = database
        self._now = now

    def versions(self) -> list[PolicyView]:
        caller = require_role(*READER_ROLES)
        with self._database.unit_of_work(caller.district, district=caller.district) as uow:
            rows = uow.session.scalars(
                select(PolicyVersionRecord)
                .where(PolicyVersionRecord.tenant_id == caller.district)
                .order_by(PolicyVersionRecord.version.desc())
            )
            return [_view(row) for row in rows]

    def save(self, policy: PolicyVersion) -> PolicyView:
        """Version 0 makes a new version (numbered next); an existing version is replaced only while unused."""
        caller = require_role(*EDITOR_ROLES)
        if policy.district != caller.district:
            raise PermissionDenied("a district administrator edits only the district's own policy")
        validate(policy)
        with self._database.unit_of_work(caller.district, district=caller.district) as uow:
            session = uow.session
            if policy.version == 0:
                latest = session.scalar(
                    select(func.max(PolicyVersionRecord.version)).where(
                        PolicyVersionRecord.tenant_id == caller.district
                    )
                )
                policy = replace(policy, version=(latest or 0) + 1)
                record = PolicyVersionRecord(id=new_id(), tenant_id=caller.district, version=policy.version)
                session.add(record)
            else:
                found = session.scalar(
                    select(PolicyVersionRecord)
                    .where(
                        PolicyVersionRecord.tenant_id == caller.district, PolicyVersionRecord.version == policy.version
                    )
                    .with_for_update()
                )
                if found is None:
                    raise InvalidInput.single("version", "no such version; use 0 for a new one")
                if found.used_at is not None:
                    raise Conflict(f"version {policy.version} was used in a run: make a new version instead")
                record = found
            record.effective_from = policy.effective_from
            record.effective_until = policy.effective_until
            record.sample = policy.sample
            record.arrears_months = policy.arrears_months
            record.rules = rules_json(policy)
            record.created_by = caller.user_id
            record.created_at = self._now()
            record.used_at = None
            session.flush()
            view = _view(record)
            uow.commit()
            return view

    def seed_sample(self) -> PolicyView | None:
        """The demo catalogue (amounts marked as samples) for a district that has none yet."""
        caller = require_role(*EDITOR_ROLES)
        if self.versions():
            return None
        return self.save(replace(sample_policy(caller.district), version=0))


def _view(record: PolicyVersionRecord) -> PolicyView:
    return PolicyView(to_policy(record), record.created_by, record.created_at, record.used_at)
