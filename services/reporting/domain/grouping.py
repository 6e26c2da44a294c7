"""Whether a new report belongs to an existing incident group, so that reports are grouped, not duplicated."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from difflib import SequenceMatcher
from enum import Enum

from services.reporting.domain.model import Report


class GroupingReason(Enum):
    SAME_CHILD = "same_child"
    SAME_PLACE_AND_TIME = "same_place_and_time"


@dataclass(frozen=True)
class GroupingPolicy:
    same_child_within: timedelta = timedelta(days=30)
    same_place_within: timedelta = timedelta(hours=48)
    min_description_similarity: float = 0.6  # difflib ratio, 0..1


DEFAULT_GROUPING_POLICY = GroupingPolicy()


@dataclass(frozen=True)
class GroupingFacts:
    """The part of a report that grouping compares."""

    report_id: str
    group_id: str | None  # None while the report is not grouped yet
    child_id: str | None
    division_code: str
    occurred_at: datetime
    description: str  # what is known of the child: name and description

    @classmethod
    def of(cls, report: Report) -> GroupingFacts:
        child = report.submission.child
        return cls(
            report_id=report.report_id,
            group_id=report.group_id,
            child_id=report.child_id,
            division_code=report.submission.place.division_code,
            occurred_at=report.submission.occurred_at,
            description=" ".join(text for text in (child.name, child.description) if text),
        )


@dataclass(frozen=True)
class GroupMatch:
    group_id: str
    matched_report_id: str
    reason: GroupingReason
    similarity: float | None  # for SAME_PLACE_AND_TIME


def find_group(
    new: GroupingFacts,
    existing: Iterable[GroupingFacts],
    policy: GroupingPolicy = DEFAULT_GROUPING_POLICY,
) -> GroupMatch | None:
    """The group `new` belongs to, or None for a new group.

    A same-child match wins over a place-and-time match, then the most similar description, then the
    closest in time.
    Pass only the tenant's recent reports; ungrouped ones are skipped.
    """
    best: tuple[tuple[bool, float, timedelta], GroupMatch] | None = None
    for other in existing:
        if other.group_id is None or other.report_id == new.report_id:
            continue
        match = _match(new, other, other.group_id, policy)
        if match is not None:
            apart = abs(new.occurred_at - other.occurred_at)
            rank = (match.reason is GroupingReason.SAME_CHILD, match.similarity or 0.0, -apart)
            if best is None or rank > best[0]:
                best = (rank, match)
    return None if best is None else best[1]


def _match(new: GroupingFacts, other: GroupingFacts, group_id: str, policy: GroupingPolicy) -> GroupMatch | None:
    apart = abs(new.occurred_at - other.occurred_at)
    if new.child_id is not None and other.child_id is not None:
        # Both linked: the same child or not at all; two linked children are two incidents, however alike.
        if new.child_id == other.child_id and apart <= policy.same_child_within:
            return GroupMatch(group_id, other.report_id, GroupingReason.SAME_CHILD, None)
        return None
    if apart > policy.same_place_within or _normalised_code(new.division_code) != _normalised_code(other.division_code):
        return None
    similarity = description_similarity(new.description, other.description)
    if similarity < policy.min_description_similarity:
        return None
    return GroupMatch(group_id, other.report_id, GroupingReason.SAME_PLACE_AND_TIME, similarity)


def description_similarity(first: str, second: str) -> float:
    """0..1 similarity of two free-text descriptions, ignoring case, spaces and punctuation."""
    a, b = _normalised_text(first), _normalised_text(second)
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def _normalised_text(text: str) -> str:
    # NFKC folds full-width letters and digits (common in Chinese input) into their usual forms.
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(char for char in folded if char.isalnum())


def _normalised_code(code: str) -> str:
    """A 9-digit town code and its 12-digit form (`000` appended) name the same place."""
    return code + "000" if len(code) == 9 else code
