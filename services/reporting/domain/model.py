"""The discovery report (发现报告): what was reported, by whom, through which channel, and how far it got.

Pure data and state rules only. Field rules that produce user-facing errors live in `validation`;
urgency comes from `triage`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import Enum

from services.reporting.domain.errors import Conflict, InvalidInput

# Dates that people see (received date, working days, ages) are taken in Beijing time; China has no DST.
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")


class _Labelled(Enum):
    """Enum whose members carry the Chinese label staff see on screens and documents."""

    @property
    def label_zh(self) -> str:
        return LABELS_ZH[self]


class Channel(_Labelled):
    MANDATED_REPORTER = "mandated_reporter"
    AGENCY_SHARE = "agency_share"
    STAFF_HOTLINE = "staff_hotline"
    STAFF_WALK_IN = "staff_walk_in"
    RELATIVE = "relative"
    NEIGHBOUR = "neighbour"
    PUBLIC_ANONYMOUS = "public_anonymous"
    PUBLIC_NAMED = "public_named"


class ReporterRole(_Labelled):
    """Role of a reporter with special duties (特殊职责人员); used with `Channel.MANDATED_REPORTER`."""

    TEACHER = "teacher"
    DOCTOR = "doctor"
    COMMUNITY_WORKER = "community_worker"
    CHILD_DIRECTOR = "child_director"
    OTHER_MANDATED = "other_mandated"


class AgencyKind(_Labelled):
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


class Sex(_Labelled):
    MALE = "male"
    FEMALE = "female"


class SituationType(_Labelled):
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


def requires_police_report(situations: Iterable[SituationType]) -> bool:
    """The 2020 rules oblige an immediate report to the police for any of the nine situations."""
    return any(s in MANDATORY_REPORTING_SITUATIONS for s in situations)


class Fact(_Labelled):
    """Observed facts that triage and escort rules look at besides the situation types."""

    CHILD_ALONE = "child_alone"
    INJURED = "injured"
    MINOR_OFFENCES = "minor_offences"
    BEGGING_WITH_ADULTS = "begging_with_adults"


class Urgency(_Labelled):
    CRISIS = "crisis"
    URGENT = "urgent"
    NORMAL = "normal"

    @property
    def rank(self) -> int:
        """Higher is more urgent."""
        return _URGENCY_RANK[self]


_URGENCY_RANK: Mapping[Urgency, int] = {Urgency.NORMAL: 0, Urgency.URGENT: 1, Urgency.CRISIS: 2}


def most_urgent(urgencies: Iterable[Urgency]) -> Urgency:
    return max(urgencies, key=lambda u: u.rank, default=Urgency.NORMAL)


class CrisisAction(_Labelled):
    """What must happen at once when a report declares a crisis (第一时间、危机介入、及时庇护)."""

    NOTIFY_TOWNSHIP_DUTY_OFFICER = "notify_township_duty_officer"
    NOTIFY_POLICE = "notify_police"
    ARRANGE_EMERGENCY_SHELTER = "arrange_emergency_shelter"


class EscortDestination(_Labelled):
    """Where police or urban management escort a child found wandering or begging (护送)."""

    CITY_MINOR_RESCUE_CENTRE = "city_minor_rescue_centre"
    CITY_SECOND_MINOR_RESCUE_CENTRE = "city_second_minor_rescue_centre"
    DISTRICT_RELIEF_STATION = "district_relief_station"


class ReportStatus(_Labelled):
    RECEIVED = "received"
    TRIAGED = "triaged"
    LINKED = "linked"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"
    NEEDS_ATTENTION = "needs_attention"


_R = ReportStatus
# Forward along the pipeline; any open report can be closed (with an outcome notice) or flagged when a
# downstream step fails; a flagged report resumes at whichever step a person or a retry completed.
ALLOWED_TRANSITIONS: Mapping[ReportStatus, frozenset[ReportStatus]] = {
    _R.RECEIVED: frozenset({_R.TRIAGED, _R.NEEDS_ATTENTION, _R.CLOSED}),
    _R.TRIAGED: frozenset({_R.LINKED, _R.NEEDS_ATTENTION, _R.CLOSED}),
    _R.LINKED: frozenset({_R.IN_PROGRESS, _R.NEEDS_ATTENTION, _R.CLOSED}),
    _R.IN_PROGRESS: frozenset({_R.NEEDS_ATTENTION, _R.CLOSED}),
    _R.NEEDS_ATTENTION: frozenset({_R.TRIAGED, _R.LINKED, _R.IN_PROGRESS, _R.CLOSED}),
    _R.CLOSED: frozenset(),
}


@dataclass(frozen=True)
class ChildInfo:
    """What the reporter knows about the child; everything is optional but a name or a description."""

    name: str | None = None
    sex: Sex | None = None
    birth_date: date | None = None
    approximate_age: int | None = None
    identity_number: str | None = None
    description: str | None = None
    school: str | None = None
    guardian_names: tuple[str, ...] = ()

    def age_on(self, day: date) -> int | None:
        """Age in whole years on `day`: from the birth date if known, else the reporter's estimate."""
        if self.birth_date is not None:
            before_birthday = (day.month, day.day) < (self.birth_date.month, self.birth_date.day)
            return day.year - self.birth_date.year - int(before_birthday)
        return self.approximate_age


@dataclass(frozen=True)
class Place:
    """GB/T 2260 division code (9 digits for a town/street, 12 for a village/community) plus free text."""

    division_code: str
    text: str = ""


@dataclass(frozen=True)
class Reporter:
    """Who reported; confidential (the law protects the reporter's identity)."""

    name: str | None = None
    phone: str | None = None
    organisation: str | None = None
    role: ReporterRole | None = None
    agency: AgencyKind | None = None


@dataclass(frozen=True)
class Submission:
    """A report as submitted, before it is stored; checked by `validation.validate_submission`."""

    channel: Channel
    child: ChildInfo
    place: Place
    occurred_at: datetime
    situations: frozenset[SituationType]
    narrative: str
    reporter: Reporter | None = None
    facts: frozenset[Fact] = frozenset()

    def child_age(self) -> int | None:
        """The child's age when it happened, as far as known."""
        return self.child.age_on(self.occurred_at.astimezone(CHINA_STANDARD_TIME).date())


OUTCOME_NOTICE_MAX_CHARS = 1000


@dataclass
class Report:
    """A stored report and how far its handling has got."""

    report_id: str
    tenant_id: str
    receipt: str
    received_at: datetime
    submission: Submission
    status: ReportStatus = ReportStatus.RECEIVED
    urgency: Urgency | None = None
    triage_rule_codes: tuple[str, ...] = ()
    child_id: str | None = None
    group_id: str | None = None
    outcome_notice: str | None = None
    attention_reason: str | None = None

    def __post_init__(self) -> None:
        # Last line of defence for the reporter's anonymity, whatever the caller validated.
        if self.submission.channel is Channel.PUBLIC_ANONYMOUS and self.submission.reporter is not None:
            raise ValueError("an anonymous report cannot carry a reporter")

    def record_triage(self, urgency: Urgency, rule_codes: tuple[str, ...]) -> None:
        self._move(ReportStatus.TRIAGED)
        self.urgency = urgency
        self.triage_rule_codes = rule_codes

    def check_linkable(self) -> None:
        """Raise `Conflict` unless `link` would succeed (asked before registering a child for the report)."""
        if self.urgency is None:
            raise Conflict("a report is triaged before it is linked")
        self._check_move(ReportStatus.LINKED)

    def link(self, child_id: str, group_id: str) -> None:
        self.check_linkable()
        self._move(ReportStatus.LINKED)
        self.child_id = child_id
        self.group_id = group_id

    def start_handling(self) -> None:
        if self.child_id is None:
            raise Conflict("a report is linked to a child before handling starts")
        self._move(ReportStatus.IN_PROGRESS)

    def flag_for_attention(self, reason: str) -> None:
        self._move(ReportStatus.NEEDS_ATTENTION)
        self.attention_reason = reason

    def give_outcome_notice(self, text: str) -> None:
        """The notice the reporter sees (Minors Protection Law 2020, Art. 11); never child or family data."""
        if self.status is ReportStatus.CLOSED:
            raise Conflict("the report is closed: its outcome notice is final")
        text = text.strip()
        if not text:
            raise InvalidInput.single("outcome_notice", "must not be empty")
        if len(text) > OUTCOME_NOTICE_MAX_CHARS:
            raise InvalidInput.single("outcome_notice", f"must be at most {OUTCOME_NOTICE_MAX_CHARS} characters")
        self.outcome_notice = text

    def close(self) -> None:
        # The law requires telling the reporter the outcome, so no report closes without a notice.
        if self.outcome_notice is None:
            raise Conflict("give an outcome notice before closing the report")
        self._move(ReportStatus.CLOSED)

    def _check_move(self, target: ReportStatus) -> None:
        if target not in ALLOWED_TRANSITIONS[self.status]:
            raise Conflict(f"a report cannot go from {self.status.value} to {target.value}")

    def _move(self, target: ReportStatus) -> None:
        self._check_move(target)
        if target is not ReportStatus.NEEDS_ATTENTION:
            self.attention_reason = None
        self.status = target


LABELS_ZH: Mapping[_Labelled, str] = {
    Channel.MANDATED_REPORTER: "特殊职责人员报告",
    Channel.AGENCY_SHARE: "部门信息通报",
    Channel.STAFF_HOTLINE: "热线来电",
    Channel.STAFF_WALK_IN: "来访登记",
    Channel.RELATIVE: "亲友报告",
    Channel.NEIGHBOUR: "邻里报告",
    Channel.PUBLIC_ANONYMOUS: "公众匿名报告",
    Channel.PUBLIC_NAMED: "公众实名报告",
    ReporterRole.TEACHER: "教师",
    ReporterRole.DOCTOR: "医生",
    ReporterRole.COMMUNITY_WORKER: "社区工作者",
    ReporterRole.CHILD_DIRECTOR: "儿童主任",
    ReporterRole.OTHER_MANDATED: "其他特殊职责人员",
    AgencyKind.POLICE: "公安",
    AgencyKind.EDUCATION: "教育",
    AgencyKind.HEALTH: "卫生",
    AgencyKind.JUSTICE: "司法",
    AgencyKind.COURT: "法院",
    AgencyKind.PROCURATORATE: "检察院",
    AgencyKind.WOMENS_FEDERATION: "妇联",
    AgencyKind.CIVIL_AFFAIRS: "民政",
    AgencyKind.URBAN_MANAGEMENT: "城管执法",
    Sex.MALE: "男",
    Sex.FEMALE: "女",
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
    Fact.CHILD_ALONE: "独自一人、无成年人陪伴",
    Fact.INJURED: "有伤情",
    Fact.MINOR_OFFENCES: "有轻微违法行为",
    Fact.BEGGING_WITH_ADULTS: "与父母或其他成年人共同乞讨",
    Urgency.CRISIS: "危机",
    Urgency.URGENT: "紧急",
    Urgency.NORMAL: "一般",
    CrisisAction.NOTIFY_TOWNSHIP_DUTY_OFFICER: "立即通知乡镇(街道)值班人员",
    CrisisAction.NOTIFY_POLICE: "向公安机关报告",
    CrisisAction.ARRANGE_EMERGENCY_SHELTER: "安排紧急庇护",
    EscortDestination.CITY_MINOR_RESCUE_CENTRE: "市未成年人救助保护中心",
    EscortDestination.CITY_SECOND_MINOR_RESCUE_CENTRE: "市第二未成年人救助保护中心",
    EscortDestination.DISTRICT_RELIEF_STATION: "区救助管理站",
    ReportStatus.RECEIVED: "已接收",
    ReportStatus.TRIAGED: "已分级",
    ReportStatus.LINKED: "已关联",
    ReportStatus.IN_PROGRESS: "处理中",
    ReportStatus.CLOSED: "已办结",
    ReportStatus.NEEDS_ATTENTION: "需人工处理",
}
