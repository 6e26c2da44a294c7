"""The child's family and difficulty categories on in-memory fakes (ADR 0018): AddFamilyMember,
UpdateFamilyMember, RemoveFamilyMember, AddCategory, EndCategory and the periodic derivation again; the
categories the rules derive from the family, the change history each writes (the same entries ListChanges
showed when these use cases worked on ORM rows), the match keys, the events and what is refused.

No database: the same through gRPC on PostgreSQL is services/registry/tests/integration/test_casework.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from platform_runtime import errors
from platform_runtime.tenancy import acting_as
from services.registry.domain import events
from services.registry.domain.child import ChildDetails
from services.registry.domain.codes import CategorySource, DifficultyCategory, GuardianStatus, Relationship, Sex
from services.registry.domain.family import FamilyMember
from services.registry.service_layer.commands import NewCategory
from services.registry.tests.unit.fakes import FakeRegistryStore
from services.registry.tests.unit.test_casework_use_cases import CASEWORKER, NOW, OTHER_TOWN, REPORTER, TODAY, TOWN

DFU = DifficultyCategory.DE_FACTO_UNATTENDED_MCA_2019.value
INFANT = DifficultyCategory.INFANT_0_3_LOCAL.value
SCHOOL_AGE = ChildDetails(legal_name="王小明", sex=Sex.MALE, birth_date=date(2016, 3, 1), household_division_code=TOWN)
FATHER_IMPRISONED = FamilyMember(
    Relationship.FATHER,
    "王大强",
    status=GuardianStatus.IMPRISONED_OR_DETAINED,
    status_since=TODAY - timedelta(days=800),
    evidence="法院判决书（有期徒刑五年）",
)
MOTHER_MISSING = FamilyMember(
    Relationship.MOTHER,
    " 李梅 ",
    status=GuardianStatus.MISSING,
    status_since=TODAY - timedelta(days=400),
    evidence="失联证明",
)
GRANDMOTHER = FamilyMember(Relationship.PATERNAL_GRANDMOTHER, "张秀英", guardian=True)


@pytest.fixture(autouse=True)
def as_caseworker() -> Iterator[None]:
    with acting_as(CASEWORKER):
        yield


def child(store: FakeRegistryStore, child_id: str = "c1", details: ChildDetails = SCHOOL_AGE) -> str:
    store.add_child(TOWN, child_id, opened_at=NOW - timedelta(days=30), details=details)
    return child_id


def history(store: FakeRegistryStore) -> list[tuple[str, str, dict[str, list[object]]]]:
    return [(e.entity_type, e.action, e.changes) for e in store.town(TOWN).history]


def category_events(store: FakeRegistryStore) -> list[events.ChildCategoriesChanged]:
    return [e for e in store.events if isinstance(e, events.ChildCategoriesChanged)]


# -- family ------------------------------------------------------------------------------------------------------


def test_parents_situations_derive_a_category_and_every_change_is_kept(casework, store) -> None:
    child_id = child(store)

    grandma, categories = casework.add_family_member(child_id, GRANDMOTHER)
    assert grandma.facts == GRANDMOTHER and categories == ()
    casework.add_family_member(child_id, FATHER_IMPRISONED)
    mother, categories = casework.add_family_member(child_id, MOTHER_MISSING)

    assert categories == (DFU,) and mother.facts.name == "李梅"  # kept trimmed
    (entry,) = store.child(TOWN, child_id).categories
    assert (entry.source, entry.rule_code, entry.valid_from) == (CategorySource.RULE, "DFU-2020-125", TODAY)
    assert "父亲" in entry.reason and "母亲" in entry.reason
    assert category_events(store) == [events.ChildCategoriesChanged(child_id, (DFU,), added=(DFU,), removed=())]
    kinds = [(kind, action) for kind, action, _ in history(store)]
    assert kinds == [("family_member", "created")] * 3 + [("category", "derived")]
    assert history(store)[2][2]["name"] == [None, "李梅"]
    assert history(store)[2][2]["status"] == [None, "missing"]
    assert {e.actor for e in store.town(TOWN).history} == {CASEWORKER.user_id}


def test_a_category_derived_today_goes_when_its_rule_no_longer_applies(casework, store) -> None:
    child_id = child(store)
    casework.add_family_member(child_id, FATHER_IMPRISONED)
    mother, _ = casework.add_family_member(child_id, MOTHER_MISSING)

    back = FamilyMember(**{**MOTHER_MISSING.__dict__, "status_until": TODAY - timedelta(days=1)})
    updated, categories = casework.update_family_member(mother.member_id, back)

    assert categories == () and updated.facts.status_until == TODAY - timedelta(days=1)
    assert store.child(TOWN, child_id).categories == []  # begun today: it never was
    member_update, removed = history(store)[-2:]
    assert member_update == (
        "family_member",
        "updated",
        {"status_until": [None, (TODAY - timedelta(days=1)).isoformat()]},
    )
    assert (removed[0], removed[1], removed[2]["category"]) == ("category", "removed", [DFU, None])
    assert category_events(store)[-1].removed == (DFU,)


def test_a_category_derived_before_today_ends_yesterday(casework, store) -> None:
    child_id = child(store)
    casework.add_family_member(child_id, FATHER_IMPRISONED)
    mother, _ = casework.add_family_member(child_id, MOTHER_MISSING)
    later = TODAY + timedelta(days=10)
    casework._today = lambda: later

    categories = casework.remove_family_member(mother.member_id, "登记错误 recorded by mistake")

    assert categories == ()
    assert store.child(TOWN, child_id).family[-1].facts == FATHER_IMPRISONED
    (entry,) = store.child(TOWN, child_id).categories
    assert entry.valid_to == later - timedelta(days=1)
    member_removed, ended = history(store)[-2:]
    assert member_removed[:2] == ("family_member", "removed")
    assert member_removed[2]["reason"] == [None, "登记错误 recorded by mistake"]
    assert member_removed[2]["name"] == ["李梅", None]
    assert ended == ("category", "ended", {"valid_to": [None, (later - timedelta(days=1)).isoformat()]})


def test_guardians_names_become_match_keys(casework, store) -> None:
    child_id = child(store)
    casework.add_family_member(child_id, FamilyMember(Relationship.OTHER_RELATIVE, "王叔"))  # not a guardian
    without = store.town(TOWN).match_keys[child_id]
    casework.add_family_member(child_id, GRANDMOTHER)

    assert without and set(without) < set(store.town(TOWN).match_keys[child_id])


def test_family_changes_are_refused_for_unknown_members_and_other_towns_and_roles(casework, store) -> None:
    child(store)
    with pytest.raises(errors.NotFound):
        casework.update_family_member("nobody", GRANDMOTHER)
    with pytest.raises(errors.InvalidInput, match="status_since"):
        casework.add_family_member("c1", FamilyMember(Relationship.FATHER, "王", status=GuardianStatus.MISSING))
    with pytest.raises(errors.InvalidInput):
        casework.remove_family_member("nobody", " ")
    store.add_child(OTHER_TOWN, "elsewhere", opened_at=NOW)
    with pytest.raises(errors.NotFound):
        casework.add_family_member("elsewhere", GRANDMOTHER)
    with acting_as(REPORTER), pytest.raises(errors.PermissionDenied):
        casework.add_family_member("c1", GRANDMOTHER)
    assert store.town(TOWN).history == [] and store.events == []


def test_a_merged_childs_member_is_added_to_the_surviving_record(casework, store) -> None:
    child(store, "survivor")
    child(store, "duplicate")
    store.merge(TOWN, "duplicate", "survivor")

    member, _ = casework.add_family_member("duplicate", GRANDMOTHER)

    assert member.child_id == "survivor" and store.child(TOWN, "duplicate").family == []


# -- typed-in categories -----------------------------------------------------------------------------------------


def typed(child_id: str = "c1", category: str = "poverty", **more: object) -> NewCategory:
    return NewCategory(child_id, category, source="agency", evidence="低保证明", **more)  # type: ignore[arg-type]


def test_staff_type_in_categories_and_end_them_with_a_reason(casework, store) -> None:
    child(store)
    added, categories = casework.add_category(typed(valid_from=TODAY - timedelta(days=30)))
    assert added.current and added.recorded_by == CASEWORKER.user_id and categories == ("poverty",)
    _, categories = casework.add_category(typed(category="out_of_school"))
    assert categories == ("poverty", "out_of_school")

    ended, categories = casework.end_category(added.entry_id, TODAY - timedelta(days=1), "家庭收入已超过标准")

    assert not ended.current and categories == ("out_of_school",)
    assert [e.categories for e in category_events(store)] == [
        ("poverty",),
        ("poverty", "out_of_school"),
        ("out_of_school",),
    ]
    assert [(kind, action) for kind, action, _ in history(store)] == [("category", "created")] * 2 + [
        ("category", "ended")
    ]
    assert history(store)[0][2]["source"] == [None, "agency"]
    assert history(store)[-1][2] == {
        "valid_to": [None, (TODAY - timedelta(days=1)).isoformat()],
        "reason": [None, "家庭收入已超过标准"],
    }


def test_typed_in_categories_are_refused_when_derived_overlapping_or_ending_wrongly(casework, store) -> None:
    child(store)
    casework.add_family_member("c1", FATHER_IMPRISONED)
    casework.add_family_member("c1", MOTHER_MISSING)
    (derived,) = store.child(TOWN, "c1").categories
    with pytest.raises(errors.InvalidInput, match="derived"):
        casework.add_category(typed(category=DFU))
    with pytest.raises(errors.Conflict, match="correct the facts"):
        casework.end_category(derived.entry_id, TODAY, "不再适用")
    added, _ = casework.add_category(typed(valid_from=TODAY - timedelta(days=30)))
    with pytest.raises(errors.Conflict, match="overlapping"):
        casework.add_category(typed(valid_from=TODAY - timedelta(days=10)))
    with pytest.raises(errors.InvalidInput, match="ends before it starts"):
        casework.end_category(added.entry_id, TODAY - timedelta(days=31), "错误")
    with pytest.raises(errors.NotFound):
        casework.end_category("no-such-entry", TODAY, "错误")
    assert [e.category.value for e in store.child(TOWN, "c1").categories] == [DFU, "poverty"]


# -- the periodic derivation ---------------------------------------------------------------------------------------


def test_categories_that_move_with_the_calendar_are_derived_again_in_batches(casework, store, monkeypatch) -> None:
    baby = ChildDetails(legal_name="刘小宝", birth_date=TODAY - timedelta(days=200), household_division_code=TOWN)
    for child_id in ("a", "b", "c"):
        child(store, child_id, baby)
    child(store, "merged", baby)
    store.merge(TOWN, "merged", "a")
    monkeypatch.setattr("services.registry.service_layer.category_entries.REDERIVE_BATCH", 2)

    assert casework.rederive_categories(TOWN) == "b"
    assert casework.rederive_categories(TOWN, "b") == ""

    assert all(store.child(TOWN, i).current_categories(TODAY) == (INFANT,) for i in ("a", "b", "c"))
    assert store.child(TOWN, "merged").categories == []
    assert {e.actor for e in store.town(TOWN).history} == {"service:registry-rules"}
    three_years_on = TODAY + timedelta(days=3 * 366)
    casework._today = lambda: three_years_on
    casework.rederive_categories(TOWN, "b")
    assert store.child(TOWN, "c").categories[0].valid_to is not None
    assert category_events(store)[-1] == events.ChildCategoriesChanged("c", (), added=(), removed=(INFANT,))
