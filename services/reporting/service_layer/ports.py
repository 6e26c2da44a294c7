"""What the reporting use cases need from the outside world, as interfaces (adapters implement them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.reporting.domain.model import ChildInfo, Place


@dataclass(frozen=True)
class ChildCandidate:
    child_id: str
    score: float
    reasons: tuple[str, ...]


class ChildDirectoryUnavailable(Exception):
    """The registry could not be asked; the report is kept and flagged for a person."""


class ChildDirectory(Protocol):
    def match(self, child: ChildInfo, place: Place) -> list[ChildCandidate]: ...

    def register_provisional(self, child: ChildInfo, place: Place) -> str: ...
