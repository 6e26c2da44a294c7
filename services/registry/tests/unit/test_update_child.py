"""UpdateChild on the in-memory fakes (ADR 0018): the named fields change and are checked again as a whole, the
change history keeps what changed (the identity number only masked), the match keys and categories follow,
and the events the benefits service follows are told; stale versions, unknown fields, villages the town
does not list and a number already registered are refused, and then nothing is kept.

The same through gRPC on PostgreSQL: services/registry/tests/integration (test_casework.py,
test_concurrent_edits.py, test_villages.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta

import pytest

from platform_runtime import errors
from platform_runtime.pii import mask_identity_number
from platform_runtime.tenancy import acting_as
from services.registry.domain import events
from services.registry.domain.child import ChildDetails
from services.registry.domain.codes import DifficultyCategory, Sex
from services.registry.domain.identity import make_identity_number
from services.registry.service_layer.commands import RegisterChild, UpdateChild
from services.registry.service_layer.inputs import IDENTITY_FIELD
from services.registry.tests.unit.conftest import BLIND_INDEX, CIPHER
from services.registry.tests.unit.fakes import FakeRegistryStore
from services.registry.tests.unit.test_casework_use_cases import CASEWORKER, NOW, REPORTER, TODAY, TOWN

NUMBER = make_identity_number("110111", date(2016, 5, 12), 123)  # odd sequence: a boy
SAME_BIRTH = make_identity_number("110111", date(2016, 5, 12), 125)
VILLAGE = TOWN + "001"


def with_number(details: ChildDetails, number: str) -> ChildDetails:
    return replace(
        details,
        identity_number_cipher=CIPHER.encrypt(number, tenant=TOWN, field=IDENTITY_FIELD),
        identity_number_index=BLIND_INDEX.digest(number, field=IDENTITY_FIELD),
        identity_number_masked=mask_identity_number(number),
    )


WANG = with_number(
    ChildDetails(
        legal_name="王小明",
        sex=Sex.MALE,
        birth_date=date(2016, 5, 12),
        household_division_code=TOWN,
        residence_division_code=VILLAGE,
        school="良乡小学",
        grade="四年级",
    ),
    NUMBER,
)


@pytest.fixture(autouse=True)
def as_caseworker() -> Iterator[None]:
    with acting_as(CASEWORKER):
        yield


def child(store: FakeRegistryStore, child_id: str = "c1", details: ChildDetails = WANG) -> str:
    store.add_child(TOWN, child_id, opened_at=NOW - timedelta(days=30), details=details)
    return child_id


def update(child_id: str = "c1", expected_version: int | None = None, **values: object) -> UpdateChild:
    return UpdateChild(child_id, RegisterChild(**values), frozenset(values), expected_version)  # type: ignore[arg-type]


def test_the_named_fields_change_and_the_history_keeps_what_changed(registry, store) -> None:
    child(store)

    view = registry.update_child(update(school="良乡二小", grade="五年级"))

    assert (view.school, view.grade, view.legal_name, view.version) == ("良乡二小", "五年级", "王小明", 2)
    assert view.identity_number_masked == mask_identity_number(NUMBER)
    assert store.child(TOWN, "c1").details.school == "良乡二小"
    ((entity, action, changes),) = [(e.entity_type, e.action, e.changes) for e in store.town(TOWN).history]
    assert (entity, action) == ("child", "updated")
    assert changes == {"school": ["良乡小学", "良乡二小"], "grade": ["四年级", "五年级"]}
    assert store.town(TOWN).match_keys["c1"]  # the school is matched on: the keys are stored again
    assert store.events == []  # no move, no new birth date, no new number


def test_a_move_and_a_corrected_birth_date_are_told_and_the_categories_follow(registry, store) -> None:
    unnumbered = ChildDetails(
        legal_name="刘小宝", birth_date=TODAY - timedelta(days=5 * 365), household_division_code=TOWN
    )
    child(store, details=unnumbered)

    view = registry.update_child(
        update(legal_name="刘小宝", residence_division_code=VILLAGE, birth_date=TODAY - timedelta(days=200))
    )

    infant = DifficultyCategory.INFANT_0_3_LOCAL.value
    assert view.categories == (infant,)
    moved, corrected, categories = store.events
    assert moved == events.ChildMoved("c1", "", VILLAGE, TOWN, TOWN, TODAY)
    assert corrected == events.ChildBirthDateCorrected("c1", TODAY - timedelta(days=200))
    assert categories == events.ChildCategoriesChanged("c1", (infant,), added=(infant,), removed=())
    kinds = [(e.entity_type, e.action) for e in store.town(TOWN).history]
    assert kinds == [("child", "updated"), ("category", "derived")]


def test_a_new_identity_number_is_kept_encrypted_and_told_by_its_key(registry, store) -> None:
    child(store)
    other = SAME_BIRTH

    view = registry.update_child(update(identity_number=other))

    assert view.identity_number_masked == mask_identity_number(other)
    stored = store.child(TOWN, "c1").details
    assert CIPHER.decrypt(stored.identity_number_cipher or "", tenant=TOWN, field=IDENTITY_FIELD) == other
    ((changes,),) = [[e.changes] for e in store.town(TOWN).history]
    assert changes == {"identity_number_masked": [mask_identity_number(NUMBER), mask_identity_number(other)]}
    (told,) = store.events
    assert isinstance(told, events.ChildIdentityChanged) and told.person_key


def test_a_number_already_registered_a_stale_version_and_unknown_fields_are_refused(registry, store) -> None:
    child(store)
    child(store, "c2", with_number(replace(WANG, legal_name="王小红"), SAME_BIRTH))

    with pytest.raises(errors.Conflict, match="already registered"):
        registry.update_child(update(identity_number=SAME_BIRTH))
    with pytest.raises(errors.ConcurrentUpdate, match="reload"):
        registry.update_child(update(expected_version=2, school="良乡二小"))
    with pytest.raises(errors.InvalidInput, match="update_mask"):
        registry.update_child(UpdateChild("c1", RegisterChild(), frozenset({"version"})))
    with pytest.raises(errors.InvalidInput, match="birth date differs"):
        registry.update_child(update(birth_date=date(2016, 5, 13)))  # not the identity number's
    with pytest.raises(errors.NotFound):
        registry.update_child(update("nobody", school="x"))
    with acting_as(REPORTER), pytest.raises(errors.PermissionDenied):
        registry.update_child(update(school="x"))
    assert store.town(TOWN).history == [] and store.events == [] and store.child(TOWN, "c1").details == WANG


def test_a_village_the_town_does_not_list_is_refused(registry, store) -> None:
    child(store)
    store.town(TOWN).villages = frozenset({VILLAGE})

    with pytest.raises(errors.InvalidInput, match="not a village"):
        registry.update_child(update(residence_division_code=TOWN + "002"))
    assert registry.update_child(update(residence_division_code=TOWN)).residence_division_code == TOWN
