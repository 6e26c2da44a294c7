"""A discovery report as the portal receives it (HTML form or JSON) turned into `SubmitReportRequest`.

Both entry points produce the same payload shape (the JSON API's body; the form's fields are its dotted
paths, e.g. `child.name`), so there is one translation and one set of field names for errors. What the
gateway cannot even parse (a date, a number, an unknown code) is reported like the service's own
field violations; everything else is the reporting service's to judge.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any, TypeVar

from google.protobuf import timestamp_pb2
from minorprot.common.v1 import common_pb2
from minorprot.reporting.v1 import reporting_pb2
from werkzeug.datastructures import MultiDict

from gateway.clients import BackendError
from platform_runtime.errors import FieldViolation, InvalidInput
from platform_runtime.vocabulary import (
    CHINA_STANDARD_TIME,
    KNOWN_SEXES,
    MANDATORY_REPORTING_SITUATIONS,
    AgencyKind,
    Channel,
    Fact,
    LabelledEnum,
    ReporterRole,
    SituationType,
)
from platform_runtime.vocabulary_messages import sex_to_proto

E = TypeVar("E", bound=Enum)

# The service names some fields differently from the form; errors are shown beside the form's field.
FIELD_ALIASES = {
    "situations": "situation_types",
    "division_code": "place.division_code",
    "agency_kind": "reporter.agency",
}
_LIST_FIELDS = ("situation_types", "facts")
_NAME_SEPARATORS = re.compile(r"[,，、;；\s]+")


def choices(members: Iterable[LabelledEnum]) -> list[tuple[str, str]]:
    """(value, Chinese label) pairs for selects and checkboxes; the page shows the label in its language."""
    return [(m.value, m.label) for m in members]


SITUATION_GROUPS = (
    ("困境类别", choices(s for s in SituationType if s not in MANDATORY_REPORTING_SITUATIONS)),
    (
        "强制报告情形",
        choices(s for s in SituationType if s in MANDATORY_REPORTING_SITUATIONS),
    ),
)
# A report says male, female or nothing. The portal and its API name a sex by the contract's name
# (`male`), shown with the portal's short label (the register's GB/T labels are 男性 and 女性).
SEX_LABELS = {"male": "男", "female": "女", "unknown": "未知", "unspecified": ""}
SEX_CODES = {sex.code: sex for sex in KNOWN_SEXES}
SEX_CHOICES = [(sex.code, SEX_LABELS[sex.code]) for sex in KNOWN_SEXES]


def now_for_form() -> str:
    """Now, as a form's `datetime-local` field shows it (Beijing time): the default for `occurred_at`."""
    return datetime.now(CHINA_STANDARD_TIME).strftime("%Y-%m-%dT%H:%M")


IDEMPOTENCY_FIELD = "idempotency_key"  # the report forms' hidden field
IDEMPOTENCY_HEADER = "Idempotency-Key"  # the REST API's


def new_idempotency_key() -> str:
    """Minted when a report form is shown: posting that form again (a retry after a timeout, a double
    click) is the same submission, and the reporting service returns the first report."""
    return secrets.token_urlsafe(18)


def channel_to_proto(channel: Channel) -> reporting_pb2.Channel.ValueType:
    return reporting_pb2.Channel.Value(f"CHANNEL_{channel.name}")


def payload_from_form(form: MultiDict[str, str]) -> dict[str, Any]:
    """`child.name=...` becomes `{"child": {"name": ...}}`; checkbox groups become lists."""
    payload: dict[str, Any] = {name: form.getlist(name) for name in _LIST_FIELDS}
    for key, value in form.items():
        if key in _LIST_FIELDS or key == "csrf_token":
            continue
        group, _, name = key.partition(".")
        if name:
            payload.setdefault(group, {})[name] = value
        else:
            payload[group] = value
    return payload


def form_errors(error: Exception) -> dict[str, list[str]] | None:
    """The input's problems by form field ("" for those of no single field), or None if `error` is not
    the input's fault (then it is the error pages' to show)."""
    if isinstance(error, InvalidInput):
        violations = error.violations
    elif isinstance(error, BackendError) and error.code == "INVALID_ARGUMENT":
        violations = error.violations or (FieldViolation("", error.message),)
    else:
        return None
    errors: dict[str, list[str]] = {}
    for violation in violations:
        errors.setdefault(FIELD_ALIASES.get(violation.field, violation.field), []).append(violation.message)
    return errors


class _Reader:
    """Reads payload values, collecting every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def text(self, group: Mapping[str, Any], name: str) -> str:
        value = group.get(name, "")
        return value.strip() if isinstance(value, str) else str(value)

    def enum(self, kind: type[E], value: str, field: str) -> E | None:
        if not value:
            return None
        try:
            return kind(value)
        except ValueError:
            self.violations.append(FieldViolation(field, f"unknown value {value!r}"))
            return None

    def day(self, value: str, field: str) -> common_pb2.Date | None:
        if not value:
            return None
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            self.violations.append(FieldViolation(field, "must be a date (YYYY-MM-DD)"))
            return None
        return common_pb2.Date(year=parsed.year, month=parsed.month, day=parsed.day)

    def integer(self, value: Any, field: str) -> int:
        if value in ("", None):
            return 0
        try:
            number = int(value)
        except (TypeError, ValueError, OverflowError):
            self.violations.append(FieldViolation(field, "must be a whole number"))
            return 0
        if not -(2**31) <= number < 2**31:  # the contract's int32
            self.violations.append(FieldViolation(field, "is out of range"))
            return 0
        return number

    def group(self, payload: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        """A nested object of the payload (child, place, reporter); {} if absent."""
        value = payload.get(name) or {}
        if not isinstance(value, Mapping):
            self.violations.append(FieldViolation(name, "must be an object"))
            return {}
        return value

    def names(self, value: Any, field: str) -> list[str]:
        """A list of names, or (from a form) one text of names separated by commas or spaces."""
        if not isinstance(value, list):
            return [name for name in _NAME_SEPARATORS.split(str(value)) if name.strip()]
        if not all(isinstance(name, str) for name in value):
            self.violations.append(FieldViolation(field, "must be a list of names"))
            return []
        return [name for name in value if name.strip()]

    def moment(self, value: str, field: str) -> timestamp_pb2.Timestamp | None:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.violations.append(FieldViolation(field, "must be a date and time (YYYY-MM-DDTHH:MM)"))
            return None
        stamp = timestamp_pb2.Timestamp()
        try:
            # A form's local time is Beijing time; the JSON API may give an explicit offset.
            stamp.FromDatetime(parsed if parsed.tzinfo else parsed.replace(tzinfo=CHINA_STANDARD_TIME))
        except (ValueError, OverflowError):  # before year 1 or after 9999 in UTC
            self.violations.append(FieldViolation(field, "is out of range"))
            return None
        return stamp

    def codes(self, kind: type[E], values: Any, field: str) -> list[str]:
        items = values if isinstance(values, list) else [values]
        return [member.value for member in (self.enum(kind, str(v), field) for v in items if v) if member]


def moment(value: str, field: str) -> timestamp_pb2.Timestamp:
    """A date and time from a form or the API (Beijing time unless it has an offset); raises `InvalidInput`."""
    read = _Reader()
    stamp = read.moment(value, field)
    if stamp is None:
        raise InvalidInput(read.violations)
    return stamp


def build_request(
    payload: Mapping[str, Any], *, default_division: str, idempotency_key: str | None = None
) -> reporting_pb2.SubmitReportRequest:
    """Raises `InvalidInput` for what cannot be parsed; the reporting service validates the rest.

    Every submission carries an idempotency key (the agencies' external reference, one mechanism for all):
    the form's or the client's, else a fresh one, which only this request knows."""
    read = _Reader()
    child, place, reporter = (read.group(payload, name) for name in ("child", "place", "reporter"))
    channel = read.enum(Channel, read.text(payload, "channel"), "channel")
    if channel is None and not read.violations:
        read.violations.append(FieldViolation("channel", "is required"))
    sex_code = read.text(child, "sex")
    sex = SEX_CODES.get(sex_code)
    if sex_code and sex is None:
        read.violations.append(FieldViolation("child.sex", f"unknown value {sex_code!r}"))
    request = reporting_pb2.SubmitReportRequest(
        channel=channel_to_proto(channel) if channel else reporting_pb2.CHANNEL_UNSPECIFIED,
        child=reporting_pb2.ChildDescription(
            name=read.text(child, "name"),
            sex=sex_to_proto(sex) if sex else common_pb2.SEX_UNSPECIFIED,
            birth_date=read.day(read.text(child, "birth_date"), "child.birth_date"),
            approximate_age=read.integer(child.get("approximate_age"), "child.approximate_age"),
            identity_number=read.text(child, "identity_number").upper(),
            description=read.text(child, "description"),
            school=read.text(child, "school"),
            guardian_names=read.names(child.get("guardian_names", []), "child.guardian_names"),
        ),
        division_code=read.text(place, "division_code") or default_division,
        place_text=read.text(place, "text"),
        occurred_at=read.moment(read.text(payload, "occurred_at"), "occurred_at"),
        situation_types=read.codes(SituationType, payload.get("situation_types", []), "situation_types"),
        facts=read.codes(Fact, payload.get("facts", []), "facts"),
        narrative=read.text(payload, "narrative"),
        external_reference=(idempotency_key or "").strip() or new_idempotency_key(),
    )
    # Without scripts the form shows every reporter field; those that do not apply to the chosen channel
    # are left out rather than refused, and an anonymous report never carries a reporter, whatever was typed.
    role = read.enum(ReporterRole, read.text(reporter, "role"), "reporter.role")
    agency = read.enum(AgencyKind, read.text(reporter, "agency"), "reporter.agency")
    role = role if channel is Channel.MANDATED_REPORTER else None
    agency = agency if channel is Channel.AGENCY_SHARE else None
    given = {name: read.text(reporter, name) for name in ("name", "phone", "organisation")}
    if channel is not Channel.PUBLIC_ANONYMOUS and (any(given.values()) or role or agency):
        request.reporter.CopyFrom(reporting_pb2.Reporter(**given, role=role.value if role else ""))
        request.agency_kind = agency.value if agency else ""
    # The receipt by SMS or e-mail only when the reporter ticked the box; an address typed without the tick is
    # passed on so that the service refuses it (the reporter would otherwise wait for a message that never comes).
    receipt = read.group(payload, "receipt_contact")
    consent, address = ticked(receipt.get("consent")), read.text(receipt, "address")
    if consent or address:
        request.receipt_contact.CopyFrom(
            reporting_pb2.ReceiptContact(consent=consent, address=address, locale=read.text(receipt, "locale"))
        )
    if read.violations:
        raise InvalidInput(read.violations)
    return request


def receipt_asked(payload: dict[str, Any]) -> bool:
    """Whether the reporter ticked the box for the receipt number by SMS or e-mail (the receipt page says so)."""
    return ticked(payload.get("receipt_contact", {}).get("consent"))


def ticked(value: Any) -> bool:
    """A checkbox from a form ("yes", "on") or a JSON boolean."""
    return value is True or (isinstance(value, str) and value.strip().lower() in ("yes", "on", "true", "1"))
