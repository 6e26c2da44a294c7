"""The survey's workbooks: the template a town fills in, and the classified register (分类台账) exported."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import func, select

from platform_runtime import errors
from platform_runtime.tenancy import require_role
from services.registry.adapters.orm import ChildRecord
from services.registry.adapters.spreadsheets import Cell, Sheet, write_workbook
from services.registry.domain.child import ChildView
from services.registry.domain.codes import DifficultyCategory, DisabilityGrade, DisabilityType, Ethnicity
from services.registry.service_layer import survey_rows
from services.registry.service_layer.access import CASEWORK_ROLES, READER_ROLES, require_purpose
from services.registry.service_layer.child_views import child_views
from services.registry.service_layer.scope import Scope
from services.registry.service_layer.survey_rows import COLUMNS, DATA_SHEET
from services.registry.service_layer.survey_runs import SurveyUseCases, town_name

UNCATEGORISED = "未分类"


class SurveyExport(SurveyUseCases):
    def template(self) -> tuple[str, bytes]:
        """The .xlsx template for the caller's town: the data sheet, and the instructions with every code."""
        caller = require_role(*CASEWORK_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            town = town_name(uow.session, caller)
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
            town_name(uow.session, caller)
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
