"""MergeChildren and UnmergeChildren on the in-memory fakes (ADR 0018): the duplicate resolves to the survivor
and loses its match keys and visits due, both records' change history, timelines and the audit trail say so,
the events are told, and unmerging restores it; what is refused changes nothing.

The same through gRPC on PostgreSQL: services/registry/tests/integration/test_casework.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from platform_runtime import errors
from platform_runtime.tenancy import acting_as
from services.registry.domain import events
from services.registry.domain.codes import Relationship
from services.registry.domain.family import FamilyMember
from services.registry.tests.unit.test_casework_use_cases import CASEWORKER, NOW, REPORTER, TODAY, TOWN
from services.registry.tests.unit.test_update_child import WANG

WHY = "同一儿童，两次排查重复登记"


@pytest.fixture(autouse=True)
def as_caseworker() -> Iterator[None]:
    with acting_as(CASEWORKER):
        yield


@pytest.fixture
def twins(store, casework) -> tuple[str, str]:
    unnumbered = replace(WANG, identity_number_cipher=None, identity_number_index=None, identity_number_masked="")
    for child_id, details in (("kept", WANG), ("duplicate", unnumbered)):
        store.add_child(TOWN, child_id, opened_at=NOW - timedelta(days=30), details=details)
    casework.add_family_member("duplicate", FamilyMember(Relationship.MOTHER, "李梅"))  # match keys, a history
    store.town(TOWN).history.clear()
    return "kept", "duplicate"


def test_a_duplicate_is_merged_reversibly(registry, store, twins) -> None:
    kept, duplicate = twins
    assert store.town(TOWN).match_keys[duplicate]
    store.case_file(TOWN, duplicate).next_visit_due = TODAY + timedelta(days=3)

    view = registry.merge_children(kept, duplicate, f" {WHY} ")

    assert view.child_id == kept and view.version == 1
    assert store.child(TOWN, duplicate).merged_into == kept and store.child(TOWN, duplicate).version == 2
    assert store.town(TOWN).match_keys[duplicate] == []  # never proposed again
    assert store.case_file(TOWN, duplicate).next_visit_due is None  # followed through the survivor
    entries = [(e.child_id, e.entity_type, e.action, e.changes) for e in store.town(TOWN).history]
    assert entries[-2:] == [
        (duplicate, "child", "merged", {"merged_into": [None, kept], "reason": [None, WHY]}),
        (kept, "child", "merged", {"merged_child_id": [None, duplicate], "reason": [None, WHY]}),
    ]
    assert store.town(TOWN).audit == [(CASEWORKER.user_id, "merge_children", "child", duplicate, WHY)]
    assert {t.child_id for t in store.town(TOWN).timeline if t.kind == "merged"} == {kept, duplicate}
    assert events.ChildrenMerged(kept, duplicate, merged_by=CASEWORKER.user_id) in store.events

    restored = registry.unmerge_children(duplicate, "核实为双胞胎，并非同一人")

    assert restored.child_id == duplicate and store.child(TOWN, duplicate).merged_into is None
    assert store.town(TOWN).match_keys[duplicate]
    assert [e.action for e in store.town(TOWN).history][-2:] == ["unmerged", "unmerged"]
    assert store.town(TOWN).history[-2].changes["merged_into"] == [kept, None]
    assert isinstance(store.events[-1], events.ChildrenUnmerged)


def test_merges_that_make_no_sense_or_by_the_wrong_people_are_refused(registry, store, twins) -> None:
    kept, duplicate = twins
    with pytest.raises(errors.InvalidInput, match="itself"):
        registry.merge_children(kept, kept, WHY)
    with pytest.raises(errors.InvalidInput, match="say why"):
        registry.merge_children(kept, duplicate, "  ")
    with pytest.raises(errors.NotFound):
        registry.merge_children(kept, "nobody", WHY)
    with pytest.raises(errors.Conflict, match="not merged"):
        registry.unmerge_children(duplicate, WHY)
    with acting_as(REPORTER), pytest.raises(errors.PermissionDenied):
        registry.merge_children(kept, duplicate, WHY)
    assert store.town(TOWN).history == [] and store.town(TOWN).audit == []

    registry.merge_children(kept, duplicate, WHY)
    with pytest.raises(errors.Conflict, match="already merged"):
        registry.merge_children(kept, duplicate, WHY)
    with pytest.raises(errors.Conflict, match="itself merged"):
        registry.merge_children(duplicate, kept, WHY)
