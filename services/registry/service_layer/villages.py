"""A town's villages and communities (村/社区): the list the town keeps, and the check that a child's
residence or household registration inside the town is one of them.

A town records its list when it joins (SetVillages, from the statistical division codes it works with) and
again when villages merge or are renamed. A village left out of a new list is retired, not deleted: the
children recorded there keep their code, new records may no longer use it. Until a town has recorded a
list, a code inside the town is checked for its form only (the onboarding guide, docs/deploy.md, has the
list recorded first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, select

from platform_runtime import errors
from services.registry.adapters.orm import VillageRecord
from services.registry.adapters.repository import SqlVillageDirectory
from services.registry.service_layer.ports import VillageDirectory
from services.registry.service_layer.scope import Scope
from services.registry.service_layer.views import Village, VillagesSet

MAX_NAME_CHARS = 100


def division_ok(code: str, lengths: tuple[int, ...] = (9, 12)) -> bool:
    """A GB/T 2260 division code of one of these lengths (9: a town, 12: a village; 6: a district)."""
    return code.isdigit() and len(code) in lengths


def set_villages(scope: Scope, villages: Sequence[Village]) -> VillagesSet:
    """The town's villages become exactly `villages`: new ones added, names updated, the missing retired."""
    wanted = _checked(scope.tenant, villages)
    recorded = {row.code: row for row in scope.session.scalars(_villages_of(scope.tenant))}
    added = renamed = retired = 0
    for code, name in wanted.items():
        row = recorded.get(code)
        if row is None:
            scope.session.add(VillageRecord(tenant_id=scope.tenant, code=code, name=name, updated_at=scope.now))
            added += 1
        elif row.name != name or row.retired:
            renamed += row.name != name
            row.name, row.retired, row.updated_at = name, False, scope.now
    for code, row in recorded.items():
        if code not in wanted and not row.retired:
            row.retired, row.updated_at = True, scope.now
            retired += 1
    scope.session.flush()
    return VillagesSet(tuple(list_villages(scope, include_retired=True)), added, renamed, retired)


def list_villages(scope: Scope, *, include_retired: bool = False) -> list[Village]:
    query = _villages_of(scope.tenant)
    if not include_retired:
        query = query.where(VillageRecord.retired.is_(False))
    return [Village(row.code, row.name, row.retired) for row in scope.session.scalars(query)]


def current_village_codes(scope: Scope) -> frozenset[str] | None:
    """The town's current village codes; None while the town has recorded no list."""
    return SqlVillageDirectory(scope.session, scope.tenant).current_codes()


def unknown_village(code: str, tenant: str, current: frozenset[str] | None) -> bool:
    """A code naming a village of this town that the town does not list (the town itself is fine; codes of
    other towns are not ours to check: a child may be registered elsewhere)."""
    if current is None or len(code) != 12 or not code.startswith(tenant) or code == tenant + "000":
        return False
    return code not in current


@dataclass(frozen=True)
class KnownVillages:
    """The town's village list as already read (the survey reads it once a batch)."""

    codes: frozenset[str] | None

    def current_codes(self) -> frozenset[str] | None:
        return self.codes


def village_violations(
    tenant: str, codes: Mapping[str, str], directory: VillageDirectory
) -> list[errors.FieldViolation]:
    """For fields holding division codes (field name -> code): those naming no current village of the town."""
    inside = {field: code for field, code in codes.items() if code and code.startswith(tenant)}
    if not inside:
        return []
    current = directory.current_codes()
    return [
        errors.FieldViolation(field, f"unknown division code: not a village or community of this town ({code})")
        for field, code in inside.items()
        if unknown_village(code, tenant, current)
    ]


def _checked(tenant: str, villages: Iterable[Village]) -> dict[str, str]:
    violations: list[errors.FieldViolation] = []
    wanted: dict[str, str] = {}
    for index, village in enumerate(villages):
        code, name = village.code.strip(), village.name.strip()
        where = f"villages[{index}]"
        if not (len(code) == 12 and code.isdigit() and code.startswith(tenant) and code != tenant + "000"):
            violations.append(
                errors.FieldViolation(f"{where}.code", f"must be a 12-digit code of a village of {tenant}")
            )
        elif code in wanted:
            violations.append(errors.FieldViolation(f"{where}.code", "is listed twice"))
        if not name or len(name) > MAX_NAME_CHARS:
            violations.append(
                errors.FieldViolation(f"{where}.name", f"is required, at most {MAX_NAME_CHARS} characters")
            )
        wanted[code] = name
    if not wanted and not violations:
        violations.append(errors.FieldViolation("villages", "list every village and community of the town"))
    if violations:
        raise errors.InvalidInput(violations)
    return wanted


def _villages_of(tenant: str) -> Select[tuple[VillageRecord]]:
    return select(VillageRecord).where(VillageRecord.tenant_id == tenant).order_by(VillageRecord.code)
