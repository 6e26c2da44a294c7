"""A village child director sees the children of their own villages only (issue 15; docs/data-protection.md).

Enforced in one place: every ORM query a registry session runs for such a caller (the principal of the call,
platform_runtime.tenancy) gets a criterion on ChildRecord, wherever the table appears (a child's record, the
register list, the export, the counts, a join to case files or plan actions). A child outside the villages is
then absent, so reading or changing it is NotFound (`repository.child_record`), as another town's child is:
its existence is not disclosed. A child lives in a village when its residence or household registration is
there. A child director with no village assigned sees no child.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, event, false, or_, select
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria

from platform_runtime.auth import Principal, Role
from platform_runtime.tenancy import optional_principal
from services.registry.adapters.orm import ChildRecord

# A query marked with this execution option sees the whole town: a uniqueness check (is this identity number
# registered?) that must not let a child director register a child twice. It answers yes/no, never the child.
WHOLE_TOWN = "whole_town"

# Why a child outside the caller's villages is not recorded (RegisterChild, UpdateChild, a survey import's row).
OUTSIDE_THEIR_VILLAGES = "a village child director records the children of their own villages only"


def villages_of(caller: Principal | None) -> tuple[str, ...] | None:
    """The villages `caller` is confined to, or None when they see the whole town."""
    if caller is None or caller.role is not Role.CHILD_DIRECTOR:
        return None
    return caller.villages


def covers(caller: Principal, codes: list[str]) -> bool:
    """Whether a child placed at these division codes (residence, household) is in the caller's villages."""
    villages = villages_of(caller)
    return villages is None or any(code in villages for code in codes if code)


def visible(session: Session, caller: Principal, child_ids: Collection[str]) -> set[str]:
    """Those of `child_ids` that `caller` sees (all of them for anyone but a child director)."""
    villages = villages_of(caller)
    if not child_ids or villages is None:
        return set(child_ids)
    query = select(ChildRecord.id).where(ChildRecord.id.in_(list(child_ids)), _in_villages(villages))
    return set(session.scalars(query))


def confine(factory: sessionmaker[Session]) -> None:
    """Apply the village criterion to the sessions of this factory (idempotent: each use case base calls it)."""
    if not event.contains(factory, "do_orm_execute", _only_their_villages):
        event.listen(factory, "do_orm_execute", _only_their_villages)


def _in_villages(villages: tuple[str, ...]) -> ColumnElement[bool]:
    if not villages:
        return false()
    return or_(ChildRecord.residence_division_code.in_(villages), ChildRecord.household_division_code.in_(villages))


def _only_their_villages(state: ORMExecuteState) -> None:
    if not state.is_select or state.execution_options.get(WHOLE_TOWN):
        return
    villages = villages_of(optional_principal())
    if villages is None:
        return
    state.statement = state.statement.options(with_loader_criteria(ChildRecord, _in_villages(villages)))
