"""A child's fields: the checks RegisterChild and UpdateChild (and the survey's rows) apply, the town's
villages among them, and the identity number (GB 11643) validated, encrypted, blind-indexed and masked.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from platform_runtime import errors
from platform_runtime.auth import Principal
from platform_runtime.pii import mask_identity_number
from services.registry.adapters import village_scope
from services.registry.adapters.child_repository import IDENTITY_COLUMNS, details_columns
from services.registry.adapters.orm import ChildRecord
from services.registry.domain.child import ChildDetails, ContactPerson
from services.registry.domain.codes import DisabilityGrade, DisabilityType, Ethnicity
from services.registry.domain.errors import InvalidInput as InvalidIdentity
from services.registry.domain.identity import cross_check_identity, parse_identity_number
from services.registry.service_layer import villages
from services.registry.service_layer.commands import RegisterChild
from services.registry.service_layer.inputs import IDENTITY_FIELD
from services.registry.service_layer.ports import VillageDirectory
from services.registry.service_layer.scope import Scope
from services.registry.service_layer.use_cases import RegistryUseCases

# Column lengths, checked before the database would refuse them.
MAX_CHARS = {
    "legal_name": 100,
    "household_address": 200,
    "residence_address": 200,
    "school": 100,
    "grade": 20,
    "serious_illness": 2000,
    "description": 4000,
}
_PHONE = re.compile(r"[0-9+\-() ]{3,30}")
DIVISION_FIELDS = frozenset({"household_division_code", "residence_division_code"})


def check_villages(
    caller: Principal, tenant: str, directory: VillageDirectory, command: RegisterChild, fields: frozenset[str]
) -> None:
    """The division codes among `fields` name villages the town lists, and the child is in the caller's."""
    codes = {name: getattr(command, name) for name in sorted(fields)}
    violations = villages.village_violations(tenant, codes, directory)
    if violations:
        raise errors.InvalidInput(violations)
    if fields and not village_scope.covers(caller, [getattr(command, name) for name in sorted(DIVISION_FIELDS)]):
        raise errors.PermissionDenied(village_scope.OUTSIDE_THEIR_VILLAGES)


class ChildFields(RegistryUseCases):
    """The checks on a child's fields, and its identity number kept encrypted, indexed and masked."""

    def validate(self, command: RegisterChild) -> str:
        """Every problem with the child's fields at once; returns the normalised identity number ("" if none)."""
        violations: list[errors.FieldViolation] = []
        if not command.legal_name.strip() and not command.description.strip():
            violations.append(errors.FieldViolation("legal_name", "a name or, for an unknown child, a description"))
        if command.birth_date and command.birth_date > self._today():
            violations.append(errors.FieldViolation("birth_date", "is in the future"))
        for field_name in ("household_division_code", "residence_division_code"):
            code = getattr(command, field_name)
            if code and not villages.division_ok(code):
                violations.append(errors.FieldViolation(field_name, "must be a 9- or 12-digit GB/T 2260 code"))
        for field_name, limit in MAX_CHARS.items():
            if len(getattr(command, field_name).strip()) > limit:
                violations.append(errors.FieldViolation(field_name, f"must be at most {limit} characters"))
        if any(len(name.strip()) > MAX_CHARS["legal_name"] for name in command.other_names):
            violations.append(errors.FieldViolation("other_names", "each at most 100 characters"))
        if command.ethnicity_code and command.ethnicity_code not in Ethnicity._value2member_map_:
            violations.append(errors.FieldViolation("ethnicity_code", "must be a GB 3304 code (01-56, 97, 98)"))
        violations += _disability_violations(command.disability_type, command.disability_grade)
        contact = command.contact_person
        if contact.phone.strip() and not _PHONE.fullmatch(contact.phone.strip()):
            violations.append(errors.FieldViolation("contact_person.phone", "is not a telephone number"))
        if len(contact.name.strip()) > 100 or len(contact.relationship.strip()) > 40:
            violations.append(errors.FieldViolation("contact_person", "name at most 100, relationship at most 40"))
        number = ""
        if command.identity_number.strip():
            try:
                identity = parse_identity_number(command.identity_number, as_of=self._today())
                number = identity.number
                violations.extend(
                    errors.FieldViolation(IDENTITY_FIELD, problem)
                    for problem in cross_check_identity(
                        identity, birth_date=command.birth_date, sex=command.sex if command.sex else None
                    )
                )
            except InvalidIdentity as exc:
                violations.append(errors.FieldViolation(IDENTITY_FIELD, exc.reason))
        if violations:
            raise errors.InvalidInput(violations)
        return number

    def _identity_number(self, tenant: str, details: ChildDetails) -> str:
        """The child's identity number, decrypted ("" if none)."""
        if not details.identity_number_cipher:
            return ""
        return self._cipher.decrypt(details.identity_number_cipher, tenant=tenant, field=IDENTITY_FIELD)

    def _with_identity(self, tenant: str, details: ChildDetails, number: str) -> ChildDetails:
        """The details with the number encrypted, blind-indexed and masked ("" removes it)."""
        if not number:
            return replace(details, identity_number_cipher=None, identity_number_index=None, identity_number_masked="")
        return replace(
            details,
            identity_number_cipher=self._cipher.encrypt(number, tenant=tenant, field=IDENTITY_FIELD),
            identity_number_index=self._blind_index.digest(number, field=IDENTITY_FIELD),
            identity_number_masked=mask_identity_number(number),
        )

    def _write_identity_number(self, scope: Scope, record: ChildRecord, number: str) -> None:
        identity = details_columns(self._with_identity(scope.tenant, ChildDetails(), number))
        for name in IDENTITY_COLUMNS:
            setattr(record, name, identity[name])


def _disability_violations(kind: str, grade: str) -> list[errors.FieldViolation]:
    violations = []
    if kind and kind not in DisabilityType._value2member_map_:
        violations.append(errors.FieldViolation("disability_type", "must be a GB/T 26341 disability type"))
    if grade and grade not in DisabilityGrade._value2member_map_:
        violations.append(errors.FieldViolation("disability_grade", "must be 1, 2, 3 or 4"))
    if bool(kind) != bool(grade):
        violations.append(errors.FieldViolation("disability_grade", "a disability has both a type and a grade"))
    return violations


def _command_columns(values: RegisterChild) -> dict[str, Any]:
    """The child's plain columns from the command, as stored (the identity number is set apart: it is
    encrypted)."""
    return {
        "legal_name": values.legal_name.strip(),
        "other_names": [name.strip() for name in values.other_names if name.strip()],
        "sex": values.sex.value,
        "birth_date": values.birth_date,
        "ethnicity_code": values.ethnicity_code,
        "household_division_code": values.household_division_code,
        "household_address": values.household_address.strip(),
        "residence_division_code": values.residence_division_code,
        "residence_address": values.residence_address.strip(),
        "school": values.school.strip(),
        "grade": values.grade.strip(),
        "description": values.description.strip(),
        "provisional": values.provisional,
        "disability_type": values.disability_type,
        "disability_grade": values.disability_grade,
        "serious_illness": values.serious_illness.strip(),
        "contact_name": values.contact_person.name.strip(),
        "contact_relationship": values.contact_person.relationship.strip(),
        "contact_phone": values.contact_person.phone.strip(),
    }


def write_fields(record: ChildRecord, values: RegisterChild) -> None:
    """The plain columns from the command (the survey's bulk path writes many: no object in between)."""
    for name, value in _command_columns(values).items():
        setattr(record, name, value)


def command_details(values: RegisterChild) -> ChildDetails:
    """The child's details from the command, as stored (without the identity number: `_with_identity`)."""
    columns = _command_columns(values)
    return ChildDetails(**{**columns, "sex": values.sex, "other_names": tuple(columns["other_names"])})


def read_fields(details: ChildDetails, identity_number: str) -> RegisterChild:
    """The command that would record the child as it is."""
    return RegisterChild(
        legal_name=details.legal_name,
        other_names=details.other_names,
        sex=details.sex,
        birth_date=details.birth_date,
        identity_number=identity_number,
        ethnicity_code=details.ethnicity_code,
        household_division_code=details.household_division_code,
        household_address=details.household_address,
        residence_division_code=details.residence_division_code,
        residence_address=details.residence_address,
        school=details.school,
        grade=details.grade,
        provisional=details.provisional,
        description=details.description,
        disability_type=details.disability_type,
        disability_grade=details.disability_grade,
        serious_illness=details.serious_illness,
        contact_person=ContactPerson(details.contact_name, details.contact_relationship, details.contact_phone),
    )
