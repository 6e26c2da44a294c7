"""The unit of work's contract, on the in-memory fake every service-layer test can use; `unpack` is typed."""

from __future__ import annotations

import pytest
from minorprot.reporting.v1 import events_pb2

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
