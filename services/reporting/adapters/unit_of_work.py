"""The store of reports on SQLAlchemy: the runtime's unit of work with the reports' repository, and the
platform-wide lookups (receipts, towns with reports). Implements `service_layer.ports.ReportStore`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from platform_runtime.db import Database, UnitOfWork
from platform_runtime.pii import FieldCipher
from services.reporting.adapters import messages
from services.reporting.adapters.orm import ReceiptRecord
from services.reporting.adapters.repository import ReportRepository
from services.reporting.domain.events import ReportEvent
from services.reporting.service_layer.ports import DuplicateReport, ReportingUnitOfWork

LOST_RACE = "the report was changed by someone else at the same time: reload it and try again"


class SqlReportingUnitOfWork(UnitOfWork, ReportingUnitOfWork):
    lost_race_message = LOST_RACE  # the runtime's unit of work raises ConcurrentUpdate with it

    def __init__(self, database: Database, cipher: FieldCipher, tenant: str) -> None:
        super().__init__(database, tenant)
        self._cipher = cipher
        self._reports: ReportRepository | None = None

    @property
    def reports(self) -> ReportRepository:
        if self._reports is None:
            raise RuntimeError("unit of work used outside its 'with' block")
        return self._reports

    def _begin(self) -> None:
        super()._begin()
        self._reports = ReportRepository(self.session, self._cipher, self.tenant)

    def _end(self) -> None:
        self._reports = None
        super()._end()

    def emit(self, event: ReportEvent) -> None:
        self.publish(messages.pending(self.tenant, event))

    def commit(self) -> None:
        try:
            super().commit()
        except IntegrityError as exc:
            raise DuplicateReport(str(exc.orig)) from exc


class SqlReportStore:
    def __init__(self, database: Database, cipher: FieldCipher) -> None:
        self._database = database
        self._cipher = cipher

    def unit_of_work(self, tenant: str) -> SqlReportingUnitOfWork:
        return SqlReportingUnitOfWork(self._database, self._cipher, tenant)

    def tenants_with_reports(self) -> list[str]:
        with self._database.platform_session() as session:
            # The receipt index is the one table that names every town with reports (it holds no report data).
            return list(session.scalars(select(ReceiptRecord.tenant_id).distinct()))

    def receipt(self, digest: str) -> tuple[str, str] | None:
        with self._database.platform_session() as session:
            found = session.get(ReceiptRecord, digest)
            return None if found is None else (found.tenant_id, found.report_id)
