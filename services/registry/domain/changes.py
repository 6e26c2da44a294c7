"""What changed in a record, as the change history keeps it: JSON-ready [before, after] pairs per field."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import date


def jsonable(value: object) -> object:
    """A value as the change history stores it (JSON): codes by value, dates as ISO text."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def field_changes(before: Mapping[str, object], after: Mapping[str, object]) -> dict[str, list[object]]:
    """{field: [before, after]} for every field whose value differs; a missing field counts as None."""
    changed: dict[str, list[object]] = {}
    for name in dict.fromkeys([*before, *after]):
        old, new = jsonable(before.get(name)), jsonable(after.get(name))
        if old != new:
            changed[name] = [old, new]
    return changed


def columns(record: object, names: Iterable[str]) -> dict[str, object]:
    return {name: getattr(record, name) for name in names}
