"""The survey (排查摸底): the template, the import of a town's spreadsheet, and the register export.

An import goes through the file in chunks of `progress_every` rows; each row:
1. its cells are read (survey_rows.py), then the record's own rules are applied: RegistryService's, the
   ones RegisterChild applies, so there is one place for them;
2. a row repeating an earlier row of the file (the same identity number; or, where a number is missing,
   the same name, sex and birth date) is rejected;
3. a row already in the register is UNCHANGED: the same identity number (blind index), or the same row
   of the same file (SHA-256) imported before. An import never changes an existing record;
4. a row that MatchChild scores at or above the matching threshold against a register child is held
   back as a POSSIBLE_DUPLICATE for a person to decide. Children registered by the same import are left
   out of these matches, so that a dry run and the real import give the same outcomes;
5. the rest is ACCEPTED and, unless it is a dry run, recorded through the same use cases as over the
   API: RegistryService.register_child, then CaseworkService.add_family_member for the parents and
   guardian and add_category (source "survey") for each category, each in its own transaction.
A real import records the file's SHA-256 and each row's outcome, chunk by chunk, as it goes.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from platform_runtime import errors
from platform_runtime.auth import Principal
from platform_runtime.db import Database, new_id, utcnow
from platform_runtime.pii import BlindIndex
from platform_runtime.tenancy import require_role
from services.registry.adapters.orm import ChildRecord, TenantRecord
from services.registry.adapters.spreadsheets import Cell, Sheet, read_table, write_workbook
from services.registry.adapters.survey_orm import SurveyImportRecord, SurveyImportRowRecord
from services.registry.domain.codes import (
    CategorySource,
    DifficultyCategory,
    DisabilityGrade,
    DisabilityType,
    Ethnicity,
)
from services.registry.domain.matching import DEFAULT_THRESHOLD, normalize_name
from services.registry.service_layer import survey_rows
from services.registry.service_layer.casework import CaseworkService
from services.registry.service_layer.common import (
    CASEWORK_ROLES,
    IDENTITY_FIELD,
    READER_ROLES,
    Scope,
    child_views,
    require_purpose,
)
from services.registry.service_layer.services import RegistryService
from services.registry.service_layer.survey_rows import COLUMNS, DATA_SHEET, CheckedRow
from services.registry.service_layer.views import ChildView, MatchProbe, NewCategory

DEFAULT_PROGRESS_EVERY = 1000
PROGRESS_EVERY_RANGE = (50, 10_000)
MATCH_CANDIDATES = 50  # enough to pass over this import's own children and still see the register's
UNCATEGORISED = "未分类"
SURVEY = CategorySource.SURVEY.value


class RowOutcome(StrEnum):
    ACCEPTED = "accepted"  # registered (dry run: would be)
    UNCHANGED = "unchanged"
    REJECTED = "rejected"
    POSSIBLE_DUPLICATE = "possible_duplicate"


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
    import_id: str  # "" for a dry run: nothing is recorded
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
class _Row:
    number: int
    checked: CheckedRow
    identity_number: str = ""  # normalised, once the record's rules accepted it


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
        with self._database.unit_of_work(caller.tenant) as uow:
            _town(uow.session, caller)
            imported_before = _imported_rows(uow.session, caller.tenant, sha256)
            import_id = ""
            if not options.dry_run:
                import_id = new_id()
                uow.session.add(
                    SurveyImportRecord(
                        id=import_id,
                        tenant_id=caller.tenant,
                        file_sha256=sha256,
                        file_name=options.file_name[:200],
                        imported_by=caller.user_id,
                        started_at=self._now(),
                    )
                )
                uow.commit()

        in_file = _InFileIndex()
        registered_now: set[str] = set()
        counts: Counter[RowOutcome] = Counter()
        done = 0
        numbered = (
            (number, {field: cells[i] if i < len(cells) else None for field, i in columns.items()})
            for number, cells in table.rows
        )
        while chunk := list(itertools.islice(numbered, every)):
            rows = [self._validated(number, survey_rows.read_row(cells, caller.tenant)) for number, cells in chunk]
            results = self._outcomes(caller, rows, in_file, imported_before, registered_now, options)
            if not options.dry_run:
                results = [
                    self._record_child(result, row, options, registered_now)
                    for result, row in zip(results, rows, strict=True)
                ]
                self._keep(caller, import_id, results)
            counts.update(result.outcome for result in results)
            done += len(chunk)
            yield ImportProgress(done, max(done, table.rows_hint), tuple(results))

        summary = ImportSummary(
            import_id=import_id,
            file_sha256=sha256,
            dry_run=options.dry_run,
            rows=done,
            accepted=counts[RowOutcome.ACCEPTED],
            unchanged=counts[RowOutcome.UNCHANGED],
            rejected=counts[RowOutcome.REJECTED],
            possible_duplicates=counts[RowOutcome.POSSIBLE_DUPLICATE],
        )
        if import_id:
            self._finish(caller, summary)
        yield ImportProgress(done, done, (), summary)

    def _validated(self, number: int, checked: CheckedRow) -> _Row:
        """The cells' problems, then those the record's rules find in what the cells gave (one per field)."""
        try:
            return _Row(number, checked, self._registry.validate(checked.command))
        except errors.InvalidInput as invalid:
            reported = {v.field for v in checked.problems}
            checked.problems += [v for v in invalid.violations if v.field not in reported]
            return _Row(number, checked)

    def _outcomes(
        self,
        caller: Principal,
        rows: list[_Row],
        in_file: _InFileIndex,
        imported_before: dict[int, str],
        registered_now: set[str],
        options: ImportOptions,
    ) -> list[RowResult]:
        """Each row's outcome before anything is registered: steps 1-4 of the module's description."""
        problems = {row.number: [_problem(v.field, v.message) for v in row.checked.problems] for row in rows}
        for row in rows:
            if not problems[row.number]:
                problems[row.number] = in_file.add(row)
        in_register = self._registered(caller, [row.identity_number for row in rows if not problems[row.number]])
        results = []
        for row in rows:
            if problems[row.number]:
                results.append(RowResult(row.number, RowOutcome.REJECTED, tuple(problems[row.number])))
            elif child_id := in_register.get(row.identity_number, ""):
                results.append(
                    RowResult(row.number, RowOutcome.UNCHANGED, child_id=child_id, note="already in the register")
                )
            elif child_id := imported_before.get(row.number, ""):
                note = "imported before from this file"
                results.append(RowResult(row.number, RowOutcome.UNCHANGED, child_id=child_id, note=note))
            else:
                results.append(self._match(row, registered_now, options))
        return results

    def _registered(self, caller: Principal, identity_numbers: Iterable[str]) -> dict[str, str]:
        """Identity number -> child id, for the numbers already in the register (one blind-index query)."""
        digests = {self._blind_index.digest(n, field=IDENTITY_FIELD): n for n in identity_numbers if n}
        if not digests:
            return {}
        with self._database.unit_of_work(caller.tenant) as uow:
            found = uow.session.execute(
                select(ChildRecord.identity_number_index, ChildRecord.id).where(
                    ChildRecord.tenant_id == caller.tenant, ChildRecord.identity_number_index.in_(digests)
                )
            ).all()
        return {digests[index]: child_id for index, child_id in found if index}

    def _match(self, row: _Row, registered_now: set[str], options: ImportOptions) -> RowResult:
        command = row.checked.command
        probe = MatchProbe(
            name=command.legal_name,
            identity_number=command.identity_number,
            birth_date=command.birth_date,
            sex=command.sex,
            guardian_names=row.checked.guardian_names,
            division_code=command.residence_division_code,
            school=command.school,
        )
        candidates = self._registry.match_child(probe, MATCH_CANDIDATES)
        best = next((c for c in candidates if c.child.child_id not in registered_now), None)
        if best is None or best.score < DEFAULT_THRESHOLD:
            return RowResult(row.number, RowOutcome.ACCEPTED)
        note = f"possible duplicate of {best.child.child_id} (score {best.score:.2f}: {'; '.join(best.reasons)})"
        if options.register_possible_duplicates:
            return RowResult(row.number, RowOutcome.ACCEPTED, note=note + "; registered as asked")
        return RowResult(row.number, RowOutcome.POSSIBLE_DUPLICATE, child_id=best.child.child_id, note=note)

    def _record_child(
        self, result: RowResult, row: _Row, options: ImportOptions, registered_now: set[str]
    ) -> RowResult:
        """Register an accepted row, then its family and categories, as the API's use cases would."""
        if result.outcome is not RowOutcome.ACCEPTED:
            return result
        checked = row.checked
        try:
            child = self._registry.register_child(checked.command)
        except errors.InvalidInput as invalid:
            return RowResult(
                row.number, RowOutcome.REJECTED, tuple(_problem(v.field, v.message) for v in invalid.violations)
            )
        except errors.Conflict as conflict:  # the same number registered by someone else since the check
            return RowResult(row.number, RowOutcome.REJECTED, (_problem(IDENTITY_FIELD, str(conflict)),))
        registered_now.add(child.child_id)
        notes = [result.note] if result.note else []
        for member in checked.family:
            try:
                self._casework.add_family_member(child.child_id, member)
            except errors.DomainError as refused:
                notes.append(f"{member.relationship.label} not recorded: {refused}")
        evidence = checked.category_evidence or f"排查摸底表 {options.file_name} 第{row.number}行"
        for category in checked.categories:
            try:
                self._casework.add_category(NewCategory(child.child_id, category.value, SURVEY, evidence=evidence))
            except errors.DomainError as refused:
                notes.append(f"category {category.value} not recorded: {refused}")
        return RowResult(row.number, RowOutcome.ACCEPTED, child_id=child.child_id, note="; ".join(notes))

    def _keep(self, caller: Principal, import_id: str, results: list[RowResult]) -> None:
        """Each row's outcome, so that importing the file again finds the rows it registered."""
        with self._database.unit_of_work(caller.tenant) as uow:
            uow.session.execute(
                insert(SurveyImportRowRecord),
                [
                    {
                        "import_id": import_id,
                        "row_number": r.row_number,
                        "tenant_id": caller.tenant,
                        "outcome": r.outcome.value,
                        "child_id": r.child_id,
                        "note": r.note,
                        "problems": [{"field": p.field, "reason": p.reason} for p in r.problems],
                    }
                    for r in results
                ],
            )
            uow.commit()

    def _finish(self, caller: Principal, summary: ImportSummary) -> None:
        with self._database.unit_of_work(caller.tenant) as uow:
            record = uow.session.get(SurveyImportRecord, summary.import_id)
            if record is None:
                raise errors.NotFound("the import's record has gone")
            record.finished_at = self._now()
            record.rows = summary.rows
            record.accepted = summary.accepted
            record.unchanged = summary.unchanged
            record.rejected = summary.rejected
            record.possible_duplicates = summary.possible_duplicates
            uow.commit()

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
    """Row number -> child id, for the rows of this same file registered or found by earlier imports."""
    found = session.execute(
        select(SurveyImportRowRecord.row_number, SurveyImportRowRecord.child_id)
        .join(SurveyImportRecord, SurveyImportRecord.id == SurveyImportRowRecord.import_id)
        .where(
            SurveyImportRecord.tenant_id == tenant,
            SurveyImportRecord.file_sha256 == sha256,
            SurveyImportRowRecord.outcome.in_([RowOutcome.ACCEPTED.value, RowOutcome.UNCHANGED.value]),
            SurveyImportRowRecord.child_id != "",
        )
    )
    return {number: child_id for number, child_id in found}


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
