"""The shared code lists: labelled, equal to the contract's enums, and defined nowhere else."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from minorprot.common.v1 import common_pb2, vocabulary_pb2
from minorprot.reporting.v1 import reporting_pb2

from platform_runtime import vocabulary
from platform_runtime.vocabulary import (
    CHINA_STANDARD_TIME,
    KNOWN_SEXES,
    MANDATORY_REPORTING_SITUATIONS,
    PLAN_CATEGORIES,
    AgencyKind,
    Channel,
    Fact,
    LabelledEnum,
    ReporterRole,
    ReportStatus,
    Sex,
    SituationType,
    Urgency,
    most_urgent,
    set_labels,
)
from platform_runtime.vocabulary_messages import known_sex_from_proto, sex_from_proto, sex_to_proto

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = [Sex, Channel, ReporterRole, AgencyKind, SituationType, Fact, Urgency, ReportStatus]
# Each code list and the contract's enum listing its codes (SITUATION_TYPE_WANDERING is "wandering").
CONTRACT: list[tuple[type[LabelledEnum], Any, str]] = [
    (Channel, reporting_pb2.DESCRIPTOR.enum_types_by_name["Channel"], "CHANNEL_"),
    (Urgency, reporting_pb2.DESCRIPTOR.enum_types_by_name["Urgency"], "URGENCY_"),
    (ReporterRole, vocabulary_pb2.DESCRIPTOR.enum_types_by_name["ReporterRole"], "REPORTER_ROLE_"),
    (AgencyKind, vocabulary_pb2.DESCRIPTOR.enum_types_by_name["AgencyKind"], "AGENCY_KIND_"),
    (SituationType, vocabulary_pb2.DESCRIPTOR.enum_types_by_name["SituationType"], "SITUATION_TYPE_"),
    (Fact, vocabulary_pb2.DESCRIPTOR.enum_types_by_name["Fact"], "FACT_"),
    (ReportStatus, vocabulary_pb2.DESCRIPTOR.enum_types_by_name["ReportStatus"], "REPORT_STATUS_"),
]


@pytest.mark.parametrize("enum_class", SHARED)
def test_every_code_has_a_chinese_label_and_is_its_value(enum_class: type[LabelledEnum]) -> None:
    assert issubclass(enum_class, StrEnum)
    for member in enum_class:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in member.label), member
        assert enum_class(member.value) is member
        assert str(member) == member.value


@pytest.mark.parametrize(("enum_class", "contract", "prefix"), CONTRACT)
def test_each_code_list_is_the_contracts_enum(enum_class: type[LabelledEnum], contract: Any, prefix: str) -> None:
    listed = [value.name.removeprefix(prefix) for value in contract.values if value.number != 0]
    assert sorted(listed) == sorted(member.name for member in enum_class)
    assert all(member.value == member.name.lower() for member in enum_class)


def test_sex_is_gb_t_2261_and_maps_to_the_contract_once() -> None:
    assert [s.value for s in Sex] == ["0", "1", "2", "9"]
    assert Sex.MALE.label == "男性" and Sex.MALE.code == "male"
    assert KNOWN_SEXES == (Sex.MALE, Sex.FEMALE)
    assert {f"SEX_{s.name}" for s in Sex} == set(common_pb2.Sex.keys())
    for sex in Sex:
        assert sex_to_proto(sex) == common_pb2.Sex.Value(f"SEX_{sex.name}")
    assert sex_to_proto(None) == common_pb2.SEX_UNKNOWN
    assert sex_from_proto(common_pb2.SEX_FEMALE) is Sex.FEMALE
    assert sex_from_proto(common_pb2.SEX_UNSPECIFIED) is Sex.UNKNOWN
    assert sex_from_proto(42) is Sex.UNKNOWN  # newer than this code
    assert known_sex_from_proto(common_pb2.SEX_MALE) is Sex.MALE
    assert known_sex_from_proto(common_pb2.SEX_UNKNOWN) is None


def test_situations_are_the_plan_categories_and_the_nine_mandatory_situations() -> None:
    assert len(PLAN_CATEGORIES) == 8 and len(MANDATORY_REPORTING_SITUATIONS) == 9
    assert set(SituationType) == PLAN_CATEGORIES | MANDATORY_REPORTING_SITUATIONS


def test_urgency_ranks() -> None:
    assert most_urgent([Urgency.URGENT, Urgency.CRISIS]) is Urgency.CRISIS
    assert most_urgent([]) is Urgency.NORMAL


def test_labels_are_kept_per_enum_and_a_missing_one_fails_at_import() -> None:
    class Grade(LabelledEnum):
        ONE = "1"
        TWO = "2"

    with pytest.raises(RuntimeError, match="TWO"):
        set_labels(Grade, {Grade.ONE: "一级"})
    set_labels(Grade, {Grade.ONE: "一级", Grade.TWO: "二级"})
    assert Grade.ONE.value == Sex.MALE.value == "1"
    assert (Grade.ONE.label, Sex.MALE.label) == ("一级", "男性")


def test_china_standard_time_is_utc_plus_eight() -> None:
    assert CHINA_STANDARD_TIME.utcoffset(None) == timedelta(hours=8)
    assert datetime(2026, 1, 1, 16, tzinfo=UTC).astimezone(CHINA_STANDARD_TIME).day == 2


def _python_sources() -> list[Path]:
    roots = ("platform_runtime", "services", "gateway", "tests", "bench")
    return [path for root in roots for path in (REPO_ROOT / root).rglob("*.py")]


@pytest.mark.parametrize(
    "pattern",
    [
        r"timezone\(timedelta\(hours=8\)",  # the time zone
        r"^class Sex\b",  # GB/T 2261.1
        r"^class \w+\((?!LabelledEnum\))\w*Enum\):\n(?:.*\n){0,12}?\s+def label",  # another labelled-enum mechanism
        r"\blabel_zh\b",
    ],
)
def test_the_shared_vocabulary_is_defined_once(pattern: str) -> None:
    here = Path(vocabulary.__file__).resolve()
    found = [
        str(path.relative_to(REPO_ROOT))
        for path in _python_sources()
        if path.resolve() not in (here, Path(__file__).resolve())
        and re.search(pattern, path.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert not found, found
