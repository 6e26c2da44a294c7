"""What matching reads of a child (its facts) and the blocking keys stored for it (child_match_keys, as
HMACs: they hold personal data).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

from platform_runtime.pii import BlindIndex
from services.registry.adapters.orm import ChildRecord
from services.registry.domain import matching
from services.registry.domain.child_record import Child
from services.registry.domain.codes import Relationship, Sex


class FactColumns(Protocol):
    """What matching reads of a child: a ChildRecord, a row of RECORD_FACT_COLUMNS, or ChildDetails."""

    @property
    def legal_name(self) -> str: ...
    @property
    def other_names(self) -> Sequence[str] | None: ...
    @property
    def identity_number_index(self) -> str | None: ...
    @property
    def birth_date(self) -> date | None: ...
    @property
    def sex(self) -> str: ...
    @property
    def residence_division_code(self) -> str: ...
    @property
    def household_division_code(self) -> str: ...
    @property
    def school(self) -> str: ...


# The columns record_facts reads (and the id): matching selects these, not whole records.
RECORD_FACT_COLUMNS = (
    ChildRecord.id,
    ChildRecord.legal_name,
    ChildRecord.other_names,
    ChildRecord.identity_number_index,
    ChildRecord.birth_date,
    ChildRecord.sex,
    ChildRecord.residence_division_code,
    ChildRecord.household_division_code,
    ChildRecord.school,
)
# Whose names a report may give as the child's guardians (besides members recorded as guardian).
PARENT_RELATIONSHIPS = tuple(r.value for r in Relationship if r.is_parent)


def record_facts(record: FactColumns, guardians: tuple[str, ...] = ()) -> matching.ChildFacts:
    sex = Sex(record.sex)
    return matching.ChildFacts(
        name=record.legal_name or None,
        other_names=tuple(record.other_names or ()),
        identity_key=record.identity_number_index,
        birth_date=record.birth_date,
        sex=sex if sex.is_known else None,
        guardian_names=guardians,
        division_code=record.residence_division_code or record.household_division_code or None,
        school=record.school or None,
    )


def match_key_digest(blind_index: BlindIndex, key: str) -> str:
    # Match keys hold pinyin, birth dates and guardians' names: personal data, stored only as HMACs.
    return blind_index.digest(key, field="match_key")


def child_match_keys(blind_index: BlindIndex, child: Child) -> list[str]:
    """The blocking keys of the child as it is now (a merged duplicate gets none: it is never proposed)."""
    if child.merged_into is not None:
        return []
    return match_key_digests(blind_index, child.details, child.guardian_names())


def match_key_digests(blind_index: BlindIndex, record: FactColumns, guardians: tuple[str, ...]) -> list[str]:
    facts = record_facts(record, guardians)
    return sorted({match_key_digest(blind_index, k) for k in matching.index_keys(facts)})
