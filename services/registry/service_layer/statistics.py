"""The register in numbers for a town's dashboard: counts only, so no child is named and nothing is audited.

A district officer may ask for any onboarded town of their district (the district supervises its towns);
everyone else sees their own town.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.tenancy import require_role
from services.registry.adapters.orm import (
    Base,
    CaseFileRecord,
    CategoryRecord,
    ChildRecord,
    PlanActionRecord,
    TenantRecord,
)
from services.registry.domain.codes import ActionStatus, CaseStatus
from services.registry.service_layer.access import READER_ROLES
from services.registry.service_layer.use_cases import RegistryUseCases

KeyCounts = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class RegisterStatistics:
    town_code: str
    children: int
    by_category: KeyCounts
    by_village: KeyCounts
    by_case_status: KeyCounts
    by_risk_level: KeyCounts
    overdue_visits: int
    overdue_plan_actions: int


class StatisticsUseCases(RegistryUseCases):
    def register_statistics(self, town_code: str = "") -> RegisterStatistics:
        caller = require_role(*READER_ROLES)
        town = town_code.strip() or caller.tenant
        if town != caller.tenant and caller.role is not Role.DISTRICT_OFFICER:
            raise errors.PermissionDenied("another town's register is not visible")
        with self._database.unit_of_work(town) as uow:
            tenant = uow.session.get(TenantRecord, town)
            if tenant is None or tenant.district_code != caller.district:
                raise errors.NotFound("no such town in your district")
            today = self._today()
            live = (ChildRecord.tenant_id == town, ChildRecord.merged_into.is_(None))

            def counts(
                column: InstrumentedAttribute[str],
                *where: ColumnElement[bool],
                join: tuple[type[Base], ColumnElement[bool]] | None = None,
            ) -> KeyCounts:
                query = select(column, func.count()).select_from(ChildRecord)
                if join is not None:
                    query = query.join(*join)
                rows = uow.session.execute(query.where(*live, *where).group_by(column).order_by(column))
                return tuple((str(key or ""), int(count)) for key, count in rows)

            children = uow.session.scalar(select(func.count()).select_from(ChildRecord).where(*live)) or 0
            on_case: tuple[type[Base], ColumnElement[bool]] = (
                CaseFileRecord,
                CaseFileRecord.child_id == ChildRecord.id,
            )
            by_category = counts(
                CategoryRecord.category,
                CategoryRecord.valid_from <= today,
                or_(CategoryRecord.valid_to.is_(None), CategoryRecord.valid_to >= today),
                join=(CategoryRecord, CategoryRecord.child_id == ChildRecord.id),
            )
            by_village = counts(ChildRecord.residence_division_code)
            by_status = counts(CaseFileRecord.status, join=on_case)
            by_risk = counts(CaseFileRecord.risk_level, join=on_case)
            open_statuses = [s.value for s in CaseStatus if s.is_open]
            overdue_visits = uow.session.scalar(
                select(func.count())
                .select_from(CaseFileRecord)
                .join(ChildRecord, CaseFileRecord.child_id == ChildRecord.id)
                .where(*live, CaseFileRecord.status.in_(open_statuses), CaseFileRecord.next_visit_due < today)
            )
            overdue_actions = uow.session.scalar(
                select(func.count())
                .select_from(PlanActionRecord)
                .join(ChildRecord, PlanActionRecord.child_id == ChildRecord.id)
                .where(
                    *live,
                    PlanActionRecord.due_on < today,
                    PlanActionRecord.status.not_in([s.value for s in ActionStatus if s.is_finished]),
                )
            )
            return RegisterStatistics(
                town,
                int(children),
                by_category,
                by_village,
                by_status,
                tuple((key, count) for key, count in by_risk if key),
                int(overdue_visits or 0),
                int(overdue_actions or 0),
            )
