"""The survey's history: the town's imports and dry runs, and each one's row outcomes."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select

from platform_runtime import errors
from platform_runtime.auth import Principal
from platform_runtime.tenancy import require_role
from services.registry.adapters import village_scope
from services.registry.adapters.survey_orm import SurveyImportRecord, SurveyImportRowRecord
from services.registry.service_layer.access import READER_ROLES
from services.registry.service_layer.survey_results import ImportStatus, ImportView, RowOutcome, RowResult, row_problem
from services.registry.service_layer.survey_runs import SurveyUseCases, aware, stale

DEFAULT_PAGE, MAX_PAGE = 50, 500


DEFAULT_ROWS_PAGE, MAX_ROWS_PAGE = 1000, 10_000


class SurveyHistory(SurveyUseCases):
    def list_imports(self, page_size: int = 0, page_token: str = "") -> tuple[list[ImportView], str]:
        """The town's imports and dry runs, newest first."""
        caller = require_role(*READER_ROLES)
        size = min(max(page_size or DEFAULT_PAGE, 1), MAX_PAGE)
        with self._database.unit_of_work(caller.tenant) as uow:
            query = select(SurveyImportRecord).where(SurveyImportRecord.tenant_id == caller.tenant, *_theirs(caller))
            if page_token:
                after = uow.session.get(SurveyImportRecord, page_token)
                if after is None or after.tenant_id != caller.tenant:
                    raise errors.InvalidInput("is not a token this list gave", "page_token")
                query = query.where(
                    or_(
                        SurveyImportRecord.started_at < after.started_at,
                        and_(SurveyImportRecord.started_at == after.started_at, SurveyImportRecord.id < after.id),
                    )
                )
            records = list(
                uow.session.scalars(
                    query.order_by(SurveyImportRecord.started_at.desc(), SurveyImportRecord.id.desc()).limit(size + 1)
                )
            )
            now = self._now()
            views = [_import_view(record, now) for record in records[:size]]
        return views, (views[-1].import_id if len(records) > size else "")

    def import_rows(
        self, import_id: str, outcomes: Collection[RowOutcome] = (), page_size: int = 0, page_token: str = ""
    ) -> tuple[ImportView, list[RowResult], str]:
        """One import's (or dry run's) row outcomes by row number; only those with `outcomes` if given."""
        caller = require_role(*READER_ROLES)
        size = min(max(page_size or DEFAULT_ROWS_PAGE, 1), MAX_ROWS_PAGE)
        if page_token and not page_token.isdigit():
            raise errors.InvalidInput("is not a token this list gave", "page_token")
        with self._database.unit_of_work(caller.tenant) as uow:
            record = uow.session.get(SurveyImportRecord, import_id) if import_id else None
            # Another town's import is reported as absent, not forbidden: its existence is not disclosed.
            if record is None or record.tenant_id != caller.tenant or not _is_theirs(caller, record):
                raise errors.NotFound("no such survey import in this town")
            query = select(SurveyImportRowRecord).where(
                SurveyImportRowRecord.tenant_id == caller.tenant,
                SurveyImportRowRecord.import_id == record.id,
                SurveyImportRowRecord.row_number > int(page_token or 0),
            )
            if outcomes:
                query = query.where(SurveyImportRowRecord.outcome.in_([o.value for o in outcomes]))
            rows = list(uow.session.scalars(query.order_by(SurveyImportRowRecord.row_number).limit(size + 1)))
            view = _import_view(record, self._now())
            results = [
                RowResult(
                    r.row_number,
                    RowOutcome(r.outcome),
                    tuple(row_problem(p["field"], p["reason"]) for p in r.problems),
                    r.child_id,
                    r.note,
                )
                for r in rows[:size]
            ]
        return view, results, (str(results[-1].row_number) if len(rows) > size else "")


def _theirs(caller: Principal) -> list[ColumnElement[bool]]:
    """A village child director sees their own imports only: others' rows name children of other villages."""
    return [] if village_scope.villages_of(caller) is None else [SurveyImportRecord.imported_by == caller.user_id]


def _is_theirs(caller: Principal, record: SurveyImportRecord) -> bool:
    return village_scope.villages_of(caller) is None or record.imported_by == caller.user_id


def _import_view(record: SurveyImportRecord, now: datetime) -> ImportView:
    status = ImportStatus(record.status)
    if status is ImportStatus.RUNNING and stale(record, now):
        status = ImportStatus.STOPPED  # its process died; the next import of the file takes it over
    return ImportView(
        import_id=record.id,
        file_name=record.file_name,
        file_sha256=record.file_sha256,
        imported_by=record.imported_by,
        started_at=aware(record.started_at),
        finished_at=aware(record.finished_at) if record.finished_at else None,
        dry_run=record.dry_run,
        status=status,
        rows=record.rows,
        accepted=record.accepted,
        unchanged=record.unchanged,
        rejected=record.rejected,
        possible_duplicates=record.possible_duplicates,
    )
