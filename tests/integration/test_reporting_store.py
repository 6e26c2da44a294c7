"""Reporting's SQLAlchemy store on PostgreSQL keeps the promises its in-memory fake makes: a report saved after
another transaction changed it is refused (ConcurrentUpdate), even when nothing else held the row meanwhile."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

import pytest

from platform_runtime import errors
from platform_runtime.db import Database
from platform_runtime.pii import FieldCipher
from services.reporting.adapters.orm import metadata
from services.reporting.adapters.unit_of_work import SqlReportStore
from services.reporting.domain.model import Channel, Report, Urgency
from services.reporting.service_layer.ports import ReportRead
from services.reporting.tests.unit import builders
from tests.support.services import migrated_database

pytestmark = pytest.mark.integration

TOWN = builders.LIANGXIANG


@pytest.fixture(scope="module")
def store(postgres_url: str) -> SqlReportStore:
    db = migrated_database(postgres_url, "reporting")
    return SqlReportStore(Database.connect(db.app_url, metadata), FieldCipher({"k1": b"k" * 32}))


def stored_report(store: SqlReportStore, report_id: str) -> None:
    now = datetime.now(UTC)
    report = Report(report_id, TOWN, "", now, builders.submission(Channel.PUBLIC_ANONYMOUS, occurred_at=now))
    report.record_triage(Urgency.NORMAL, ())
    report.flag_for_attention("a person links it")
    with store.unit_of_work(TOWN) as uow:
        uow.reports.add(
            report,
            submitted_by="u",
            reasons=(),
            crisis=False,
            reference="",
            deadlines=(),
            receipt_digest=report_id,
        )
        uow.commit()


def test_a_report_changed_by_another_transaction_after_it_was_read_is_not_saved(store: SqlReportStore) -> None:
    stored_report(store, "race-1")
    with store.unit_of_work(TOWN) as slow:
        entry = slow.reports.get("race-1")
        assert entry is not None
        gc.collect()  # nothing but the repository holds the row read: it must still be the one checked
        with store.unit_of_work(TOWN) as fast:
            winner = fast.reports.get("race-1")
            assert winner is not None
            winner.report.link("child-a", "race-1")
            fast.reports.save(winner.report)
            fast.commit()
        entry.report.link("child-b", "race-1")  # it read the report unlinked
        slow.reports.save(entry.report)
        with pytest.raises(errors.ConcurrentUpdate):
            slow.commit()
    with store.unit_of_work(TOWN) as uow:
        kept = uow.reports.get("race-1")
        assert kept is not None and kept.report.child_id == "child-a"
        assert kept.version == entry.version + 1


def test_after_a_commit_the_new_version_is_read_back(store: SqlReportStore) -> None:
    stored_report(store, "version-1")
    with store.unit_of_work(TOWN) as uow:
        entry = uow.reports.get("version-1")
        assert entry is not None
        entry.report.give_outcome_notice("已处理。")
        uow.reports.save(entry.report)
        uow.commit()
        assert uow.reports.version("version-1") == entry.version + 1


def test_a_reports_read_log_pages_oldest_first(store: SqlReportStore) -> None:
    stored_report(store, "report-read-log")
    start = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
    with store.unit_of_work(TOWN) as uow:
        for n in range(5):  # two reads share each minute: the id keeps their order
            at = start + timedelta(minutes=n // 2)
            uow.reports.record_read(ReportRead("report-read-log", at, f"user{n}", "town_admin", "review", False))
        uow.commit()

    pages, token = [], ""
    while True:
        with store.unit_of_work(TOWN) as uow:
            reads, token = uow.reports.reads("report-read-log", page_size=2, page_token=token)
        pages.append([read.actor for read in reads])
        if not token:
            break
    assert pages == [["user0", "user1"], ["user2", "user3"], ["user4"]]
    with store.unit_of_work(TOWN) as uow, pytest.raises(errors.InvalidInput):
        uow.reports.reads("report-read-log", page_token="WzEsMl0=")  # [1, 2]: not a time
