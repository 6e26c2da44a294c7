"""What the reporting use cases need from the outside world, as interfaces (adapters implement them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from services.reporting.domain.model import ChildInfo, Place, Sex


@dataclass(frozen=True)
class ChildCandidate:
    """A child of the register who may be the one reported, with what a person needs to tell them apart."""

    child_id: str
    score: float
    reasons: tuple[str, ...]
    name: str = ""
    sex: Sex | None = None
    birth_date: date | None = None
    identity_number_masked: str = ""
    residence_division_code: str = ""
    school: str = ""
    provisional: bool = False


class ChildDirectoryUnavailable(Exception):
    """The registry could not be asked; the report is kept and flagged for a person."""


class ChildDirectory(Protocol):
    def match(self, child: ChildInfo, place: Place) -> list[ChildCandidate]: ...

    def register_provisional(self, child: ChildInfo, place: Place) -> str: ...

    def current_id(self, child_id: str) -> str | None:
        """The id of the child's record (the surviving one if it was merged), None if not in the caller's town."""
        ...
