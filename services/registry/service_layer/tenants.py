"""Towns (tenants) and their villages: onboarding a town, the district's towns, the town's village list."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.tenancy import current_principal, require_role
from services.registry.adapters.orm import TenantRecord
from services.registry.domain.events import TenantOnboarded
from services.registry.service_layer import villages
from services.registry.service_layer.access import CASEWORK_ROLES, READER_ROLES
from services.registry.service_layer.use_cases import RegistryUseCases
from services.registry.service_layer.views import TenantView, Village, VillagesSet


class TenantUseCases(RegistryUseCases):
    def onboard_tenant(self, code: str, name: str, district_code: str) -> tuple[TenantView, bool]:
        caller = current_principal()
        violations = []
        if not villages.division_ok(code, (9,)):
            violations.append(errors.FieldViolation("code", "must be a 9-digit GB/T 2260 town/street code"))
        if not name.strip():
            violations.append(errors.FieldViolation("name", "is required"))
        if not (villages.division_ok(district_code, (6,)) and code.startswith(district_code)):
            violations.append(errors.FieldViolation("district_code", "must be the 6-digit district of the town"))
        if violations:
            raise errors.InvalidInput(violations)
        if caller.role is not Role.SYSTEM and not (
            caller.role is Role.DISTRICT_OFFICER and caller.district == district_code
        ):
            raise errors.PermissionDenied("only the platform or the district may onboard a town")
        with self._database.unit_of_work(code) as uow:
            existing = uow.session.get(TenantRecord, code)
            if existing is not None:
                return _tenant_view(existing), False
            record = TenantRecord(code=code, name=name.strip(), district_code=district_code, onboarded_at=self._now())
            uow.session.add(record)
            view = _tenant_view(record)
            self._scope(uow, caller).emit(TenantOnboarded(view.code, view.name, view.district_code, view.onboarded_at))
            uow.commit()
            return view, True

    def list_tenants(self, district_code: str = "") -> list[TenantView]:
        caller = current_principal()
        district = district_code or caller.district
        if district != caller.district and caller.role is not Role.SYSTEM:
            raise errors.PermissionDenied("another district's towns are not visible")
        with self._database.unit_of_work(caller.tenant) as uow:
            rows = uow.session.scalars(
                select(TenantRecord).where(TenantRecord.district_code == district).order_by(TenantRecord.code)
            )
            return [_tenant_view(row) for row in rows]

    def set_villages(self, listed: Sequence[Village]) -> VillagesSet:
        caller = require_role(Role.TOWN_ADMIN, Role.SYSTEM)
        with self._database.unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            self._require_tenant(uow, caller)
            result = villages.set_villages(scope, listed)
            scope.audit("set_villages", "tenant", caller.tenant)
            uow.commit()
            return result

    def list_villages(self, *, include_retired: bool = False) -> list[Village]:
        caller = require_role(*CASEWORK_ROLES, *READER_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            return villages.list_villages(self._scope(uow, caller), include_retired=include_retired)

    def tenant_codes(self) -> list[str]:
        """Every onboarded town (platform data, no tenant needed): what periodic jobs go through."""
        with self._database.platform_session() as session:
            return list(session.scalars(select(TenantRecord.code).order_by(TenantRecord.code)))


def _tenant_view(record: TenantRecord) -> TenantView:
    return TenantView(record.code, record.name, record.district_code, record.onboarded_at)
