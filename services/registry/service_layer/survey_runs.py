"""A survey import's run: its record (running, finished, stopped, with its counts), one real import of a
file at a time (a unique running mark; on PostgreSQL an advisory lock held while it runs), and what
earlier imports of the file did.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import select, text, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from platform_runtime import errors
from platform_runtime.auth import Principal
from platform_runtime.db import Database, new_id, utcnow
from platform_runtime.pii import BlindIndex
from platform_runtime.vocabulary import china_today
from services.registry.adapters.orm import TenantRecord
from services.registry.adapters.survey_orm import SurveyImportRecord, SurveyImportRowRecord
from services.registry.service_layer.casework import CaseworkService
from services.registry.service_layer.registry import RegistryService
from services.registry.service_layer.survey_results import ImportOptions, ImportStatus, RowOutcome

log = logging.getLogger(__name__)


# A running import that has written nothing for this long is taken to have stopped (SQLite; PostgreSQL
# knows at once, from the advisory lock).
STALE_AFTER = timedelta(minutes=2)


@dataclass
class Run:
    """One import at work: who, which file, what earlier imports of the file did."""

    caller: Principal
    import_id: str
    sha256: str
    options: ImportOptions
    imported_before: dict[int, str]  # row number -> child, for this file's rows registered or found before
    counts: Counter[RowOutcome] = field(default_factory=Counter)


class SurveyUseCases:
    """What the SurveyService's parts (survey_import.py, survey_history.py, survey_export.py) share."""

    def __init__(
        self,
        registry: RegistryService,
        casework: CaseworkService,
        database: Database,
        blind_index: BlindIndex,
        *,
        today: Callable[[], date] = china_today,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._registry = registry
        self._casework = casework
        self._database = database
        self._blind_index = blind_index
        self._today = today
        self._now = now


class SurveyRuns(SurveyUseCases):
    """One real import of a file at a time, and each import's record: running, finished or stopped."""

    @contextmanager
    def _file_lock(self, caller: Principal, sha256: str, dry_run: bool) -> Iterator[bool | None]:
        """On PostgreSQL, a real import holds an advisory lock on (town, file) while it runs, on a
        connection of its own outside any transaction: a second import of the file is refused at once,
        and the lock goes with the connection when the process dies. Yields True when held, None when
        there is none to take (a dry run; SQLite, where `_start` goes by the last progress instead)."""
        if dry_run or self._database.engine.dialect.name != "postgresql":
            yield None
            return
        key = int.from_bytes(
            hashlib.sha256(f"survey:{caller.tenant}:{sha256}".encode()).digest()[:8], "big", signed=True
        )
        with self._database.engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            if not connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}):
                raise self._busy(caller, sha256)
            try:
                yield True
            finally:
                try:
                    connection.scalar(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                except SQLAlchemyError:  # the connection broke: the lock went with it
                    log.warning("survey import lock of %s: the connection was lost", caller.tenant)

    def _busy(self, caller: Principal, sha256: str) -> errors.Conflict:
        with self._database.unit_of_work(caller.tenant) as uow:
            running = uow.session.scalars(
                select(SurveyImportRecord).where(
                    SurveyImportRecord.tenant_id == caller.tenant, SurveyImportRecord.running_file == sha256
                )
            ).first()
            return _busy(running)

    def _start(self, caller: Principal, sha256: str, options: ImportOptions, holds_lock: bool | None) -> Run:
        """The import's record, marked running (a real import: unique per town and file), and what earlier
        imports of the file did. A running import of the same file refuses this one, unless it has stopped:
        its process died (PostgreSQL: the advisory lock was free) or it has made no progress for STALE_AFTER."""
        with self._database.unit_of_work(caller.tenant) as uow:
            town_name(uow.session, caller)
            now = self._now()
            if not options.dry_run:
                running = uow.session.scalars(
                    select(SurveyImportRecord).where(
                        SurveyImportRecord.tenant_id == caller.tenant, SurveyImportRecord.running_file == sha256
                    )
                ).first()
                if running is not None:
                    if not holds_lock and not stale(running, now):
                        raise _busy(running)
                    running.status, running.running_file = ImportStatus.STOPPED.value, None
                    uow.session.flush()
            import_id = new_id()
            uow.session.add(
                SurveyImportRecord(
                    id=import_id,
                    tenant_id=caller.tenant,
                    file_sha256=sha256,
                    file_name=options.file_name[:200],
                    imported_by=caller.user_id,
                    started_at=now,
                    dry_run=options.dry_run,
                    status=ImportStatus.RUNNING.value,
                    running_file=None if options.dry_run else sha256,
                    heartbeat_at=now,
                    rows=0,
                    accepted=0,
                    unchanged=0,
                    rejected=0,
                    possible_duplicates=0,
                )
            )
            imported_before = _imported_rows(uow.session, caller.tenant, sha256)
            try:
                uow.commit()
            except IntegrityError:  # another import of the file started at the same moment
                raise _busy(None) from None
        return Run(caller, import_id, sha256, options, imported_before)

    def _set_running(self, session: Session, run: Run, **values: object) -> bool:
        """Update the import's record if it is still running (False: it is not)."""
        result = session.execute(
            update(SurveyImportRecord)
            .where(SurveyImportRecord.id == run.import_id, SurveyImportRecord.status == ImportStatus.RUNNING.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return cast(CursorResult[Any], result).rowcount == 1

    def _finish(self, run: Run) -> None:
        with self._database.unit_of_work(run.caller.tenant) as uow:
            finished = self._set_running(
                uow.session,
                run,
                status=ImportStatus.FINISHED.value,
                running_file=None,
                finished_at=self._now(),
                **count_columns(run.counts),
            )
            if not finished:
                raise errors.Conflict("this import was stopped and another import of the same file took it over")
            uow.commit()

    def _stop(self, run: Run) -> None:
        try:
            with self._database.unit_of_work(run.caller.tenant) as uow:
                self._set_running(uow.session, run, status=ImportStatus.STOPPED.value, running_file=None)
                uow.commit()
        except SQLAlchemyError:  # the database is gone too: the next import of the file finds it stale
            log.exception("survey import %s: could not mark it stopped", run.import_id)


def town_name(session: Session, caller: Principal) -> str:
    """The name of the caller's town."""
    town = session.get(TenantRecord, caller.tenant)
    if town is None:
        raise errors.Conflict(f"town {caller.tenant} is not onboarded")
    return town.name


def _imported_rows(session: Session, tenant: str, sha256: str) -> dict[int, str]:
    """Row number -> child id, for the rows of this same file registered or found by earlier real imports."""
    found = session.execute(
        select(SurveyImportRowRecord.row_number, SurveyImportRowRecord.child_id)
        .join(SurveyImportRecord, SurveyImportRecord.id == SurveyImportRowRecord.import_id)
        .where(
            SurveyImportRecord.tenant_id == tenant,
            SurveyImportRecord.file_sha256 == sha256,
            SurveyImportRecord.dry_run.is_(False),
            SurveyImportRowRecord.tenant_id == tenant,
            SurveyImportRowRecord.outcome.in_([RowOutcome.ACCEPTED.value, RowOutcome.UNCHANGED.value]),
            SurveyImportRowRecord.child_id != "",
        )
    )
    return {number: child_id for number, child_id in found}


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite gives back naive UTC times


def stale(record: SurveyImportRecord, now: datetime) -> bool:
    """A running import that has recorded nothing for STALE_AFTER: its process is taken to have died."""
    last = record.heartbeat_at or record.started_at
    return aware(now) - aware(last) > STALE_AFTER


def _busy(running: SurveyImportRecord | None) -> errors.Conflict:
    if running is None:
        return errors.Conflict("this file is already being imported: wait until it finishes (ListSurveyImports)")
    return errors.Conflict(
        f"this file is already being imported (import {running.id}, started {aware(running.started_at):%Y-%m-%d %H:%M} "
        f"UTC by {running.imported_by}, {running.rows} rows done): wait until it finishes (ListSurveyImports)"
    )


def count_columns(counts: Counter[RowOutcome]) -> dict[str, int]:
    return {
        "rows": sum(counts.values()),
        "accepted": counts[RowOutcome.ACCEPTED],
        "unchanged": counts[RowOutcome.UNCHANGED],
        "rejected": counts[RowOutcome.REJECTED],
        "possible_duplicates": counts[RowOutcome.POSSIBLE_DUPLICATE],
    }
