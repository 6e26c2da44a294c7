"""What no field of any request may carry, refused for every gRPC call before a service sees it.

- Control characters in text: NUL cannot be stored in PostgreSQL text at all (the driver raises, which would
  be an internal error), and the other C0 controls (escape sequences, backspace, bell) have no place in a name,
  a narrative or an id: they only hide or forge what a reader sees. Tab, line feed and carriage return are text.
- A `google.protobuf.Timestamp` outside years 1-9999 or with impossible nanoseconds: no moment at all, and
  converting it raises.
The services check everything else about their fields themselves; these two hold for every field alike.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from platform_runtime.errors import FieldViolation, InvalidInput

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TIMESTAMP = "google.protobuf.Timestamp"
# The range google.protobuf.Timestamp is defined for: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)


def checked(request: Any) -> Any:
    """A request message checked now; a client's stream of them checked each as the service reads it."""
    if isinstance(request, Message):
        return refuse_malformed_fields(request)
    return (refuse_malformed_fields(message) for message in request)


def refuse_malformed_fields(request: Message) -> Message:
    """The request, or InvalidInput naming every field (by its path) that breaks a rule above."""
    violations = _violations(request, "")
    if violations:
        raise InvalidInput(violations)
    return request


def _violations(message: Message, prefix: str) -> list[FieldViolation]:
    if message.DESCRIPTOR.full_name == TIMESTAMP:
        return [] if _valid_timestamp(message) else [FieldViolation(prefix.rstrip("."), "is not a valid moment")]
    found: list[FieldViolation] = []
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_STRING:
            texts = list(value) if field.is_repeated else [value]
            if any(CONTROL_CHARACTERS.search(text) for text in texts):
                found.append(FieldViolation(path, "must not contain control characters"))
        elif field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                found += _map_violations(value, path)
            elif field.is_repeated:
                for index, item in enumerate(value):
                    found += _violations(item, f"{path}[{index}].")
            else:
                found += _violations(value, f"{path}.")
    return found


def _map_violations(entries: object, path: str) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    for key, item in entries.items():  # type: ignore[attr-defined]
        if isinstance(key, str) and CONTROL_CHARACTERS.search(key):
            found.append(FieldViolation(path, "must not contain control characters"))
        elif isinstance(item, Message):
            found += _violations(item, f"{path}[{key}].")
        elif isinstance(item, str) and CONTROL_CHARACTERS.search(item):
            found.append(FieldViolation(f"{path}[{key}]", "must not contain control characters"))
    return found


def _valid_timestamp(timestamp: Message) -> bool:
    seconds: int = timestamp.seconds  # type: ignore[attr-defined]
    nanos: int = timestamp.nanos  # type: ignore[attr-defined]
    return TIMESTAMP_SECONDS[0] <= seconds <= TIMESTAMP_SECONDS[1] and 0 <= nanos <= 999_999_999
