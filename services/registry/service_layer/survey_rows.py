"""The survey spreadsheet's columns and how one row's cells are read (排查摸底表).

This is the spreadsheet half of a row's validation: cells that are not dates, codes that are not in the
code lists, required cells left empty, division codes outside the town. The record's own rules (identity
number checksum, birth date and sex against the number, a birth date in the future, lengths, disability
type with grade...) are not repeated here: survey_import.py applies RegistryService's, the ones RegisterChild
applies. A cell with a problem is left out of the command, so each problem is reported once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

from platform_runtime import errors
from services.registry.adapters.spreadsheets import Cell
from services.registry.domain.child import ContactPerson
from services.registry.domain.codes import (
    DifficultyCategory,
    DisabilityGrade,
    DisabilityType,
    Ethnicity,
    LabelledEnum,
    Relationship,
    Sex,
)
from services.registry.domain.errors import InvalidInput as InvalidIdentity
from services.registry.domain.family import FamilyMember
from services.registry.domain.identity import parse_identity_number
from services.registry.service_layer.commands import RegisterChild

DATA_SHEET = "排查摸底"
SEE_INSTRUCTIONS = "unknown code (see the sheet 填写说明)"
_LIST_SEPARATORS = re.compile(r"[;；,，|\n]+")  # not 、: category labels contain it


@dataclass(frozen=True)
class Column:
    field: str  # the field code: RegisterChild's name where it has one
    label: str
    required: bool = False
    note: str = ""
    codes: type[LabelledEnum] | None = None  # the code list, listed on the instructions sheet
    text: bool = False  # Excel must keep it as typed (long numbers, leading zeros)

    @property
    def header(self) -> str:
        return f"{'*' if self.required else ''}{self.label}({self.field})"


_OR_NAME = "代码或名称"
COLUMNS = (
    Column("legal_name", "姓名", required=True),
    Column("other_names", "曾用名", note="多个用分号(;)分隔"),
    Column("sex", "性别", required=True, note=_OR_NAME + "；填了公民身份号码可不填", codes=Sex),
    Column("birth_date", "出生日期", required=True, note="如 2016-05-12；填了公民身份号码可不填"),
    Column("identity_number", "公民身份号码", note="18位；没有可不填", text=True),
    Column("ethnicity_code", "民族", note=_OR_NAME + "（GB 3304）", codes=Ethnicity, text=True),
    Column("household_division_code", "户籍地区划代码", note="9位乡镇(街道)或12位村(居)代码", text=True),
    Column("household_address", "户籍地址"),
    Column(
        "residence_division_code",
        "现居住地区划代码",
        required=True,
        note="本乡镇(街道)代码，或其下村(居)委会的12位代码",
        text=True,
    ),
    Column("residence_address", "现居住地址"),
    Column("school", "就读学校"),
    Column("grade", "年级"),
    Column("disability_type", "残疾类别", note=_OR_NAME + "（GB/T 26341）", codes=DisabilityType),
    Column("disability_grade", "残疾等级", note=_OR_NAME + "，与残疾类别同填", codes=DisabilityGrade, text=True),
    Column("serious_illness", "重病情况", note="无则不填"),
    Column(
        "categories",
        "困境类别",
        note=_OR_NAME + "，多个用分号(;)分隔；规则认定的类别（事实无人抚养、0-3岁、年满18岁）由系统计算，不填",
        codes=DifficultyCategory,
    ),
    Column("category_evidence", "困境类别依据", note="不填则记为“排查摸底表第N行”"),
    Column("father_name", "父亲姓名"),
    Column("mother_name", "母亲姓名"),
    Column("guardian_name", "其他监护人姓名", note="父母以外的实际监护人"),
    Column("guardian_relationship", "其他监护人关系", note=_OR_NAME + "，与其他监护人姓名同填", codes=Relationship),
    Column("contact_name", "联系人姓名"),
    Column("contact_relationship", "联系人关系"),
    Column("contact_phone", "联系电话", text=True),
)
COLUMN_BY_FIELD = {column.field: column for column in COLUMNS}
# The record's rules name some fields differently from the columns.
COLUMN_OF_FIELD = {"contact_person.phone": "contact_phone", "contact_person": "contact_name"}
REQUIRED_WITHOUT_IDENTITY = ("sex", "birth_date")  # read from the identity number when it is given

_CODE_IN_HEADER = re.compile(r"[(（]\s*([A-Za-z_]+)\s*[)）]")
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_REQUIRED_OR_ID = "is required (or give the identity number)"
# Statistical village codes (NBS): 001-199 residents' committees, 200-399 villagers' committees.
_VILLAGE_NUMBERS = range(1, 400)


def map_header(header: list[str]) -> dict[str, int]:
    """Field code -> column index. Headers are matched by the code in brackets, the Chinese label or
    the bare code, so staff may reorder, drop optional columns or add their own (ignored)."""
    by_label = {column.label: column.field for column in COLUMNS}
    found: dict[str, int] = {}
    for index, title in enumerate(header):
        code = _CODE_IN_HEADER.search(title)
        name = code.group(1) if code else title.strip(" *＊")
        field_code = name if name in COLUMN_BY_FIELD else by_label.get(name)
        if field_code and field_code not in found:
            found[field_code] = index
    missing = [column.header for column in COLUMNS if column.required and column.field not in found]
    if missing:
        raise errors.InvalidInput("the header row (row 1) lacks the required columns " + "、".join(missing), "file")
    return found


@dataclass
class CheckedRow:
    """One row as read: what to record for it (cells with problems left out) and the problems."""

    command: RegisterChild
    categories: tuple[DifficultyCategory, ...] = ()
    category_evidence: str = ""
    family: tuple[FamilyMember, ...] = ()
    problems: list[errors.FieldViolation] = field(default_factory=list)

    @property
    def guardian_names(self) -> tuple[str, ...]:
        return tuple(member.name for member in self.family)


def read_row(cells: Mapping[str, Cell], tenant: str) -> CheckedRow:
    """Read one row's cells (field code -> raw cell) for the town `tenant`."""
    problems: list[errors.FieldViolation] = []
    typed = {column.field: _text(cells.get(column.field)) for column in COLUMNS}
    text = dict(typed)  # what goes into the command

    def problem(field_code: str, reason: str) -> None:
        problems.append(errors.FieldViolation(field_code, reason))
        text[field_code] = ""  # left out of the command, so the record's rules do not report it again

    if isinstance(cells.get("identity_number"), int | float):
        problem("identity_number", "was stored as a number, so Excel kept only 15 digits: format the column as text")
    encoded = _encoded(text["identity_number"])
    for field_code in ("legal_name", "residence_division_code", *REQUIRED_WITHOUT_IDENTITY):
        if not typed[field_code] and not (field_code in REQUIRED_WITHOUT_IDENTITY and encoded):
            problem(field_code, _REQUIRED_OR_ID if field_code in REQUIRED_WITHOUT_IDENTITY else "is required")

    def code(field_code: str, enum_class: type[_E]) -> _E | None:
        found = _code(enum_class, typed[field_code])
        if typed[field_code] and found is None:
            problem(field_code, SEE_INSTRUCTIONS)
        return found

    sex = code("sex", Sex)
    ethnicity = code("ethnicity_code", Ethnicity)
    disability_type = code("disability_type", DisabilityType)
    disability_grade = code("disability_grade", DisabilityGrade)
    relationship = code("guardian_relationship", Relationship)
    birth_date, reason = _date(cells.get("birth_date"), typed["birth_date"])
    if reason:
        problem("birth_date", reason)
    if typed["residence_division_code"] and not in_town(typed["residence_division_code"], tenant):
        problem("residence_division_code", f"unknown division code: neither this town ({tenant}) nor a village of it")
    if bool(typed["guardian_name"]) != bool(typed["guardian_relationship"]):
        problem("guardian_relationship", "the other guardian's name and relationship go together")

    categories: list[DifficultyCategory] = []
    for name in _split(typed["categories"]):
        category = _code(DifficultyCategory, name)
        if category is None:
            problem("categories", SEE_INSTRUCTIONS)
        elif category.is_derived:
            problem("categories", f"{category.value} is derived by rules from the record and cannot be typed in")
        elif category not in categories:
            categories.append(category)

    family = [FamilyMember(r, text[f]) for f, r in _PARENTS.items() if text[f]]
    if text["guardian_name"] and relationship:
        family.append(FamilyMember(relationship, text["guardian_name"], guardian=True))
    command = RegisterChild(
        legal_name=text["legal_name"],
        other_names=_split(text["other_names"]),
        # An empty sex or birth date cell is read from the identity number.
        sex=sex or (encoded.sex if encoded and not typed["sex"] else Sex.UNKNOWN),
        birth_date=birth_date or (encoded.birth_date if encoded and not typed["birth_date"] else None),
        identity_number=text["identity_number"],
        ethnicity_code=ethnicity.value if ethnicity else "",
        household_division_code=text["household_division_code"],
        household_address=text["household_address"],
        residence_division_code=_town_or_village(text["residence_division_code"], tenant),
        residence_address=text["residence_address"],
        school=text["school"],
        grade=text["grade"],
        disability_type=disability_type.value if disability_type else "",
        disability_grade=disability_grade.value if disability_grade else "",
        serious_illness=text["serious_illness"],
        contact_person=ContactPerson(text["contact_name"], text["contact_relationship"], text["contact_phone"]),
    )
    return CheckedRow(command, tuple(categories), text["category_evidence"], tuple(family), problems)


def in_town(code: str, tenant: str) -> bool:
    """The town itself (9 digits, or 12 ending in 000) or one of its villages (12 digits)."""
    if code in (tenant, tenant + "000"):
        return True
    return len(code) == 12 and code.isdigit() and code.startswith(tenant) and int(code[9:]) in _VILLAGE_NUMBERS


def _town_or_village(code: str, tenant: str) -> str:
    return tenant if code == tenant + "000" else code


_PARENTS = {"father_name": Relationship.FATHER, "mother_name": Relationship.MOTHER}
_E = TypeVar("_E", bound=LabelledEnum)


def _code(enum_class: type[_E], typed: str) -> _E | None:
    """The code list's member typed as its code or its name (汉族 or 汉, 男 or 男性, 一级...)."""
    if not typed:
        return None
    for member in enum_class:
        # Names also without their suffix: 汉 for 汉族, 男 for 男性.
        if typed in (member.value, member.label, member.label.removesuffix("族"), member.label.removesuffix("性")):
            return member
    if typed.isdigit() and len(typed) < 2:
        return _code(enum_class, typed.zfill(2))  # Excel drops the leading zero of 01 typed as a number
    return None


def _encoded(identity_number: str) -> _Encoded | None:
    """Birth date and sex read from a valid identity number, to fill cells left empty."""
    if not identity_number:
        return None
    try:
        identity = parse_identity_number(identity_number)
    except InvalidIdentity:
        return None  # the record's rules report why
    return _Encoded(identity.birth_date, identity.sex)


@dataclass(frozen=True)
class _Encoded:
    birth_date: date
    sex: Sex


def _text(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.date().isoformat()
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def _date(cell: Cell, text: str) -> tuple[date | None, str]:
    """The date of a cell (an Excel date, or text written in the usual ways), or why there is none."""
    if not text:
        return None, ""
    if isinstance(cell, datetime):
        return cell.date(), ""
    found = _DATE.match(text) or _COMPACT_DATE.match(text)
    if not found:
        return None, "is not a date: write it as 2016-05-12"
    try:
        return date(*(int(part) for part in found.groups())), ""
    except ValueError:
        return None, "is not a real date (no such day in the calendar)"


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in _LIST_SEPARATORS.split(value) if part.strip())
