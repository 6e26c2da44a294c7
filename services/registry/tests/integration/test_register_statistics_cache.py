"""The dashboard's numbers are counted once and given again until something they count changes (real
PostgreSQL; statistics.py). That they were not counted again is seen in the statements the engine ran."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import event

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, utcnow
from platform_runtime.pii import BlindIndex, FieldCipher
from platform_runtime.settings import decode_key, decode_keyring
from platform_runtime.tenancy import acting_as
from platform_runtime.vocabulary import china_today
from services.registry.adapters.orm import ChangeRecord, metadata
from services.registry.service_layer.casework import CaseworkService
from services.registry.service_layer.commands import RegisterChild
from services.registry.service_layer.registry import RegistryService
from services.registry.service_layer.statistics import CountedStatistics, RegisterStatistics
from tests.support.infra import DISTRICT, OTHER_TENANT, PILOT_TENANT, Secrets
from tests.support.services import service_database

pytestmark = pytest.mark.integration

T = TypeVar("T")
VILLAGE = PILOT_TENANT + "201"
COUNTING_STATEMENTS = 7  # the statistics' aggregate queries


def principal(role: Role, tenant: str = PILOT_TENANT, villages: tuple[str, ...] = ()) -> Principal:
    return Principal(f"{role.value}@{tenant}", role.value, role, tenant, tenant[:6], villages=villages)


CASEWORKER = principal(Role.CASEWORKER)


class Register:
    """The registry's services on one database, with a day the test moves and the aggregate queries counted."""

    def __init__(self, database: Database, secrets: Secrets) -> None:
        self.day = china_today()
        cipher, blind_index = (
            FieldCipher(decode_keyring(secrets.pii_keys)),
            BlindIndex(decode_key(secrets.blind_index_key)),
        )
        self.registry = RegistryService(database, cipher, blind_index, today=lambda: self.day)
        self.casework = CaseworkService(database, blind_index, today=lambda: self.day)
        self.database = database
        self.aggregates = 0
        event.listen(database.engine, "before_cursor_execute", self._executed)

    def _executed(self, _connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "count(" in statement.lower():
            self.aggregates += 1

    def statistics(self, caller: Principal = CASEWORKER, town: str = "") -> tuple[RegisterStatistics, int]:
        """The numbers and how many aggregate queries giving them took."""
        before = self.aggregates
        with acting_as(caller):
            found = self.registry.register_statistics(town)
        return found, self.aggregates - before

    def as_(self, caller: Principal, work: Callable[[], T]) -> T:
        with acting_as(caller):
            return work()

    def new_child(self, name: str, **fields: Any) -> str:
        command = RegisterChild(
            legal_name=name, birth_date=date(2015, 3, 10), household_division_code=PILOT_TENANT, **fields
        )
        return self.as_(CASEWORKER, lambda: self.registry.register_child(command)).child_id


@pytest.fixture(scope="module")
def database(postgres_url: str) -> Iterator[Database]:
    with service_database(postgres_url, "registry", metadata) as database:
        yield database


@pytest.fixture(scope="module")
def register(database: Database, secrets: Secrets) -> Register:
    register = Register(database, secrets)
    for code in (PILOT_TENANT, OTHER_TENANT):
        with acting_as(principal(Role.SYSTEM, code)):
            register.registry.onboard_tenant(code, f"town {code}", DISTRICT)
    register.new_child("赵小数", residence_division_code=VILLAGE)
    return register


def test_a_second_call_with_nothing_changed_is_not_counted_again(register: Register) -> None:
    register.day += timedelta(days=1)  # whatever earlier tests kept
    first, counting = register.statistics()
    assert counting == COUNTING_STATEMENTS and first.children >= 1
    again, counting = register.statistics()
    assert counting == 0 and again == first


def test_views_that_miss_the_numbers_together_wait_for_one_count(register: Register) -> None:
    register.day += timedelta(days=1)  # nothing kept for this day yet
    start = threading.Barrier(8)
    given: list[RegisterStatistics] = []
    before = register.aggregates

    def view() -> None:
        start.wait()
        with acting_as(CASEWORKER):
            given.append(register.registry.register_statistics())

    views = [threading.Thread(target=view) for _ in range(8)]
    for thread in views:
        thread.start()
    for thread in views:
        thread.join(60)
    assert len(given) == 8 and len(set(given)) == 1
    assert register.aggregates - before == COUNTING_STATEMENTS  # one count, seven views waited for it


def test_a_change_is_counted_at_the_next_call(register: Register) -> None:
    before, _ = register.statistics()
    assert register.statistics()[1] == 0
    child_id = register.new_child("钱小改")
    after, counting = register.statistics()
    assert counting == COUNTING_STATEMENTS and after.children == before.children + 1

    register.as_(CASEWORKER, lambda: register.casework.change_case_status(child_id, "assessing", ""))
    moved, counting = register.statistics()
    assert counting == COUNTING_STATEMENTS
    assert dict(moved.by_case_status)["assessing"] == dict(after.by_case_status).get("assessing", 0) + 1


def test_another_replicas_change_is_counted_at_the_next_call(register: Register, secrets: Secrets) -> None:
    # Another process: its own engine, so only the town's latest change tells this one.
    other = Database.connect(register.database.engine.url.render_as_string(hide_password=False), metadata)
    try:
        before, _ = register.statistics()
        assert register.statistics()[1] == 0
        Register(other, secrets).new_child("孙小外")
        after, counting = register.statistics()
    finally:
        other.dispose()
    assert counting == COUNTING_STATEMENTS and after.children == before.children + 1


def test_a_change_committed_after_a_later_one_is_counted(register: Register) -> None:
    """A transaction that took its change_history id first and commits last (the survey's long batches)."""
    child_id = register.new_child("李小慢")
    with register.database.unit_of_work(PILOT_TENANT) as slow:
        slow.session.add(
            ChangeRecord(
                tenant_id=PILOT_TENANT,
                child_id=child_id,
                at=utcnow(),
                actor="survey",
                role="caseworker",
                entity_type="child",
                entity_id=child_id,
                action="updated",
                changes={"school": [None, "一中"]},
            )
        )
        slow.session.flush()  # its id is taken now, below the next change's
        register.new_child("周小快")
        register.statistics()
        assert register.statistics()[1] == 0
        slow.commit()
    assert register.statistics()[1] == COUNTING_STATEMENTS


def test_who_may_see_a_town_is_checked_before_the_numbers_kept(register: Register) -> None:
    whole_town, _ = register.statistics()
    assert register.statistics()[1] == 0
    with pytest.raises(errors.PermissionDenied):
        register.statistics(principal(Role.CASEWORKER, OTHER_TENANT), PILOT_TENANT)
    with pytest.raises(errors.NotFound):  # a district officer of another district
        register.statistics(principal(Role.DISTRICT_OFFICER, "120101001"), PILOT_TENANT)
    with pytest.raises(errors.PermissionDenied):  # reporters read no register
        register.statistics(principal(Role.MANDATED_REPORTER))
    officer, _ = register.statistics(principal(Role.DISTRICT_OFFICER), PILOT_TENANT)
    assert officer == whole_town
    # A village child director counts their villages only, never the town's numbers kept for others.
    director, counting = register.statistics(principal(Role.CHILD_DIRECTOR, villages=(VILLAGE,)))
    assert counting == COUNTING_STATEMENTS
    assert director.children == 1 < whole_town.children and dict(director.by_village) == {VILLAGE: 1}
    nowhere, _ = register.statistics(principal(Role.CHILD_DIRECTOR))
    assert nowhere.children == 0
    assert register.statistics()[0] == whole_town


def test_the_next_day_is_counted_again(register: Register) -> None:
    register.statistics()
    assert register.statistics()[1] == 0
    register.day += timedelta(days=1)
    assert register.statistics()[1] == COUNTING_STATEMENTS
    assert register.statistics()[1] == 0


def test_numbers_older_than_the_bound_are_counted_again() -> None:
    now = [0.0]
    counted = CountedStatistics(300, clock=lambda: now[0])
    numbers = RegisterStatistics(PILOT_TENANT, 1, (), (), (), (), 0, 0)
    marker = (date(2026, 12, 4), 41, 3)
    counted.put((PILOT_TENANT, None), marker, numbers)
    now[0] = 299.0
    assert counted.get((PILOT_TENANT, None), marker) == numbers
    assert counted.get((PILOT_TENANT, (VILLAGE,)), marker) is None
    assert counted.get((PILOT_TENANT, None), (date(2026, 12, 4), 42, 3)) is None
    now[0] = 300.0
    assert counted.get((PILOT_TENANT, None), marker) is None
