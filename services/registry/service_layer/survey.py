"""The survey (排查摸底): the template, the import of a town's spreadsheet, its history, and the register export.

An import goes through the file in batches of rows, each batch in one transaction; each row:
1. its cells are read (survey_rows.py), then the use cases' own rules are applied: RegisterChild's
   (RegistryService.validate), and AddFamilyMember's and AddCategory's for its parents, guardian and
   categories (check_member, check_category), so there is one place for them and a row is taken whole
   or not at all;
2. a row repeating an earlier row of the file (the same identity number; or, where a number is missing,
   the same name, sex and birth date) is rejected;
3. a row already in the register is UNCHANGED: the same identity number (blind index), or the same row
   of the same file (SHA-256) imported before. An import never changes an existing record;
4. a row that MatchChild scores at or above the matching threshold against a register child is held
   back as a POSSIBLE_DUPLICATE for a person to decide. The children registered by imports of this same
   file are left out of these matches, so that a dry run, the real import and an import finished after
   an interruption give the same outcomes;
5. the rest is ACCEPTED and, unless it is a dry run, recorded by the use cases' own work inside the
   batch's transaction: RegistryService.record_children, with the parents and guardian and each category
   (source "survey"). It does what RegisterChild, AddFamilyMember and AddCategory do (the latter two by
   casework.record_family_member and casework.record_category), so a child gets the same records, change history,
   derived categories, match keys and events (ChildRegistered, CaseFileOpened, ChildCategoriesChanged)
   as through the API, without a query or a transaction of its own.
A batch's children and the outcomes of its rows commit together, so an import stopped anywhere (an error,
a cancelled call, a crash) leaves whole children, each with its row's outcome: importing the file again
finishes it, each row once. Every import, dry runs too, is kept with the outcome of each row
(ListSurveyImports, ListSurveyImportRows). Two real imports of the same file at once are refused
(FAILED_PRECONDITION): a unique "running" mark on the import (SQLite and PostgreSQL), and on PostgreSQL
an advisory lock held while the import runs, so an import whose process died is taken over at once
(on SQLite, once it has made no progress for STALE_AFTER).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Select, String, and_, any_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from platform_runtime import errors
from platform_runtime.auth import Principal
from platform_runtime.db import Database, new_id, utcnow
from platform_runtime.pii import BlindIndex
from platform_runtime.tenancy import require_role
from services.registry.adapters.orm import ChildMatchKey, ChildRecord, FamilyMemberRecord, TenantRecord
from services.registry.adapters.spreadsheets import Cell, Sheet, read_table, write_workbook
from services.registry.adapters.survey_orm import SurveyImportRecord, SurveyImportRowRecord
from services.registry.domain import matching
from services.registry.domain.codes import (
    CategorySource,
    DifficultyCategory,
    DisabilityGrade,
    DisabilityType,
    Ethnicity,
    Relationship,
)
from services.registry.domain.family import FamilyMember, check_member
from services.registry.domain.matching import DEFAULT_THRESHOLD, RankedCandidate, normalize_name
from services.registry.service_layer import survey_rows, villages
from services.registry.service_layer.casework import (
    CaseworkService,
    CheckedCategory,
    check_category,
)
from services.registry.service_layer.child_views import child_views
from services.registry.service_layer.children import DIVISION_FIELDS, ChildRefused, NewChild
from services.registry.service_layer.match_keys import PARENT_RELATIONSHIPS, RECORD_FACT_COLUMNS, record_facts
from services.registry.service_layer.matching import CANDIDATE_MIN_SCORE, MAX_CANDIDATES_SCORED, SELECTIVE_KEY_PREFIXES
from services.registry.service_layer.registry import RegistryService
from services.registry.service_layer.scope import (
    CASEWORK_ROLES,
    IDENTITY_FIELD,
    READER_ROLES,
    BulkScope,
    Scope,
    require_purpose,
)
from services.registry.service_layer.survey_rows import COLUMNS, DATA_SHEET, CheckedRow
from services.registry.service_layer.views import ChildView, MatchProbe, NewCategory

log = logging.getLogger(__name__)

DEFAULT_PROGRESS_EVERY = 1000
PROGRESS_EVERY_RANGE = (50, 10_000)
BATCH_ROWS = 500  # rows per transaction at most (a progress message may take several)
ATTEMPTS = 3  # a batch meeting a number registered meanwhile by someone else is done again, then gives up
# A running import that has written nothing for this long is taken to have stopped (SQLite; PostgreSQL
# knows at once, from the advisory lock).
STALE_AFTER = timedelta(minutes=2)
DEFAULT_PAGE, MAX_PAGE = 50, 500
DEFAULT_ROWS_PAGE, MAX_ROWS_PAGE = 1000, 10_000
UNCATEGORISED = "未分类"
SURVEY = CategorySource.SURVEY.value
# The column each family member of a row comes from, for its problems.
_MEMBER_COLUMNS = {Relationship.FATHER: "father_name", Relationship.MOTHER: "mother_name"}
# AddCategory's field names, as the survey's columns.
_CATEGORY_COLUMNS = {"evidence": "category_evidence", "evidence_document": "category_evidence"}


class RowOutcome(StrEnum):
    ACCEPTED = "accepted"  # registered (dry run: would be)
    UNCHANGED = "unchanged"
    REJECTED = "rejected"
    POSSIBLE_DUPLICATE = "possible_duplicate"


class ImportStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"  # before the end: importing the file again finishes it


@dataclass(frozen=True)
class ImportOptions:
    file_name: str
    dry_run: bool = False
    progress_every: int = DEFAULT_PROGRESS_EVERY
    register_possible_duplicates: bool = False


@dataclass(frozen=True)
class RowProblem:
    column: str  # the template's label, e.g. 公民身份号码
    field: str
    reason: str


@dataclass(frozen=True)
class RowResult:
    row_number: int
    outcome: RowOutcome
    problems: tuple[RowProblem, ...] = ()
    child_id: str = ""
    note: str = ""


@dataclass(frozen=True)
class ImportSummary:
    import_id: str
    file_sha256: str
    dry_run: bool
    rows: int
    accepted: int
    unchanged: int
    rejected: int
    possible_duplicates: int


@dataclass(frozen=True)
class ImportProgress:
    rows_done: int
    rows_total: int  # as far as known; exact in the last message
    rows: tuple[RowResult, ...]
    summary: ImportSummary | None = None


@dataclass(frozen=True)
class ImportView:
    """One import (or dry run) of a file, as ListSurveyImports shows it."""

    import_id: str
    file_name: str
    file_sha256: str
    imported_by: str
    started_at: datetime
    finished_at: datetime | None
    dry_run: bool
    status: ImportStatus
    rows: int
    accepted: int
    unchanged: int
    rejected: int
    possible_duplicates: int


@dataclass(frozen=True)
class _Row:
    number: int
    checked: CheckedRow
    identity_number: str = ""  # normalised, once the record's rules accepted it
    categories: tuple[CheckedCategory, ...] = ()  # as AddCategory accepted them


@dataclass
class _Run:
    """One import at work: who, which file, what earlier imports of the file did."""

    caller: Principal
    import_id: str
    sha256: str
    options: ImportOptions
    imported_before: dict[int, str]  # row number -> child, for this file's rows registered or found before
    counts: Counter[RowOutcome] = field(default_factory=Counter)


class _RowRefused(Exception):
    """Recording an accepted row failed on the use cases' rules: the batch is done again with it rejected."""

    def __init__(self, result: RowResult) -> None:
        super().__init__(result.row_number)
        self.result = result


class SurveyService:
    def __init__(
        self,
        registry: RegistryService,
        casework: CaseworkService,
        database: Database,
        blind_index: BlindIndex,
        *,
        today: Callable[[], date] = date.today,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._registry = registry
        self._casework = casework
        self._database = database
        self._blind_index = blind_index
        self._today = today
        self._now = now

    # -- template -------------------------------------------------------------------------------------------

    def template(self) -> tuple[str, bytes]:
        """The .xlsx template for the caller's town: the data sheet, and the instructions with every code."""
        caller = require_role(*CASEWORK_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            town = _town(uow.session, caller)
            villages = uow.session.scalars(
                select(ChildRecord.residence_division_code)
                .where(ChildRecord.tenant_id == caller.tenant, func.length(ChildRecord.residence_division_code) == 12)
                .distinct()
                .order_by(ChildRecord.residence_division_code)
            ).all()
        instructions: list[Sequence[Cell]] = [
            (column.header, "", "必填" if column.required else "", column.note) for column in COLUMNS
        ]
        for column in COLUMNS:
            codes = [c for c in column.codes or () if not (isinstance(c, DifficultyCategory) and c.is_derived)]
            instructions += [(column.header, c.value, c.label, "") for c in codes]
        division = next(c.header for c in COLUMNS if c.field == "residence_division_code")
        instructions += [
            (division, caller.tenant, town, f"本乡镇(街道)，也可写作 {caller.tenant}000"),
            *((division, code, "", "已登记儿童所在村(居)委会") for code in villages),
            (division, f"{caller.tenant}001-{caller.tenant}399", "", "村(居)委会：001-199 居委会，200-399 村委会"),
        ]
        sheets = [
            Sheet(
                DATA_SHEET,
                [column.header for column in COLUMNS],
                rows=(),
                widths=[max(12, 2 * len(column.header)) for column in COLUMNS],
                text_columns=[i for i, column in enumerate(COLUMNS) if column.text],
            ),
            Sheet("填写说明", ["列", "代码", "名称", "说明"], instructions, widths=(36, 24, 44, 70)),
        ]
        return f"排查摸底模板-{caller.tenant}-{town}.xlsx", write_workbook(sheets)

    # -- import ---------------------------------------------------------------------------------------------

    def import_survey(self, content: bytes, options: ImportOptions) -> Iterator[ImportProgress]:
        """Check (dry run) or import a survey file; yields progress every `progress_every` rows, then the summary."""
        caller = require_role(*CASEWORK_ROLES)
        if not content:
            raise errors.InvalidInput("is empty", "file")
        table = read_table(content, options.file_name, sheet=DATA_SHEET)
        columns = survey_rows.map_header(table.header)
        every = min(
            max(options.progress_every or DEFAULT_PROGRESS_EVERY, PROGRESS_EVERY_RANGE[0]), PROGRESS_EVERY_RANGE[1]
        )
        sha256 = hashlib.sha256(content).hexdigest()
        numbered = (
            (number, {field: cells[i] if i < len(cells) else None for field, i in columns.items()})
            for number, cells in table.rows
        )
        with self._file_lock(caller, sha256, options.dry_run) as holds_lock:
            run = self._start(caller, sha256, options, holds_lock)
            try:
                in_file = _InFileIndex()
                done = 0
                while chunk := list(itertools.islice(numbered, every)):
                    results: list[RowResult] = []
                    for start in range(0, len(chunk), BATCH_ROWS):
                        rows = [
                            self._validated(number, survey_rows.read_row(cells, caller.tenant), options)
                            for number, cells in chunk[start : start + BATCH_ROWS]
                        ]
                        # Before the transaction: a batch done again must not find its rows already seen.
                        in_file_problems = {row.number: in_file.add(row) for row in rows if not row.checked.problems}
                        results += self._batch(run, rows, in_file_problems)
                    done += len(chunk)
                    yield ImportProgress(done, max(done, table.rows_hint), tuple(results))
                summary = ImportSummary(
                    import_id=run.import_id,
                    file_sha256=sha256,
                    dry_run=options.dry_run,
                    rows=done,
                    accepted=run.counts[RowOutcome.ACCEPTED],
                    unchanged=run.counts[RowOutcome.UNCHANGED],
                    rejected=run.counts[RowOutcome.REJECTED],
                    possible_duplicates=run.counts[RowOutcome.POSSIBLE_DUPLICATE],
                )
                self._finish(run)
            except BaseException:  # an error, or the caller gone (GeneratorExit): importing again finishes it
                self._stop(run)
                raise
        yield ImportProgress(done, done, (), summary)

    def _validated(self, number: int, checked: CheckedRow, options: ImportOptions | None = None) -> _Row:
        """The cells' problems, then those the use cases' rules find in what the cells gave (one per field):
        RegisterChild's for the child, AddFamilyMember's for each parent and guardian, AddCategory's for
        each category."""
        reported = {v.field for v in checked.problems}

        def refused(invalid: errors.InvalidInput, column: str = "", columns: Mapping[str, str] | None = None) -> None:
            for violation in invalid.violations:
                found = column or (columns or {}).get(violation.field, violation.field)
                if found not in reported:
                    reported.add(found)
                    checked.problems.append(errors.FieldViolation(found, violation.message))

        identity_number = ""
        try:
            identity_number = self._registry.validate(checked.command)
        except errors.InvalidInput as invalid:
            refused(invalid)
        for member in checked.family:
            try:
                check_member(member)
            except errors.InvalidInput as invalid:
                refused(invalid, _member_column(member))
        categories = []
        file_name = options.file_name if options else ""
        evidence = checked.category_evidence or f"排查摸底表 {file_name} 第{number}行"
        for category in checked.categories:
            try:
                command = NewCategory("", category.value, SURVEY, evidence=evidence)
                categories.append(check_category(command, self._today()))
            except errors.InvalidInput as invalid:
                refused(invalid, columns=_CATEGORY_COLUMNS)
        if checked.problems:
            return _Row(number, checked)
        return _Row(number, checked, identity_number, tuple(categories))

    def _batch(self, run: _Run, rows: list[_Row], in_file_problems: dict[int, list[RowProblem]]) -> list[RowResult]:
        """The rows' outcomes, their children recorded (unless a dry run) and the outcomes kept, in one
        transaction; done again without a row whose recording the use cases refused, or after a number was
        registered meanwhile by someone else (the next attempt finds it in the register)."""
        refused: dict[int, RowResult] = {}
        for attempt in itertools.count(1):
            try:
                with self._database.unit_of_work(run.caller.tenant) as uow:
                    scope = BulkScope(uow, run.caller, today=self._today(), now=self._now())
                    results = [
                        refused.get(result.row_number, result)
                        for result in self._outcomes(scope, run, rows, in_file_problems)
                    ]
                    if not run.options.dry_run:
                        results = self._record(scope, rows, results)
                    self._keep(scope, run, results)
                    uow.commit()
            except _RowRefused as refusal:
                refused[refusal.result.row_number] = refusal.result
                continue
            except IntegrityError:
                if attempt >= ATTEMPTS:
                    raise
                continue
            run.counts.update(result.outcome for result in results)
            return results
        raise AssertionError("unreachable")  # pragma: no cover

    def _outcomes(
        self, scope: Scope, run: _Run, rows: list[_Row], in_file_problems: dict[int, list[RowProblem]]
    ) -> list[RowResult]:
        """Each row's outcome before anything is recorded: steps 1-4 of the module's description."""
        problems = {row.number: [_problem(v.field, v.message) for v in row.checked.problems] for row in rows}
        for number, found in in_file_problems.items():
            problems[number] += found
        # RegisterChild's check of the town's villages (services._check_villages), their list read once a batch.
        current = villages.current_village_codes(scope)
        for row in rows:
            codes = {name: getattr(row.checked.command, name) for name in sorted(DIVISION_FIELDS)}
            if not problems[row.number] and any(
                villages.unknown_village(code, scope.tenant, current) for code in codes.values()
            ):
                refused = villages.village_violations(scope, codes)
                problems[row.number] += [_problem(v.field, v.message) for v in refused]
        in_register = self._registry.registered_numbers(
            scope, [row.identity_number for row in rows if not problems[row.number]]
        )
        new = [
            row
            for row in rows
            if not problems[row.number]
            and row.identity_number not in in_register
            and row.number not in run.imported_before
        ]
        matcher = _Matcher(self._registry, leaving_out=_registered_from(scope.tenant, run.sha256))
        best = matcher.best(scope, {row.number: _probe(row) for row in new})
        results = []
        for row in rows:
            if problems[row.number]:
                results.append(RowResult(row.number, RowOutcome.REJECTED, tuple(problems[row.number])))
            elif child_id := in_register.get(row.identity_number, ""):
                results.append(
                    RowResult(row.number, RowOutcome.UNCHANGED, child_id=child_id, note="already in the register")
                )
            elif child_id := run.imported_before.get(row.number, ""):
                note = "imported before from this file"
                results.append(RowResult(row.number, RowOutcome.UNCHANGED, child_id=child_id, note=note))
            else:
                results.append(self._match(scope, run, row, best.get(row.number)))
        return results

    def _match(self, scope: Scope, run: _Run, row: _Row, best: RankedCandidate[str] | None) -> RowResult:
        """ACCEPTED, unless the best candidate MatchChild finds for the row (leaving out the children this
        file's imports registered) scores at or above the threshold."""
        if best is None or best.result.score < DEFAULT_THRESHOLD:
            return RowResult(row.number, RowOutcome.ACCEPTED)
        reasons = "; ".join(best.result.reasons)
        note = f"possible duplicate of {best.record_id} (score {best.result.score:.2f}: {reasons})"
        # What the row's outcome tells of a register child is a read of it: audited like MatchChild's.
        scope.audit("survey_match", "child", best.record_id, f"survey {run.options.file_name[:200]} row {row.number}")
        if run.options.register_possible_duplicates:
            return RowResult(row.number, RowOutcome.ACCEPTED, note=note + "; registered as asked")
        return RowResult(row.number, RowOutcome.POSSIBLE_DUPLICATE, child_id=best.record_id, note=note)

    def _record(self, scope: Scope, rows: list[_Row], results: list[RowResult]) -> list[RowResult]:
        """Each accepted row's child with its family and categories, by the use cases' in-transaction work."""
        by_number = {row.number: row for row in rows}
        accepted = [by_number[result.row_number] for result in results if result.outcome is RowOutcome.ACCEPTED]
        try:
            recorded = self._registry.record_children(
                scope,
                [
                    NewChild(row.checked.command, row.identity_number, row.checked.family, row.categories)
                    for row in accepted
                ],
            )
        except ChildRefused as refused:  # the checks of `_validated` make this rare
            row, refusal = accepted[refused.index], refused.refusal
            field_code = refusal.violations[0].field if isinstance(refusal, errors.InvalidInput) else ""
            problem = _problem(field_code, f"could not be recorded: {refusal}")
            raise _RowRefused(RowResult(row.number, RowOutcome.REJECTED, (problem,))) from refusal
        child_ids = iter([child.child_id for child, _ in recorded])
        return [
            replace(result, child_id=next(child_ids)) if result.outcome is RowOutcome.ACCEPTED else result
            for result in results
        ]

    def _keep(self, scope: Scope, run: _Run, results: list[RowResult]) -> None:
        """The rows' outcomes, and the import's counts so far, in the batch's transaction; refused if the
        import is no longer running (another import of the file took it over: see `_start`)."""
        if results:
            scope.session.execute(
                insert(SurveyImportRowRecord),
                [
                    {
                        "import_id": run.import_id,
                        "row_number": r.row_number,
                        "tenant_id": scope.tenant,
                        "outcome": r.outcome.value,
                        "child_id": r.child_id,
                        "note": r.note,
                        "problems": [{"field": p.field, "reason": p.reason} for p in r.problems],
                    }
                    for r in results
                ],
            )
        counts = run.counts + Counter(r.outcome for r in results)
        if not self._set_running(scope.session, run, heartbeat_at=scope.now, **_count_columns(counts)):
            raise errors.Conflict("this import was stopped and another import of the same file took it over")

    # -- one file at a time --------------------------------------------------------------------------------

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

    def _start(self, caller: Principal, sha256: str, options: ImportOptions, holds_lock: bool | None) -> _Run:
        """The import's record, marked running (a real import: unique per town and file), and what earlier
        imports of the file did. A running import of the same file refuses this one, unless it has stopped:
        its process died (PostgreSQL: the advisory lock was free) or it has made no progress for STALE_AFTER."""
        with self._database.unit_of_work(caller.tenant) as uow:
            _town(uow.session, caller)
            now = self._now()
            if not options.dry_run:
                running = uow.session.scalars(
                    select(SurveyImportRecord).where(
                        SurveyImportRecord.tenant_id == caller.tenant, SurveyImportRecord.running_file == sha256
                    )
                ).first()
                if running is not None:
                    if not holds_lock and not _stale(running, now):
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
        return _Run(caller, import_id, sha256, options, imported_before)

    def _set_running(self, session: Session, run: _Run, **values: object) -> bool:
        """Update the import's record if it is still running (False: it is not)."""
        result = session.execute(
            update(SurveyImportRecord)
            .where(SurveyImportRecord.id == run.import_id, SurveyImportRecord.status == ImportStatus.RUNNING.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return cast(CursorResult[Any], result).rowcount == 1

    def _finish(self, run: _Run) -> None:
        with self._database.unit_of_work(run.caller.tenant) as uow:
            finished = self._set_running(
                uow.session,
                run,
                status=ImportStatus.FINISHED.value,
                running_file=None,
                finished_at=self._now(),
                **_count_columns(run.counts),
            )
            if not finished:
                raise errors.Conflict("this import was stopped and another import of the same file took it over")
            uow.commit()

    def _stop(self, run: _Run) -> None:
        try:
            with self._database.unit_of_work(run.caller.tenant) as uow:
                self._set_running(uow.session, run, status=ImportStatus.STOPPED.value, running_file=None)
                uow.commit()
        except SQLAlchemyError:  # the database is gone too: the next import of the file finds it stale
            log.exception("survey import %s: could not mark it stopped", run.import_id)

    # -- history --------------------------------------------------------------------------------------------

    def list_imports(self, page_size: int = 0, page_token: str = "") -> tuple[list[ImportView], str]:
        """The town's imports and dry runs, newest first."""
        caller = require_role(*READER_ROLES)
        size = min(max(page_size or DEFAULT_PAGE, 1), MAX_PAGE)
        with self._database.unit_of_work(caller.tenant) as uow:
            query = select(SurveyImportRecord).where(SurveyImportRecord.tenant_id == caller.tenant)
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
            if record is None or record.tenant_id != caller.tenant:
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
                    tuple(_problem(p["field"], p["reason"]) for p in r.problems),
                    r.child_id,
                    r.note,
                )
                for r in rows[:size]
            ]
        return view, results, (str(results[-1].row_number) if len(rows) > size else "")

    # -- export ---------------------------------------------------------------------------------------------

    def export_register(
        self, purpose: str, categories: Sequence[str], village_codes: Sequence[str]
    ) -> tuple[str, bytes]:
        """The classified register (分类台账) as .xlsx, identity numbers masked. Audited like a case-file
        read: one audit row per child exported, with the purpose, in the same transaction as the read."""
        caller = require_role(*READER_ROLES)
        purpose = require_purpose(purpose, "the register")
        violations = []
        if any(code not in DifficultyCategory._value2member_map_ for code in categories):
            violations.append(errors.FieldViolation("categories", "unknown difficulty category code"))
        if any(len(code) != 12 or not survey_rows.in_town(code, caller.tenant) for code in village_codes):
            violations.append(errors.FieldViolation("village_codes", "must be 12-digit village codes of this town"))
        if violations:
            raise errors.InvalidInput(violations)
        wanted = frozenset(categories)
        with self._database.unit_of_work(caller.tenant) as uow:
            scope = Scope(uow, caller, today=self._today(), now=self._now())
            _town(uow.session, caller)
            query = select(ChildRecord).where(ChildRecord.tenant_id == caller.tenant, ChildRecord.merged_into.is_(None))
            if village_codes:
                query = query.where(ChildRecord.residence_division_code.in_(village_codes))
            records = uow.session.scalars(query.order_by(ChildRecord.residence_division_code, ChildRecord.legal_name))
            children = [c for c in child_views(scope, list(records)) if not wanted or wanted & set(c.categories)]
            scope.audit(
                "export_register",
                "register",
                caller.tenant,
                f"{purpose} [{len(children)} children; categories {','.join(categories) or 'all'}; "
                f"villages {','.join(village_codes) or 'all'}]",
            )
            for child in children:
                scope.audit("export_register", "child", child.child_id, purpose)
            scope.commit()
        return f"分类台账-{caller.tenant}-{scope.today:%Y%m%d}.xlsx", write_workbook(_register_sheets(children, wanted))


def _town(session: Session, caller: Principal) -> str:
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


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite gives back naive UTC times


def _stale(record: SurveyImportRecord, now: datetime) -> bool:
    """A running import that has recorded nothing for STALE_AFTER: its process is taken to have died."""
    last = record.heartbeat_at or record.started_at
    return _aware(now) - _aware(last) > STALE_AFTER


def _busy(running: SurveyImportRecord | None) -> errors.Conflict:
    if running is None:
        return errors.Conflict("this file is already being imported: wait until it finishes (ListSurveyImports)")
    return errors.Conflict(
        f"this file is already being imported (import {running.id}, started {_aware(running.started_at):%Y-%m-%d %H:%M} "
        f"UTC by {running.imported_by}, {running.rows} rows done): wait until it finishes (ListSurveyImports)"
    )


def _count_columns(counts: Counter[RowOutcome]) -> dict[str, int]:
    return {
        "rows": sum(counts.values()),
        "accepted": counts[RowOutcome.ACCEPTED],
        "unchanged": counts[RowOutcome.UNCHANGED],
        "rejected": counts[RowOutcome.REJECTED],
        "possible_duplicates": counts[RowOutcome.POSSIBLE_DUPLICATE],
    }


def _import_view(record: SurveyImportRecord, now: datetime) -> ImportView:
    status = ImportStatus(record.status)
    if status is ImportStatus.RUNNING and _stale(record, now):
        status = ImportStatus.STOPPED  # its process died; the next import of the file takes it over
    return ImportView(
        import_id=record.id,
        file_name=record.file_name,
        file_sha256=record.file_sha256,
        imported_by=record.imported_by,
        started_at=_aware(record.started_at),
        finished_at=_aware(record.finished_at) if record.finished_at else None,
        dry_run=record.dry_run,
        status=status,
        rows=record.rows,
        accepted=record.accepted,
        unchanged=record.unchanged,
        rejected=record.rejected,
        possible_duplicates=record.possible_duplicates,
    )


class _Matcher:
    """MatchChild (RegistryService.match_child) for a batch of rows at once: the same blocking keys, the
    same candidates (RegistryService._candidates: the records sharing a selective key first, then those
    sharing the most keys, at most MAX_CANDIDATES_SCORED), name counts and scores, in four queries a
    batch instead of a statement a row (test_survey_service checks it against MatchChild itself).

    `leaving_out` selects children the register is taken without (candidates and name counts alike):
    the survey leaves out the children its file registered, so that a dry run, an import and an import
    finished after an interruption see the same register."""

    def __init__(self, registry: RegistryService, *, leaving_out: Select[tuple[str]] | None = None) -> None:
        self._registry = registry
        self._leaving_out = leaving_out
        self._digests: dict[str, str] = {}

    def _kept(self, child_id: InstrumentedAttribute[str]) -> list[ColumnElement[bool]]:
        if self._leaving_out is None:
            return []
        return [~self._leaving_out.where(SurveyImportRowRecord.child_id == child_id).exists()]

    def _digest(self, key: str) -> str:
        if (found := self._digests.get(key)) is None:
            found = self._digests[key] = self._registry._key_digest(key)
        return found

    def candidates(
        self, scope: Scope, probes: Mapping[int, MatchProbe]
    ) -> dict[int, tuple[matching.ChildFacts, list[tuple[str, matching.ChildFacts]], dict[str, int]]]:
        """For each probe: its facts, its candidates (as _candidates gives them) and its name counts."""
        facts = {n: self._registry._probe_facts(probe) for n, probe in probes.items()}
        keys = {n: matching.lookup_keys(found) for n, found in facts.items()}
        sound_keys = {n: sorted({matching.name_sound_key(name) for name in found.names}) for n, found in facts.items()}
        postings: dict[str, list[str]] = {}
        for part in _parts({self._digest(k) for found in keys.values() for k in found}):
            for key, child_id in scope.session.execute(
                select(ChildMatchKey.match_key, ChildMatchKey.child_id).where(
                    ChildMatchKey.tenant_id == scope.tenant,
                    _among(scope, ChildMatchKey.match_key, part),
                    *self._kept(ChildMatchKey.child_id),
                )
            ):
                postings.setdefault(key, []).append(child_id)
        chosen: dict[int, list[str]] = {}
        for n, found in keys.items():
            shared: Counter[str] = Counter()
            selective: set[str] = set()
            for key in found:
                for child_id in postings.get(self._digest(key), ()):
                    shared[child_id] += 1
                    if key.startswith(SELECTIVE_KEY_PREFIXES):
                        selective.add(child_id)
            ordered = sorted(shared, key=lambda c: (c not in selective, -shared[c], c))
            chosen[n] = ordered[:MAX_CANDIDATES_SCORED]
        records: dict[str, Any] = {}
        for part in _parts({c for ids in chosen.values() for c in ids}):
            for record in scope.session.execute(
                select(*RECORD_FACT_COLUMNS).where(
                    ChildRecord.tenant_id == scope.tenant,
                    _among(scope, ChildRecord.id, part),
                    ChildRecord.merged_into.is_(None),
                )
            ):
                records[record.id] = record
        guardians: dict[str, list[str]] = {}
        for part in _parts({c for n, ids in chosen.items() if facts[n].guardian_names for c in ids}):
            for child_id, name in scope.session.execute(
                select(FamilyMemberRecord.child_id, FamilyMemberRecord.name).where(
                    FamilyMemberRecord.tenant_id == scope.tenant,
                    _among(scope, FamilyMemberRecord.child_id, part),
                    or_(FamilyMemberRecord.guardian, FamilyMemberRecord.relationship.in_(PARENT_RELATIONSHIPS)),
                )
            ):
                if name:
                    guardians.setdefault(child_id, []).append(name)
        counts: dict[str, int] = {}
        for part in _parts({self._digest(k) for found in sound_keys.values() for k in found}):
            for key, count in scope.session.execute(
                select(ChildMatchKey.match_key, func.count())
                .where(
                    ChildMatchKey.tenant_id == scope.tenant,
                    _among(scope, ChildMatchKey.match_key, part),
                    *self._kept(ChildMatchKey.child_id),
                )
                .group_by(ChildMatchKey.match_key)
            ):
                counts[key] = int(count)
        found_for: dict[int, tuple[matching.ChildFacts, list[tuple[str, matching.ChildFacts]], dict[str, int]]] = {}
        for n, probe_facts in facts.items():
            with_guardians = bool(probe_facts.guardian_names)
            candidates = [
                (c, record_facts(records[c], tuple(guardians.get(c, ())) if with_guardians else ()))
                for c in chosen[n]
                if c in records
            ]
            found_for[n] = (probe_facts, candidates, {k: counts.get(self._digest(k), 0) for k in sound_keys[n]})
        return found_for

    def best(self, scope: Scope, probes: Mapping[int, MatchProbe]) -> dict[int, RankedCandidate[str] | None]:
        """Each probe's best candidate, if it scores at least CANDIDATE_MIN_SCORE (MatchChild's first)."""
        best: dict[int, RankedCandidate[str] | None] = {}
        for n, (facts, candidates, name_counts) in self.candidates(scope, probes).items():
            ranked = matching.rank_candidates(
                facts,
                candidates,
                min_score=CANDIDATE_MIN_SCORE,
                limit=1,
                name_count=_name_count(name_counts),
            )
            best[n] = ranked[0] if ranked else None
        return best


def _name_count(counts: Mapping[str, int]) -> matching.NameCount:
    return lambda sound_key: counts.get(sound_key, 0)


def _registered_from(tenant: str, sha256: str) -> Select[tuple[str]]:
    """The children real imports of the file registered (their rows ACCEPTED), this one's batches included."""
    return (
        select(SurveyImportRowRecord.child_id)
        .join(SurveyImportRecord, SurveyImportRecord.id == SurveyImportRowRecord.import_id)
        .where(
            SurveyImportRowRecord.tenant_id == tenant,
            SurveyImportRowRecord.outcome == RowOutcome.ACCEPTED.value,
            SurveyImportRecord.tenant_id == tenant,
            SurveyImportRecord.file_sha256 == sha256,
            SurveyImportRecord.dry_run.is_(False),
        )
    )


def _among(scope: Scope, column: InstrumentedAttribute[str], values: list[str]) -> ColumnElement[bool]:
    """column IN values; on PostgreSQL = ANY(one array), cheaper to send than thousands of parameters."""
    if scope.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(String)))
    return column.in_(values)


def _parts(values: Collection[str], size: int = 2000) -> Iterator[list[str]]:
    """Values for IN lists, a few thousand at a time (SQLite and drivers limit the parameters of a statement)."""
    ordered = sorted(values)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _probe(row: _Row) -> MatchProbe:
    command = row.checked.command
    return MatchProbe(
        name=command.legal_name,
        identity_number=command.identity_number,
        birth_date=command.birth_date,
        sex=command.sex,
        guardian_names=row.checked.guardian_names,
        division_code=command.residence_division_code,
        school=command.school,
    )


def _member_column(member: FamilyMember) -> str:
    return "guardian_name" if member.guardian else _MEMBER_COLUMNS.get(member.relationship, "guardian_name")


class _InFileIndex:
    """The children seen so far in the file: a later row for the same child is a duplicate."""

    def __init__(self) -> None:
        self._by_number: dict[str, int] = {}
        self._by_person: dict[tuple[str, str, date | None], tuple[int, bool]] = {}

    def add(self, row: _Row) -> list[RowProblem]:
        number, command = row.identity_number, row.checked.command
        if number and (first := self._by_number.get(number)):
            return [_problem(IDENTITY_FIELD, f"duplicate in this file: the same identity number as row {first}")]
        person = (normalize_name(command.legal_name), command.sex.value, command.birth_date)
        earlier = self._by_person.get(person)
        # Without a number on one side, the same name, sex and birth date is the same child; two different
        # numbers are two children (namesakes born on the same day do exist).
        if earlier and not (number and earlier[1]):
            return [
                _problem("legal_name", f"duplicate in this file: the same name, sex and birth date as row {earlier[0]}")
            ]
        if number:
            self._by_number[number] = row.number
        self._by_person.setdefault(person, (row.number, bool(number)))
        return []


def _problem(field_code: str, reason: str) -> RowProblem:
    field_code = survey_rows.COLUMN_OF_FIELD.get(field_code, field_code)
    column = survey_rows.COLUMN_BY_FIELD.get(field_code)
    return RowProblem(column.label if column else field_code, field_code, reason)


# -- the register as a workbook ----------------------------------------------------------------------------

_REGISTER_HEADER = (
    "困境类别",
    "村(居)代码",
    "姓名",
    "性别",
    "出生日期",
    "公民身份号码(脱敏)",
    "民族",
    "户籍地区划代码",
    "户籍地址",
    "现居住地区划代码",
    "现居住地址",
    "就读学校",
    "年级",
    "残疾",
    "重病情况",
    "临时登记",
    "登记编号",
)
_ETHNICITY_LABELS = {e.value: e.label for e in Ethnicity}


def _register_sheets(children: list[ChildView], wanted: frozenset[str]) -> list[Sheet]:
    """分类台账: a row per child and category (a child in two categories is on two rows), by category then
    village; 汇总: how many children of each village are in each category."""
    order = [c.value for c in DifficultyCategory if not wanted or c.value in wanted] + [UNCATEGORISED]
    by_category: dict[str, list[ChildView]] = {code: [] for code in order}
    for child in children:
        for code in [c for c in child.categories if c in by_category] or [UNCATEGORISED]:
            by_category[code].append(child)
    used = [code for code in order if by_category[code]]
    rows = [_register_row(code, child) for code in used for child in by_category[code]]

    counts = Counter((_village(child), code) for code in used for child in by_category[code])
    per_village = Counter(_village(child) for child in children)
    summary: list[Sequence[Cell]] = [
        (village or "(乡镇)", *(counts[village, code] for code in used), per_village[village])
        for village in sorted(per_village)
    ]
    summary.append(("合计", *(len(by_category[code]) for code in used), len(children)))
    widths = (30, 15, 12, 8, 12, 22, 10, 15, 30, 15, 30, 20, 8, 12, 20, 8, 34)
    return [
        Sheet("分类台账", _REGISTER_HEADER, rows, widths=widths),
        Sheet("汇总", ("村(居)代码", *(_category_label(code) for code in used), "儿童人数"), summary, widths=(15,)),
    ]


def _register_row(category: str, child: ChildView) -> Sequence[Cell]:
    return (
        _category_label(category),
        _village(child),
        child.legal_name,
        child.sex.label,
        child.birth_date,
        child.identity_number_masked,  # only the masked form ever leaves the registry
        _ETHNICITY_LABELS.get(child.ethnicity_code, child.ethnicity_code),
        child.household_division_code,
        child.household_address,
        child.residence_division_code,
        child.residence_address,
        child.school,
        child.grade,
        _disability(child),
        child.serious_illness,
        "是" if child.provisional else "",
        child.child_id,
    )


def _disability(child: ChildView) -> str:
    if not child.disability_type:
        return ""
    return f"{DisabilityType(child.disability_type).label}{DisabilityGrade(child.disability_grade).label}"


def _village(child: ChildView) -> str:
    code = child.residence_division_code
    return code if len(code) == 12 else ""


def _category_label(code: str) -> str:
    found = DifficultyCategory._value2member_map_.get(code)
    return found.label if isinstance(found, DifficultyCategory) else code
