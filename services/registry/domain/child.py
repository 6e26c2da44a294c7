"""The child as the register shows it: the record's facts with the identity number masked, the current
difficulty categories and the version read. What RegisterChild returns (ChildRegistered carries only its ids,
codes and dates)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from services.registry.domain.codes import Sex


@dataclass(frozen=True)
class ContactPerson:
    name: str = ""
    relationship: str = ""
    phone: str = ""


@dataclass(frozen=True)
class ChildView:
    child_id: str
    tenant: str
    legal_name: str
    other_names: tuple[str, ...]
    sex: Sex
    birth_date: date | None
    identity_number_masked: str
    ethnicity_code: str
    household_division_code: str
    household_address: str
    residence_division_code: str
    residence_address: str
    school: str
    grade: str
    categories: tuple[str, ...]
    provisional: bool
    created_at: datetime
    disability_type: str = ""
    disability_grade: str = ""
    serious_illness: str = ""
    contact_person: ContactPerson = field(default_factory=ContactPerson)
    version: int = 0


ALREADY_REGISTERED = "a child with this identity number is already registered"
# The child's fields as the change history shows them (the identity number only masked).
CHILD_HISTORY_FIELDS = (
    "legal_name",
    "other_names",
    "sex",
    "birth_date",
    "identity_number_masked",
    "ethnicity_code",
    "household_division_code",
    "household_address",
    "residence_division_code",
    "residence_address",
    "school",
    "grade",
    "description",
    "provisional",
    "disability_type",
    "disability_grade",
    "serious_illness",
    "contact_name",
    "contact_relationship",
    "contact_phone",
)


@dataclass(frozen=True)
class ChildDetails:
    """The child's record as stored: what the register shows, the rules and matching read. The identity
    number is kept encrypted (`identity_number_cipher`), found by its blind index and shown masked."""

    legal_name: str = ""
    other_names: tuple[str, ...] = ()
    sex: Sex = Sex.UNKNOWN
    birth_date: date | None = None
    identity_number_cipher: str | None = None
    identity_number_index: str | None = None
    identity_number_masked: str = ""
    ethnicity_code: str = ""
    household_division_code: str = ""
    household_address: str = ""
    residence_division_code: str = ""
    residence_address: str = ""
    school: str = ""
    grade: str = ""
    description: str = ""
    provisional: bool = False
    disability_type: str = ""
    disability_grade: str = ""
    serious_illness: str = ""
    contact_name: str = ""
    contact_relationship: str = ""
    contact_phone: str = ""
