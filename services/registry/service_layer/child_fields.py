"""A child's fields: the checks RegisterChild and UpdateChild (and the survey's rows) apply, the town's
villages among them, and the identity number (GB 11643) validated, encrypted, blind-indexed and masked.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from platform_runtime import errors
from platform_runtime.pii import mask_identity_number
from services.registry.adapters import village_scope
from services.registry.adapters.orm import ChildRecord
from services.registry.domain.child import ContactPerson
from services.registry.domain.codes import DisabilityGrade, DisabilityType, Ethnicity
from services.registry.domain.errors import InvalidInput as InvalidIdentity
from services.registry.domain.identity import cross_check_identity, parse_identity_number
from services.registry.service_layer import villages
from services.registry.service_layer.child_views import child_view
from services.registry.service_layer.commands import RegisterChild
from services.registry.service_layer.inputs import IDENTITY_FIELD
from services.registry.service_layer.scope import Scope
from services.registry.service_layer.use_cases import RegistryUseCases

ALREADY_REGISTERED = "a child with this identity number is already registered"
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


def check_villages(scope: Scope, command: RegisterChild, fields: frozenset[str]) -> None:
    violations = villages.village_violations(scope, {name: getattr(command, name) for name in sorted(fields)})
    if violations:
        raise errors.InvalidInput(violations)
    if fields and not village_scope.covers(scope.caller, [getattr(command, name) for name in sorted(DIVISION_FIELDS)]):
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

    def _identity_number(self, record: ChildRecord) -> str:
        if not record.identity_number_cipher:
            return ""
        return self._cipher.decrypt(record.identity_number_cipher, tenant=record.tenant_id, field=IDENTITY_FIELD)

    def _set_identity_number(self, scope: Scope, record: ChildRecord, number: str) -> None:
        """Encrypt, index and mask the number ("" removes it); a number already in the town is refused."""
        if number and scope.session.scalar(
            select(ChildRecord.id).where(
                ChildRecord.tenant_id == scope.tenant,
                ChildRecord.identity_number_index == self._blind_index.digest(number, field=IDENTITY_FIELD),
                ChildRecord.id != record.id,
            )
        ):
            raise errors.Conflict(ALREADY_REGISTERED)
        self._write_identity_number(scope, record, number)

    def _write_identity_number(self, scope: Scope, record: ChildRecord, number: str) -> None:
        """The number encrypted, blind-indexed and masked ("" removes it)."""
        if not number:
            record.identity_number_cipher = record.identity_number_index = None
            record.identity_number_masked = ""
            return
        record.identity_number_cipher = self._cipher.encrypt(number, tenant=scope.tenant, field=IDENTITY_FIELD)
        record.identity_number_index = self._blind_index.digest(number, field=IDENTITY_FIELD)
        record.identity_number_masked = mask_identity_number(number)


def _disability_violations(kind: str, grade: str) -> list[errors.FieldViolation]:
    violations = []
    if kind and kind not in DisabilityType._value2member_map_:
        violations.append(errors.FieldViolation("disability_type", "must be a GB/T 26341 disability type"))
    if grade and grade not in DisabilityGrade._value2member_map_:
        violations.append(errors.FieldViolation("disability_grade", "must be 1, 2, 3 or 4"))
    if bool(kind) != bool(grade):
        violations.append(errors.FieldViolation("disability_grade", "a disability has both a type and a grade"))
    return violations


def write_fields(record: ChildRecord, values: RegisterChild) -> None:
    """The plain columns from the command (the identity number is set apart: it is encrypted)."""
    record.legal_name = values.legal_name.strip()
    record.other_names = [name.strip() for name in values.other_names if name.strip()]
    record.sex = values.sex.value
    record.birth_date = values.birth_date
    record.ethnicity_code = values.ethnicity_code
    record.household_division_code = values.household_division_code
    record.household_address = values.household_address.strip()
    record.residence_division_code = values.residence_division_code
    record.residence_address = values.residence_address.strip()
    record.school = values.school.strip()
    record.grade = values.grade.strip()
    record.description = values.description.strip()
    record.provisional = values.provisional
    record.disability_type = values.disability_type
    record.disability_grade = values.disability_grade
    record.serious_illness = values.serious_illness.strip()
    record.contact_name = values.contact_person.name.strip()
    record.contact_relationship = values.contact_person.relationship.strip()
    record.contact_phone = values.contact_person.phone.strip()


def read_fields(record: ChildRecord, identity_number: str) -> RegisterChild:
    view = child_view(record, ())
    return RegisterChild(
        legal_name=view.legal_name,
        other_names=view.other_names,
        sex=view.sex,
        birth_date=view.birth_date,
        identity_number=identity_number,
        ethnicity_code=view.ethnicity_code,
        household_division_code=view.household_division_code,
        household_address=view.household_address,
        residence_division_code=view.residence_division_code,
        residence_address=view.residence_address,
        school=view.school,
        grade=view.grade,
        provisional=view.provisional,
        description=record.description,
        disability_type=view.disability_type,
        disability_grade=view.disability_grade,
        serious_illness=view.serious_illness,
        contact_person=ContactPerson(record.contact_name, record.contact_relationship, record.contact_phone),
    )
