"""The unit of work's contract, on the in-memory fake every service-layer test can use (and a lost race on the
SQLAlchemy one); `unpack` is typed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from minorprot.reporting.v1 import events_pb2
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import registry
from sqlalchemy.orm.exc import StaleDataError

from platform_runtime.db import Database, UnitOfWork, add_messaging_tables
from platform_runtime.errors import ConcurrentUpdate
from platform_runtime.events import PendingEvent, to_envelope, unpack
from platform_runtime.unit_of_work import AbstractUnitOfWork, FakeUnitOfWork
from tests.support.infra import fresh_database

TOWN = "110111008"


def crisis(report_id: str = "r1", tenant: str = TOWN) -> PendingEvent:
    return PendingEvent("reporting.report", tenant, "report", report_id, events_pb2.CrisisDeclared(report_id=report_id))


def test_committed_events_are_recorded_in_order_and_shared_outbox_collects_every_unit() -> None:
    outbox: list[PendingEvent] = []
    first, second = FakeUnitOfWork(TOWN, outbox=outbox), FakeUnitOfWork(TOWN, outbox=outbox)
    with first as uow:
        uow.publish(crisis("r1"))
        uow.publish(crisis("r2"))
        assert [e.aggregate_id for e in uow.events] == ["r1", "r2"]
        uow.commit()
        assert uow.events == ()
    with second as uow:
        uow.publish(crisis("r3"))
        uow.commit()
    assert [e.aggregate_id for e in first.committed] == ["r1", "r2"]
    assert first.commits == 1 and first.rollbacks == 0
    assert [e.aggregate_id for e in outbox] == ["r1", "r2", "r3"]


def test_leaving_without_commit_throws_the_events_away() -> None:
    with FakeUnitOfWork(TOWN) as uow:
        uow.publish(crisis())
    assert uow.committed == [] and uow.commits == 0
    assert uow.rollbacks == 1
    assert uow.events == ()


def test_an_error_inside_rolls_back_and_propagates() -> None:
    unit = FakeUnitOfWork(TOWN)
    with pytest.raises(RuntimeError, match="boom"), unit as uow:
        uow.publish(crisis())
        raise RuntimeError("boom")
    assert unit.committed == [] and unit.rollbacks == 1 and not unit.active


def test_an_explicit_rollback_drops_only_what_was_not_committed() -> None:
    with FakeUnitOfWork(TOWN) as uow:
        uow.publish(crisis("kept"))
        uow.commit()
        uow.publish(crisis("dropped"))
        uow.rollback()
        uow.commit()
    assert [e.aggregate_id for e in uow.committed] == ["kept"]
    assert uow.commits == 2 and uow.rollbacks == 1


def test_an_event_of_another_tenant_is_refused() -> None:
    with FakeUnitOfWork(TOWN) as uow, pytest.raises(ValueError, match="tenant"):
        uow.publish(crisis(tenant="110111009"))


def test_a_unit_of_work_needs_a_tenant_or_a_district() -> None:
    with pytest.raises(ValueError):
        FakeUnitOfWork("")
    assert FakeUnitOfWork("", district="110111").district == "110111"


def test_commit_outside_with_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        FakeUnitOfWork(TOWN).commit()


def test_a_failing_apply_keeps_nothing() -> None:
    class LostRace(FakeUnitOfWork):
        def _apply(self) -> None:
            raise RuntimeError("version changed")

    with LostRace(TOWN) as uow:
        uow.publish(crisis())
        with pytest.raises(RuntimeError):
            uow.commit()
    assert uow.committed == [] and uow.commits == 0


def test_the_sqlalchemy_unit_of_work_is_one() -> None:
    assert issubclass(UnitOfWork, AbstractUnitOfWork)


def test_unpack_returns_the_type_asked_for() -> None:
    envelope = to_envelope(crisis("r9"), "e1")
    event = unpack(envelope, events_pb2.CrisisDeclared)
    assert event.report_id == "r9"  # typed: no isinstance needed
    with pytest.raises(ValueError, match="CrisisDeclared"):
        unpack(envelope, events_pb2.ReportLinked)


class _StaleAtCommit(FakeUnitOfWork):
    """A store that finds, at commit, that a row it read was changed by another transaction."""

    lost_race_message = "the thing was changed meanwhile"

    def _apply(self) -> None:
        raise StaleDataError("UPDATE statement on table 'things' expected to update 1 row(s); 0 were matched.")

    def _is_lost_race(self, error: BaseException) -> bool:
        return isinstance(error, StaleDataError)


def test_a_lost_race_at_commit_is_a_concurrent_update_and_keeps_nothing() -> None:
    with _StaleAtCommit(TOWN) as uow:
        uow.publish(crisis())
        with pytest.raises(ConcurrentUpdate, match="the thing was changed meanwhile") as raised:
            uow.commit()
    assert isinstance(raised.value.__cause__, StaleDataError)
    assert uow.committed == [] and uow.commits == 0


def test_a_lost_race_found_inside_the_block_is_a_concurrent_update_too() -> None:
    unit = _StaleAtCommit(TOWN)
    with pytest.raises(ConcurrentUpdate), unit:
        raise StaleDataError("found by a flush before a query")
    assert not unit.active
    # Errors that are not lost races pass through unchanged.
    with pytest.raises(RuntimeError, match="boom"), _StaleAtCommit(TOWN):
        raise RuntimeError("boom")


def test_the_sqlalchemy_unit_of_work_turns_a_lost_version_race_into_concurrent_update(tmp_path: Path) -> None:
    metadata = MetaData()
    add_messaging_tables(metadata)
    things = Table(
        "things", metadata, Column("id", String, primary_key=True), Column("name", String), Column("version", Integer)
    )

    class Thing:
        id: str
        name: str
        version: int

    registry().map_imperatively(Thing, things, version_id_col=things.c.version)
    database = Database.connect(f"sqlite:///{tmp_path / 'race.db'}", metadata)
    metadata.create_all(database.engine)
    with database.engine.begin() as connection:
        connection.execute(things.insert().values(id="t1", name="first", version=1))
    try:
        with database.unit_of_work(TOWN) as slow:
            read = slow.session.get(Thing, "t1")
            assert read is not None
            with database.unit_of_work(TOWN) as fast:  # reads the same version and commits first
                winner = fast.session.get(Thing, "t1")
                assert winner is not None
                winner.name = "fast"
                fast.commit()
            read.name = "slow"
            slow.publish(crisis())
            with pytest.raises(ConcurrentUpdate, match="changed by someone else"):
                slow.commit()
        with database.engine.connect() as connection:
            assert connection.execute(select(things.c.name, things.c.version)).one() == ("fast", 2)
            assert connection.execute(select(database.outbox)).all() == []  # the loser's event went with it
    finally:
        database.dispose()


# --- lost races PostgreSQL reports as errors: a deadlock, a serialization failure ----------------------------


def _counters() -> tuple[MetaData, Table]:
    metadata = MetaData()
    add_messaging_tables(metadata)
    counters = Table("counters", metadata, Column("id", String, primary_key=True), Column("n", Integer))
    return metadata, counters


@pytest.fixture(scope="module")
def counters_url(postgres_url: str) -> str:
    """A database of its own holding the counters table (as its owner: no row-level security on it)."""
    url = fresh_database(postgres_url, "uow").owner_url
    engine = create_engine(url)
    _counters()[0].create_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def counters(counters_url: str) -> Iterator[tuple[Database, Table]]:
    metadata, table = _counters()
    database = Database.connect(counters_url, metadata)
    with database.engine.begin() as connection:
        connection.execute(table.delete())
        connection.execute(database.outbox.delete())
        connection.execute(table.insert(), [{"id": "a", "n": 0}, {"id": "b", "n": 0}])
    yield database, table
    database.dispose()


def _add_one(uow: AbstractUnitOfWork, table: Table, row_id: str) -> None:
    assert isinstance(uow, UnitOfWork)
    uow.session.execute(update(table).where(table.c.id == row_id).values(n=table.c.n + 1))


@pytest.mark.integration
def test_the_loser_of_a_deadlock_is_told_concurrent_update_and_keeps_nothing(counters) -> None:
    """Two transactions each lock one row and then want the other's: PostgreSQL ends one (40P01)."""
    database, table = counters
    both_hold_one = threading.Barrier(2)
    outcome: dict[str, BaseException | None] = {}

    def lock_in_order(name: str, first: str, second: str) -> None:
        try:
            with database.unit_of_work(TOWN) as uow:
                _add_one(uow, table, first)
                both_hold_one.wait(timeout=10)
                _add_one(uow, table, second)  # one of the two waits for the other: a deadlock
                uow.publish(crisis(name))
                uow.commit()
            outcome[name] = None
        except Exception as error:
            outcome[name] = error

    threads = [
        threading.Thread(target=lock_in_order, args=("ab", "a", "b")),
        threading.Thread(target=lock_in_order, args=("ba", "b", "a")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    errors = [error for error in outcome.values() if error is not None]
    assert len(outcome) == 2 and len(errors) == 1, outcome
    assert isinstance(errors[0], ConcurrentUpdate), repr(errors[0])
    assert "changed by someone else" in str(errors[0])
    assert getattr(getattr(errors[0].__cause__, "orig", None), "sqlstate", None) == "40P01"
    with database.engine.connect() as connection:
        assert sorted(connection.execute(select(table.c.n)).scalars()) == [1, 1]  # the winner's two, once each
        assert len(connection.execute(select(database.outbox)).all()) == 1  # the loser's event went with it


@pytest.mark.integration
def test_a_serialization_failure_is_a_concurrent_update_too(counters) -> None:
    database, table = counters
    serializable = Database(create_engine(database.engine.url, isolation_level="REPEATABLE READ"), database.metadata)
    try:
        with pytest.raises(ConcurrentUpdate) as raised, serializable.unit_of_work(TOWN) as slow:
            assert slow.session.execute(select(table.c.n).where(table.c.id == "a")).scalar() == 0  # its snapshot
            with database.unit_of_work(TOWN) as fast:
                _add_one(fast, table, "a")
                fast.commit()
            _add_one(slow, table, "a")  # the row moved after the snapshot (40001)
        assert getattr(getattr(raised.value.__cause__, "orig", None), "sqlstate", None) == "40001"
    finally:
        serializable.dispose()
    with database.engine.connect() as connection:
        assert connection.execute(select(table.c.n).where(table.c.id == "a")).scalar() == 1


@pytest.mark.integration
def test_other_database_errors_are_not_lost_races(counters) -> None:
    database, table = counters
    with pytest.raises(IntegrityError), database.unit_of_work(TOWN) as uow:
        uow.session.execute(table.insert().values(id="a", n=5))  # a key taken: not a race to retry
