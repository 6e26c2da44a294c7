"""Derived difficulty categories: computed by rules, never typed in.

A rule is data: a `RuleDefinition` names the category it derives, the days it is in force and its
parameters (plain JSON-friendly values, so the service can store rule sets in a table). The logic
behind each derived category is one function below; the parameters say how it is tuned. A newer
version of a policy is a new definition with a later `effective_from`, the old one getting an
`effective_to`, so evaluating at a past date gives the answer that was right on that date.

Date arithmetic follows Civil Code Art. 202: adding months lands on the same day of the month, or
on the month's last day when that day does not exist. So "6 months after 31 August" is the last
day of February, and a child born on 29 February has birthdays on 28 February in common years.
"""

from __future__ import annotations

import calendar
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TypeVar

from services.registry.domain.codes import (
    DifficultyCategory,
    DisabilityGrade,
    DisabilityType,
    GuardianStatus,
    LabelledEnum,
    Relationship,
)
from services.registry.domain.errors import Conflict, InvalidInput

AGE_OF_MAJORITY = 18  # Civil Code Art. 17

ParameterValue = int | tuple[str, ...] | list[str]  # lists as they come back from JSON


# --- dates -------------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """`day` moved by `months` (may be negative), clamped to the end of a shorter month."""
    month_index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(month_index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last_day))


def anniversary(birth_date: date, years: int) -> date:
    """The day a person born on `birth_date` reaches `years` full years of age."""
    return add_months(birth_date, 12 * years)


def age_in_years(birth_date: date, on: date) -> int:
    """Full years of age on `on` (周岁)."""
    years = on.year - birth_date.year
    return years if on >= anniversary(birth_date, years) else years - 1


def months_elapsed_at_least(since: date, on: date, months: int) -> bool:
    return on >= add_months(since, months)


# --- the child as rules see it ----------------------------------------------------------------


@dataclass(frozen=True)
class ParentSnapshot:
    """A legal parent (birth or adoptive) and their situation on the evaluation date."""

    relationship: Relationship
    status: GuardianStatus = GuardianStatus.NORMAL
    status_since: date | None = None
    # Planned end of a custodial measure (sentence, detention, rehab order), when known: a
    # 5-year sentence qualifies from its first day, without waiting 6 months.
    status_until: date | None = None
    disability_type: DisabilityType | None = None
    disability_grade: DisabilityGrade | None = None
    seriously_ill: bool = False  # 重病 as the district defines it (a local list of illnesses)


@dataclass(frozen=True)
class ChildSnapshot:
    birth_date: date
    household_registration_code: str | None  # GB/T 2260 division code, 6, 9 or 12 digits
    district_code: str  # the tenant's district, 6 digits (e.g. 110111)
    parents: tuple[ParentSnapshot, ...] = ()


# --- rule definitions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleDefinition:
    code: str
    category: DifficultyCategory  # must be a derived one; it selects the logic
    effective_from: date
    effective_to: date | None  # last day in force (inclusive); None = open-ended
    parameters: Mapping[str, ParameterValue] = field(default_factory=dict)
    source: str = ""  # policy document, for display

    def __post_init__(self) -> None:
        if self.category not in _LOGIC:
            raise InvalidInput("category", f"{self.category} is not derived by rules")
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise InvalidInput("effective_to", f"rule {self.code} ends before it starts")
        expected = _PARAMETER_KINDS[self.category]
        unknown = sorted(set(self.parameters) - set(expected))
        if unknown:
            raise InvalidInput("parameters", f"rule {self.code}: unknown parameters {unknown}")
        for name, kind in expected.items():
            _read_parameter(self, name, kind)  # raises InvalidInput if missing or malformed

    def is_in_force(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)


@dataclass(frozen=True)
class DerivedCategory:
    category: DifficultyCategory
    rule_code: str
    reason: str


def check_rule_set(rules: Iterable[RuleDefinition]) -> None:
    """Raise Conflict if codes repeat or two rules for one category are in force on the same day."""
    seen: dict[str, RuleDefinition] = {}
    by_category: dict[DifficultyCategory, list[RuleDefinition]] = {}
    for rule in rules:
        if rule.code in seen:
            raise Conflict(f"rule code {rule.code} appears twice")
        seen[rule.code] = rule
        by_category.setdefault(rule.category, []).append(rule)
    for category_rules in by_category.values():
        ordered = sorted(category_rules, key=lambda r: r.effective_from)
        for earlier, later in itertools.pairwise(ordered):
            if earlier.effective_to is None or earlier.effective_to >= later.effective_from:
                raise Conflict(f"rules {earlier.code} and {later.code} overlap in time")


def evaluate(rules: Iterable[RuleDefinition], child: ChildSnapshot, on: date) -> list[DerivedCategory]:
    """Derived categories of `child` on the day `on`, from the rules in force that day."""
    if child.birth_date > on:
        raise InvalidInput("birth_date", f"is after the evaluation date {on.isoformat()}")
    derived: list[DerivedCategory] = []
    for rule in rules:
        if not rule.is_in_force(on):
            continue
        reason = _LOGIC[rule.category](rule, child, on)
        if reason is not None:
            derived.append(DerivedCategory(rule.category, rule.code, reason))
    return derived


# --- 事实无人抚养 (de facto unattended) ----------------------------------------------------------


def _de_facto_unattended(rule: RuleDefinition, child: ChildSnapshot, on: date) -> str | None:
    """Both parents in a listed situation, or one deceased and the other in a listed situation.

    Both deceased is an orphan (孤儿), a different status. Exactly two legal parents must be
    recorded: with one unknown the rule cannot be decided and does not fire.
    """
    if age_in_years(child.birth_date, on) >= AGE_OF_MAJORITY or len(child.parents) != 2:
        return None
    absent_statuses = _codes(rule, "absent_statuses", GuardianStatus)
    parts: list[str] = []
    absent_count = 0
    for parent in child.parents:
        if parent.status in absent_statuses:
            absent_count += 1
            parts.append(f"{parent.relationship.label}: {parent.status.label}")
            continue
        situation = _parent_situation(rule, parent, on)
        if situation is None:
            return None
        parts.append(f"{parent.relationship.label}: {situation}")
    if absent_count == len(child.parents):
        return None
    lead = "one parent absent, the other" if absent_count else "both parents"
    return f"{lead} in a listed situation ({'; '.join(parts)})"


def _parent_situation(rule: RuleDefinition, parent: ParentSnapshot, on: date) -> str | None:
    """Why this parent cannot raise the child under the rule, or None if nothing qualifies."""
    qualifying = _codes(rule, "qualifying_statuses", GuardianStatus)
    # Disability and illness are facts of their own, whatever the status field says; a
    # "severely disabled" status without a qualifying grade is not enough.
    severe_disability = _severe_disability(rule, parent)
    if GuardianStatus.SEVERELY_DISABLED in qualifying and severe_disability:
        return severe_disability
    if GuardianStatus.SERIOUSLY_ILL in qualifying and (
        parent.seriously_ill or parent.status is GuardianStatus.SERIOUSLY_ILL
    ):
        return "重病"

    status, since = parent.status, parent.status_since
    if status not in qualifying or status in _GRADED_STATUSES:
        return None
    if since is not None and since > on:
        return None  # recorded ahead of time: not yet the case
    if status in _codes(rule, "measure_statuses", GuardianStatus):
        min_months = _int(rule, "min_measure_months")
        if since is None:
            return None
        until = parent.status_until
        if until is not None and until >= add_months(since, min_months):
            return f"{status.label} from {since} to {until} ({min_months}+ months)"
        if months_elapsed_at_least(since, on, min_months):
            return f"{status.label} since {since} ({min_months}+ months)"
        return None
    if status is GuardianStatus.MISSING:
        min_months = _int(rule, "min_missing_months")
        if since is None or not months_elapsed_at_least(since, on, min_months):
            return None
        return f"{status.label} since {since} ({min_months}+ months)"
    return status.label


# Statuses decided by the recorded disability grade / illness flag, checked first above.
_GRADED_STATUSES = frozenset({GuardianStatus.SEVERELY_DISABLED, GuardianStatus.SERIOUSLY_ILL})


def _severe_disability(rule: RuleDefinition, parent: ParentSnapshot) -> str | None:
    """重残: grade 1-2, or 3-4 for mental and intellectual disability (by default parameters)."""
    kind, grade = parent.disability_type, parent.disability_grade
    if kind is None or grade is None:
        return None
    mental_or_intellectual = kind in (DisabilityType.MENTAL, DisabilityType.INTELLECTUAL)
    grades = "severe_grades_mental_intellectual" if mental_or_intellectual else "severe_grades"
    if grade not in _codes(rule, grades, DisabilityGrade):
        return None
    return f"重残 ({kind.label}{grade.label})"


# --- 0-3 with local household registration -----------------------------------------------------


def _infant_local(rule: RuleDefinition, child: ChildSnapshot, on: date) -> str | None:
    min_age_days = _int(rule, "min_age_days")
    under_age_years = _int(rule, "under_age_years")
    registration = child.household_registration_code
    if registration is None or registration[:6] != child.district_code:
        return None
    if on < child.birth_date + timedelta(days=min_age_days):
        return None
    until = anniversary(child.birth_date, under_age_years)
    if on >= until:
        return None
    return f"under {under_age_years} (until {until}) with household registration in district {child.district_code}"


# --- ageing out at 18 --------------------------------------------------------------------------


def _ageing_out(rule: RuleDefinition, child: ChildSnapshot, on: date) -> str | None:
    """Within `months_before` months of the 18th birthday, or already 18 (no longer a minor)."""
    months_before = _int(rule, "months_before")
    majority = anniversary(child.birth_date, AGE_OF_MAJORITY)
    if on >= majority:
        return f"turned {AGE_OF_MAJORITY} on {majority}: no longer a minor"
    if on >= add_months(majority, -months_before):
        return f"turns {AGE_OF_MAJORITY} on {majority}, within {months_before} months"
    return None


# --- parameters ---------------------------------------------------------------------------------

_Logic = Callable[[RuleDefinition, ChildSnapshot, date], str | None]
_LOGIC: dict[DifficultyCategory, _Logic] = {
    DifficultyCategory.DE_FACTO_UNATTENDED_MCA_2019: _de_facto_unattended,
    DifficultyCategory.INFANT_0_3_LOCAL: _infant_local,
    DifficultyCategory.AGEING_OUT: _ageing_out,
}

# int = a whole number; an enum class = a list of that enum's values.
_ParameterKind = type[int] | type[LabelledEnum]
_PARAMETER_KINDS: dict[DifficultyCategory, dict[str, _ParameterKind]] = {
    DifficultyCategory.DE_FACTO_UNATTENDED_MCA_2019: {
        "qualifying_statuses": GuardianStatus,
        "absent_statuses": GuardianStatus,
        "measure_statuses": GuardianStatus,
        "min_measure_months": int,
        "min_missing_months": int,
        "severe_grades": DisabilityGrade,
        "severe_grades_mental_intellectual": DisabilityGrade,
    },
    DifficultyCategory.INFANT_0_3_LOCAL: {"min_age_days": int, "under_age_years": int},
    DifficultyCategory.AGEING_OUT: {"months_before": int},
}

_E = TypeVar("_E", bound=LabelledEnum)


def _read_parameter(rule: RuleDefinition, name: str, kind: _ParameterKind) -> object:
    if kind is int:
        return _int(rule, name)
    assert issubclass(kind, LabelledEnum)
    return _codes(rule, name, kind)


def _int(rule: RuleDefinition, name: str) -> int:
    value = rule.parameters.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"parameters.{name}", f"rule {rule.code}: needs a whole number >= 0")
    return value


def _codes(rule: RuleDefinition, name: str, enum_class: type[_E]) -> frozenset[_E]:
    value = rule.parameters.get(name)
    if not isinstance(value, tuple | list):
        raise InvalidInput(f"parameters.{name}", f"rule {rule.code}: needs a list of codes")
    try:
        return frozenset(enum_class(code) for code in value)
    except ValueError as error:
        raise InvalidInput(f"parameters.{name}", f"rule {rule.code}: {error}") from None


# --- the rule set in force ----------------------------------------------------------------------
# Dates are policy data: each district confirms them against the documents it applies.

_S = GuardianStatus
_SITUATIONS_2019 = (
    _S.SEVERELY_DISABLED,
    _S.SERIOUSLY_ILL,
    _S.IMPRISONED_OR_DETAINED,
    _S.COMPULSORY_DRUG_REHAB,
    _S.MISSING,
)
_DE_FACTO_2019_PARAMETERS: dict[str, ParameterValue] = {
    "qualifying_statuses": _SITUATIONS_2019,
    "absent_statuses": (_S.DECEASED,),  # "the other parent" may be in a situation or absent
    # "服刑在押、强制隔离戒毒、被执行其他限制人身自由的措施" count when the measure lasts 6+ months.
    "measure_statuses": (_S.IMPRISONED_OR_DETAINED, _S.COMPULSORY_DRUG_REHAB),
    "min_measure_months": 6,
    "min_missing_months": 6,  # 失联: no contact and no care for 6+ months
    "severe_grades": ("1", "2"),
    "severe_grades_mental_intellectual": ("1", "2", "3", "4"),
}

DEFAULT_RULES: tuple[RuleDefinition, ...] = (
    RuleDefinition(
        code="DFU-2019-62",
        category=DifficultyCategory.DE_FACTO_UNATTENDED_MCA_2019,
        effective_from=date(2019, 6, 18),
        effective_to=date(2020, 12, 31),
        parameters=_DE_FACTO_2019_PARAMETERS,
        source="民发〔2019〕62号",
    ),
    RuleDefinition(
        code="DFU-2020-125",
        category=DifficultyCategory.DE_FACTO_UNATTENDED_MCA_2019,
        effective_from=date(2021, 1, 1),
        effective_to=None,
        parameters={
            **_DE_FACTO_2019_PARAMETERS,
            "qualifying_statuses": (*_SITUATIONS_2019, _S.GUARDIANSHIP_REVOKED, _S.DEPORTED),
        },
        source="民发〔2020〕125号 (adds guardianship revoked and deported)",
    ),
    RuleDefinition(
        code="INFANT-0-3-LOCAL",
        category=DifficultyCategory.INFANT_0_3_LOCAL,
        effective_from=date(2014, 1, 1),
        effective_to=None,
        parameters={"min_age_days": 0, "under_age_years": 3},
        source="房山区未成年人社会保护试点方案 (2014): insurance for all local 0-3 year olds",
    ),
    RuleDefinition(
        code="AGEING-OUT-18",
        category=DifficultyCategory.AGEING_OUT,
        effective_from=date(2014, 1, 1),
        effective_to=None,
        parameters={"months_before": 6},
        source="Civil Code Art. 17 (age of majority 18)",
    ),
)
