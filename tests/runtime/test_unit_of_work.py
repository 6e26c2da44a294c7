"""The unit of work's contract, on the in-memory fake every service-layer test can use (and a lost race on the
SQLAlchemy one); `unpack` is typed."""

from __future__ import annotations

from pathlib import Path

import pytest
from minorprot.reporting.v1 import events_pb2
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.orm import registry
from sqlalchemy.orm.exc import StaleDataError

from platform_runtime.db import Database, add_messaging_tables
from platform_runtime.errors import ConcurrentUpdate
from platform_runtime.events import PendingEvent, to_envelope, unpack
from platform_runtime.unit_of_work import AbstractUnitOfWork, FakeUnitOfWork

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
    from platform_runtime.db import UnitOfWork

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
