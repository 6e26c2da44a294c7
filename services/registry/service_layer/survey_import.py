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
   (source "survey"). It does what RegisterChild, AddFamilyMember and AddCategory do (the latter two on ORM
   rows, by ChildInWork.add_member and add_category), so a child gets the same records, change history,
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
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from platform_runtime import errors
from platform_runtime.tenancy import require_role
from services.registry.adapters import village_scope
from services.registry.adapters.bulk_rows import insert_rows
from services.registry.adapters.spreadsheets import read_table
from services.registry.adapters.survey_orm import SurveyImportRecord, SurveyImportRowRecord
from services.registry.domain.codes import CategorySource, Relationship
from services.registry.domain.family import FamilyMember, check_member
from services.registry.domain.matching import DEFAULT_THRESHOLD, RankedCandidate, normalize_name
from services.registry.service_layer import survey_rows, villages
from services.registry.service_layer.access import CASEWORK_ROLES
from services.registry.service_layer.category_entries import CheckedCategory, check_category
from services.registry.service_layer.child_fields import DIVISION_FIELDS
from services.registry.service_layer.children import ChildRefused, NewChild
from services.registry.service_layer.commands import MatchProbe, NewCategory
from services.registry.service_layer.inputs import IDENTITY_FIELD
from services.registry.service_layer.matching import BatchMatcher
from services.registry.service_layer.scope import BulkScope, Scope
from services.registry.service_layer.survey_results import (
    DEFAULT_PROGRESS_EVERY,
    ImportOptions,
    ImportProgress,
    ImportSummary,
    RowOutcome,
    RowProblem,
    RowResult,
    row_problem,
)
from services.registry.service_layer.survey_rows import DATA_SHEET, CheckedRow
from services.registry.service_layer.survey_runs import Run, SurveyRuns, count_columns

PROGRESS_EVERY_RANGE = (50, 10_000)


BATCH_ROWS = 500  # rows per transaction at most (a progress message may take several)


ATTEMPTS = 3  # a batch meeting a number registered meanwhile by someone else is done again, then gives up


SURVEY = CategorySource.SURVEY.value


# The column each family member of a row comes from, for its problems.
_MEMBER_COLUMNS = {Relationship.FATHER: "father_name", Relationship.MOTHER: "mother_name"}


# AddCategory's field names, as the survey's columns.
_CATEGORY_COLUMNS = {"evidence": "category_evidence", "evidence_document": "category_evidence"}


@dataclass(frozen=True)
class _Row:
    number: int
    checked: CheckedRow
    identity_number: str = ""  # normalised, once the record's rules accepted it
    categories: tuple[CheckedCategory, ...] = ()  # as AddCategory accepted them


class _RowRefused(Exception):
    """Recording an accepted row failed on the use cases' rules: the batch is done again with it rejected."""

    def __init__(self, result: RowResult) -> None:
        super().__init__(result.row_number)
        self.result = result


class SurveyImport(SurveyRuns):
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

    def _batch(self, run: Run, rows: list[_Row], in_file_problems: dict[int, list[RowProblem]]) -> list[RowResult]:
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
        self, scope: Scope, run: Run, rows: list[_Row], in_file_problems: dict[int, list[RowProblem]]
    ) -> list[RowResult]:
        """Each row's outcome before anything is recorded: steps 1-4 of the module's description."""
        problems = {row.number: [row_problem(v.field, v.message) for v in row.checked.problems] for row in rows}
        for number, found in in_file_problems.items():
            problems[number] += found
        # RegisterChild's checks of the villages (child_fields.check_villages): the town's list, read once a
        # batch, and a child director's own villages. A row elsewhere is refused before the register is looked
        # at, so its outcome tells nothing of the children there.
        current = villages.current_village_codes(scope)
        for row in rows:
            codes = {name: getattr(row.checked.command, name) for name in sorted(DIVISION_FIELDS)}
            if problems[row.number]:
                continue
            if any(villages.unknown_village(code, scope.tenant, current) for code in codes.values()):
                refused = villages.village_violations(scope.tenant, codes, villages.KnownVillages(current))
                problems[row.number] += [row_problem(v.field, v.message) for v in refused]
            elif not village_scope.covers(run.caller, list(codes.values())):
                problems[row.number].append(
                    row_problem("residence_division_code", village_scope.OUTSIDE_THEIR_VILLAGES)
                )
        in_register = self._registry.registered_numbers(
            scope, [row.identity_number for row in rows if not problems[row.number]]
        )
        # The number is registered once in the town, so a child director learns that it is (as RegisterChild
        # answers), but not which child when it lives outside their villages.
        shown = village_scope.visible(scope.session, run.caller, in_register.values())
        in_register = {number: child_id if child_id in shown else "" for number, child_id in in_register.items()}
        new = [
            row
            for row in rows
            if not problems[row.number]
            and row.identity_number not in in_register
            and row.number not in run.imported_before
        ]
        matcher = BatchMatcher(self._registry, leaving_out=_registered_from(scope.tenant, run.sha256))
        best = matcher.best(scope, {row.number: _probe(row) for row in new})
        results = []
        for row in rows:
            if problems[row.number]:
                results.append(RowResult(row.number, RowOutcome.REJECTED, tuple(problems[row.number])))
            elif row.identity_number in in_register:
                child_id = in_register[row.identity_number]
                results.append(
                    RowResult(row.number, RowOutcome.UNCHANGED, child_id=child_id, note="already in the register")
                )
            elif child_id := run.imported_before.get(row.number, ""):
                note = "imported before from this file"
                results.append(RowResult(row.number, RowOutcome.UNCHANGED, child_id=child_id, note=note))
            else:
                results.append(self._match(scope, run, row, best.get(row.number)))
        return results

    def _match(self, scope: Scope, run: Run, row: _Row, best: RankedCandidate[str] | None) -> RowResult:
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
            problem = row_problem(field_code, f"could not be recorded: {refusal}")
            raise _RowRefused(RowResult(row.number, RowOutcome.REJECTED, (problem,))) from refusal
        child_ids = iter([child.child_id for child, _ in recorded])
        return [
            replace(result, child_id=next(child_ids)) if result.outcome is RowOutcome.ACCEPTED else result
            for result in results
        ]

    def _keep(self, scope: Scope, run: Run, results: list[RowResult]) -> None:
        """The rows' outcomes, and the import's counts so far, in the batch's transaction; refused if the
        import is no longer running (another import of the file took it over: see `_start`)."""
        insert_rows(
            scope.session,
            SurveyImportRowRecord.__table__,
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
        if not self._set_running(scope.session, run, heartbeat_at=scope.now, **count_columns(counts)):
            raise errors.Conflict("this import was stopped and another import of the same file took it over")


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
            return [row_problem(IDENTITY_FIELD, f"duplicate in this file: the same identity number as row {first}")]
        person = (normalize_name(command.legal_name), command.sex.value, command.birth_date)
        earlier = self._by_person.get(person)
        # Without a number on one side, the same name, sex and birth date is the same child; two different
        # numbers are two children (namesakes born on the same day do exist).
        if earlier and not (number and earlier[1]):
            return [
                row_problem(
                    "legal_name", f"duplicate in this file: the same name, sex and birth date as row {earlier[0]}"
                )
            ]
        if number:
            self._by_number[number] = row.number
        self._by_person.setdefault(person, (row.number, bool(number)))
        return []
