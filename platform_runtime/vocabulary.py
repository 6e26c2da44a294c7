"""The code lists that cross services, each code with the Chinese label staff see, and the one way to label them.

A code list is a `LabelledEnum`: a StrEnum (the value is what is stored and sent) whose members have a
Chinese `label`, set once below the enum by `set_labels`. The lists here are spoken by more than one
service or by the gateway; their codes are the contract's enums in `minorprot/common/v1/vocabulary.proto`
(and `common.proto`'s `Sex`, `reporting.proto`'s `Channel`), kept equal by a test. A service's own code
lists stay in its domain and use the same mechanism. Pure Python: no protobuf (see `vocabulary_messages`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import TypeVar

# Dates that people see (received dates, working days, ages, due dates) are taken in Beijing time; China
# has no daylight saving time.
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")


def china_today() -> date:
    """Today in Beijing: the day a caseworker means (a server on UTC is still on yesterday until 08:00 CST)."""
    return datetime.now(CHINA_STANDARD_TIME).date()


class LabelledEnum(StrEnum):
    """A StrEnum whose members have a Chinese `label` (set once, below each enum, with `set_labels`)."""

    @property
    def label(self) -> str:
        return _LABELS[type(self)][self]


_E = TypeVar("_E", bound=LabelledEnum)
# One table per enum class: members of different enums may share a value ("1"), and StrEnum
# members hash like their value, so a single table would mix them up.
_LABELS: dict[type[LabelledEnum], Mapping[LabelledEnum, str]] = {}


def set_labels(enum_class: type[_E], labels: Mapping[_E, str]) -> None:
    """Give every member of `enum_class` its label; a member without one fails at import."""
    missing = [member.name for member in enum_class if member not in labels]
    if missing:
        raise RuntimeError(f"{enum_class.__name__}: no label for {missing}")
    table: dict[LabelledEnum, str] = {member: labels[member] for member in enum_class}
    _LABELS[enum_class] = table


class Sex(LabelledEnum):
    """GB/T 2261.1-2003 codes."""

    UNKNOWN = "0"
    MALE = "1"
    FEMALE = "2"
    UNSPECIFIED = "9"

    @property
    def is_known(self) -> bool:
        return self in (Sex.MALE, Sex.FEMALE)

    @property
    def code(self) -> str:
        """The contract's name (`male`, `female`, ...): what reports and the portal's forms and API use."""
        return self.name.lower()


set_labels(
    Sex,
    {Sex.UNKNOWN: "未知的性别", Sex.MALE: "男性", Sex.FEMALE: "女性", Sex.UNSPECIFIED: "未说明的性别"},
)
KNOWN_SEXES: tuple[Sex, ...] = (Sex.MALE, Sex.FEMALE)


class Channel(LabelledEnum):
    """How a report reached the programme (`minorprot.reporting.v1.Channel`)."""

    MANDATED_REPORTER = "mandated_reporter"
    AGENCY_SHARE = "agency_share"
    STAFF_HOTLINE = "staff_hotline"
    STAFF_WALK_IN = "staff_walk_in"
    RELATIVE = "relative"
    NEIGHBOUR = "neighbour"
    PUBLIC_ANONYMOUS = "public_anonymous"
    PUBLIC_NAMED = "public_named"


set_labels(
    Channel,
    {
        Channel.MANDATED_REPORTER: "特殊职责人员报告",
        Channel.AGENCY_SHARE: "部门信息通报",
        Channel.STAFF_HOTLINE: "热线来电",
        Channel.STAFF_WALK_IN: "来访登记",
        Channel.RELATIVE: "亲友报告",
        Channel.NEIGHBOUR: "邻里报告",
        Channel.PUBLIC_ANONYMOUS: "公众匿名报告",
        Channel.PUBLIC_NAMED: "公众实名报告",
    },
)


class ReporterRole(LabelledEnum):
    """Role of a reporter with special duties (特殊职责人员); used with `Channel.MANDATED_REPORTER`."""

    TEACHER = "teacher"
    DOCTOR = "doctor"
    COMMUNITY_WORKER = "community_worker"
    CHILD_DIRECTOR = "child_director"
    OTHER_MANDATED = "other_mandated"


set_labels(
    ReporterRole,
    {
        ReporterRole.TEACHER: "教师",
        ReporterRole.DOCTOR: "医生",
        ReporterRole.COMMUNITY_WORKER: "社区工作者",
        ReporterRole.CHILD_DIRECTOR: "儿童主任",
        ReporterRole.OTHER_MANDATED: "其他特殊职责人员",
    },
)


class AgencyKind(LabelledEnum):
    """Member unit sharing information (部门信息通报); used with `Channel.AGENCY_SHARE`."""

    POLICE = "police"
    EDUCATION = "education"
    HEALTH = "health"
    JUSTICE = "justice"
    COURT = "court"
    PROCURATORATE = "procuratorate"
    WOMENS_FEDERATION = "womens_federation"
    CIVIL_AFFAIRS = "civil_affairs"
    # The plan gives urban management the same escort duties as the police.
    URBAN_MANAGEMENT = "urban_management"


set_labels(
    AgencyKind,
    {
        AgencyKind.POLICE: "公安",
        AgencyKind.EDUCATION: "教育",
        AgencyKind.HEALTH: "卫生",
        AgencyKind.JUSTICE: "司法",
        AgencyKind.COURT: "法院",
        AgencyKind.PROCURATORATE: "检察院",
        AgencyKind.WOMENS_FEDERATION: "妇联",
        AgencyKind.CIVIL_AFFAIRS: "民政",
        AgencyKind.URBAN_MANAGEMENT: "城管执法",
    },
)


class SituationType(LabelledEnum):
    # The plan's difficulty categories (困境类别) and the ones implementation also tracks.
    DE_FACTO_UNATTENDED = "de_facto_unattended"
    IMPROPERLY_GUARDED = "improperly_guarded"
    POVERTY_DROPOUT_RISK = "poverty_dropout_risk"
    WANDERING = "wandering"
    TRAFFICKED_OR_ILLEGALLY_EMPLOYED = "trafficked_or_illegally_employed"
    INTELLECTUAL_OR_MENTAL = "intellectual_or_mental"
    OUT_OF_SCHOOL = "out_of_school"
    NO_EFFECTIVE_GUARDIAN = "no_effective_guardian"
    # The nine situations of the 2020 mandatory-reporting rules (强制报告), in their order.
    PRIVATE_PARTS_INJURY = "private_parts_injury"
    GIRL_UNDER_14_SEXUAL_ASSAULT = "girl_under_14_sexual_assault"
    GIRL_14_PLUS_PREGNANT_BY_ASSAULT = "girl_14_plus_pregnant_by_assault"
    VIOLENCE_INJURY_SIGNS = "violence_injury_signs"
    ABNORMAL_INJURY_OR_DEATH = "abnormal_injury_or_death"
    ABANDONED_OR_UNCARED = "abandoned_or_uncared"
    UNKNOWN_ORIGIN_MISSING_TRAFFICKED = "unknown_origin_missing_trafficked"
    ORGANISED_BEGGING = "organised_begging"
    OTHER_SERIOUS_HARM = "other_serious_harm"


set_labels(
    SituationType,
    {
        SituationType.DE_FACTO_UNATTENDED: "实际无人监护(监护人服刑、重病、遗弃等)",
        SituationType.IMPROPERLY_GUARDED: "监护不当(经常性忽视、家庭暴力)",
        SituationType.POVERTY_DROPOUT_RISK: "因家庭贫困面临辍学和失去基本生活保障",
        SituationType.WANDERING: "流浪(有流浪经历)",
        SituationType.TRAFFICKED_OR_ILLEGALLY_EMPLOYED: "被拐卖、非法雇佣",
        SituationType.INTELLECTUAL_OR_MENTAL: "智障、精神异常",
        SituationType.OUT_OF_SCHOOL: "失学、辍学、逃学",
        SituationType.NO_EFFECTIVE_GUARDIAN: "无监护人或监护人监护不力",
        SituationType.PRIVATE_PARTS_INJURY: "生殖器官或隐私部位遭受或疑似遭受非正常损伤",
        SituationType.GIRL_UNDER_14_SEXUAL_ASSAULT: "不满十四周岁的女性未成年人遭受或疑似遭受性侵害、怀孕、流产",
        SituationType.GIRL_14_PLUS_PREGNANT_BY_ASSAULT: "十四周岁以上女性未成年人遭受或疑似遭受性侵害所致怀孕、流产",
        SituationType.VIOLENCE_INJURY_SIGNS: (
            "身体存在多处损伤、严重营养不良、意识不清,存在或疑似存在受到家庭暴力、欺凌、虐待、殴打或者被人麻醉等情形"
        ),
        SituationType.ABNORMAL_INJURY_OR_DEATH: "因自杀、自残、工伤、中毒、被人麻醉、殴打等非正常原因导致伤残、死亡",
        SituationType.ABANDONED_OR_UNCARED: "被遗弃或长期处于无人照料状态",
        SituationType.UNKNOWN_ORIGIN_MISSING_TRAFFICKED: "来源不明、失踪或者被拐卖、收买",
        SituationType.ORGANISED_BEGGING: "被组织乞讨",
        SituationType.OTHER_SERIOUS_HARM: "其他严重侵害未成年人身心健康的情形或正在面临不法侵害危险",
    },
)
PLAN_CATEGORIES: frozenset[SituationType] = frozenset(
    {
        SituationType.DE_FACTO_UNATTENDED,
        SituationType.IMPROPERLY_GUARDED,
        SituationType.POVERTY_DROPOUT_RISK,
        SituationType.WANDERING,
        SituationType.TRAFFICKED_OR_ILLEGALLY_EMPLOYED,
        SituationType.INTELLECTUAL_OR_MENTAL,
        SituationType.OUT_OF_SCHOOL,
        SituationType.NO_EFFECTIVE_GUARDIAN,
    }
)
MANDATORY_REPORTING_SITUATIONS: frozenset[SituationType] = frozenset(SituationType) - PLAN_CATEGORIES


class Fact(LabelledEnum):
    """Observed facts that triage and escort rules look at besides the situation types."""

    CHILD_ALONE = "child_alone"
    INJURED = "injured"
    MINOR_OFFENCES = "minor_offences"
    BEGGING_WITH_ADULTS = "begging_with_adults"


set_labels(
    Fact,
    {
        Fact.CHILD_ALONE: "独自一人、无成年人陪伴",
        Fact.INJURED: "有伤情",
        Fact.MINOR_OFFENCES: "有轻微违法行为",
        Fact.BEGGING_WITH_ADULTS: "与父母或其他成年人共同乞讨",
    },
)


class Urgency(LabelledEnum):
    """How urgent a report is (`minorprot.reporting.v1.Urgency`)."""

    CRISIS = "crisis"
    URGENT = "urgent"
    NORMAL = "normal"

    @property
    def rank(self) -> int:
        """Higher is more urgent."""
        return _URGENCY_RANK[self]


set_labels(Urgency, {Urgency.CRISIS: "危机", Urgency.URGENT: "紧急", Urgency.NORMAL: "一般"})
_URGENCY_RANK: Mapping[Urgency, int] = {Urgency.NORMAL: 0, Urgency.URGENT: 1, Urgency.CRISIS: 2}


def most_urgent(urgencies: Iterable[Urgency]) -> Urgency:
    return max(urgencies, key=lambda u: u.rank, default=Urgency.NORMAL)


class ReportStatus(LabelledEnum):
    """Where a report is in its handling (its transitions are the reporting domain's)."""

    RECEIVED = "received"
    TRIAGED = "triaged"
    LINKED = "linked"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"
    NEEDS_ATTENTION = "needs_attention"


set_labels(
    ReportStatus,
    {
        ReportStatus.RECEIVED: "已接收",
        ReportStatus.TRIAGED: "已分级",
        ReportStatus.LINKED: "已关联",
        ReportStatus.IN_PROGRESS: "处理中",
        ReportStatus.CLOSED: "已办结",
        ReportStatus.NEEDS_ATTENTION: "需人工处理",
    },
)


class PersonTriage(LabelledEnum):
    """A person's check of a report from the public before any agency acts on it (no crisis waits for it)."""

    AWAITING = "awaiting"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


set_labels(
    PersonTriage,
    {
        PersonTriage.AWAITING: "待人工分诊",
        PersonTriage.CONFIRMED: "已人工确认",
        PersonTriage.REJECTED: "人工分诊未采信",
    },
)
