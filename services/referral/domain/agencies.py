"""The units a referral can go to: the leading group's member units (领导小组成员单位) with their duties, and the
places the escort rules take children to (the district relief station, the city's two rescue centres).

Data, not code: each district keeps its own directory (the district administrator edits it); `AGENCIES` is the
plan's, the one a district starts from. Codes are what an agency's token carries in its `agency` claim; where
reporting knows the same body as an `agency_kind`, the code is the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Level(StrEnum):
    CITY = "city"
    DISTRICT = "district"
    TOWN = "town"


@dataclass(frozen=True)
class Contacts:
    """Where the unit hears of its referrals: people with portal accounts, a duty phone, e-mail, a webhook."""

    user_ids: tuple[str, ...] = ()
    duty_phone: str = ""
    email: str = ""
    webhook: str = ""


@dataclass(frozen=True)
class Agency:
    code: str
    name_zh: str
    name_en: str
    duties: tuple[str, ...]
    kind: str = ""  # the body's kind (police, education, ...); the code where empty
    level: Level = Level.DISTRICT
    contacts: Contacts = field(default_factory=Contacts)
    # The unit that supervises this one (escalation step 1 goes to it); empty: its own leadership.
    supervisor: str = ""
    member: bool = True  # a member unit of the leading group (the receiving places are not)


CIVIL_AFFAIRS = "civil_affairs"
TOWN_GOVERNMENT = "town_government"
POLICE = "police"
EDUCATION = "education"
WOMENS_FEDERATION = "womens_federation"
DISABLED_PERSONS_FEDERATION = "disabled_persons_federation"
HEALTH = "health"
JUSTICE = "justice"
COURT = "court"
HUMAN_RESOURCES = "human_resources"
RELIEF_STATION = "relief_station"
CITY_RESCUE_CENTRE = "city_minor_rescue_centre"
CITY_SECOND_CENTRE = "city_second_minor_rescue_centre"

AGENCIES: tuple[Agency, ...] = (
    Agency(
        CIVIL_AFFAIRS,
        "区民政局",
        "Civil affairs bureau (lead; leading group office at its relief station 区民政局救助管理站)",
        (
            "统筹协调、定期通报 coordination and periodic briefings",
            "主动救助流浪儿童、跨区域返乡 active rescue and return of street children",
            "救助管理站临时庇护 temporary shelter at the relief station",
            "指导家庭申请福利 guiding families to apply for benefits",
            "购买社工服务、随访、评估 social-work services, follow-up visits, assessments",
        ),
    ),
    Agency(
        TOWN_GOVERNMENT,
        "试点乡镇(街道)政府",
        "Pilot town (street) government",
        level=Level.TOWN,
        duties=(
            "台账管理 register management",
            "监护与需求评估、帮扶计划 assessments and tailored assistance plans",
            "指定专人 named staff for the child's affairs",
            "政策咨询、补贴申请、临时照料、监护指导、转介 advice, subsidies, temporary care, guidance, referrals",
        ),
    ),
    Agency(
        "governance_office",
        "区综治办",
        "Comprehensive governance office",
        ("督查儿童流浪乞讨问题突出的乡镇 inspects towns where children wander or beg",),
    ),
    Agency("publicity", "区委宣传部", "Publicity department", ("政策与典型案例宣传 publicity of policy and cases",)),
    Agency(
        "social_work_committee",
        "区社工委",
        "Social work committee",
        ("网格化社会服务管理、三级智能指挥平台 grid-based service management, 3-level command platform",),
    ),
    Agency(
        POLICE,
        "区公安局",
        "Public security bureau",
        (
            "巡逻救助、护送 patrol rescue and escort",
            "身份甄别 identity verification",
            "打拐DNA采血 blood sampling for the anti-trafficking DNA database",
            "强制报告接报 receiving mandatory reports",
        ),
    ),
    Agency(
        "urban_management",
        "区城管执法监察局",
        "Urban management enforcement bureau",
        ("执法中发现流浪儿童的护送 escort of wandering children met during enforcement",),
    ),
    Agency(
        EDUCATION,
        "区教委",
        "Education commission",
        (
            "辍学逃学通报、劝返复学 dropout/truancy notification and return to school",
            "伤害发现报告与处置 injury discovery and response with civil affairs",
            "返乡流浪儿童就学 schooling for returned street children",
        ),
    ),
    Agency("youth_league", "区团委", "Youth league", ("青少年社工与志愿者 youth social workers and volunteers",)),
    Agency(
        WOMENS_FEDERATION,
        "区妇联",
        "Women's federation",
        ("儿童权益维护 rights protection", "家庭教育计划 family education plans"),
    ),
    Agency(
        JUSTICE,
        "区司法局",
        "Justice bureau",
        (
            "法律服务与法律援助 legal services and legal aid",
            "服刑在教人员未成年子女排查 survey of prisoners' minor children",
        ),
    ),
    Agency(
        HUMAN_RESOURCES,
        "区人力资源和社会保障局",
        "Human resources and social security bureau",
        ("就业扶持与技能培训 employment support and skills training",),
    ),
    Agency(
        HEALTH,
        "区卫生局",
        "Health bureau",
        ("定点医院、先救治后救助 designated hospitals; treat first, settle aid later",),
    ),
    Agency(
        "finance",
        "区财政局",
        "Finance bureau",
        ("预算与补贴方案 budget and subsidy schemes", "救助资金监管 supervision of relief fund use"),
    ),
    Agency(
        DISABLED_PERSONS_FEDERATION,
        "区残联",
        "Disabled persons' federation",
        ("残疾未成年人康复、教育、培训 rehabilitation, education and training of disabled minors",),
    ),
    Agency(
        COURT,
        "区人民法院",
        "District people's court",
        ("拐卖胁迫未成年人案件、困境儿童权益案件 trafficking cases and rights cases of children in difficulty",),
    ),
    Agency(
        RELIEF_STATION,
        "区民政局救助管理站",
        "District relief station (civil affairs; seat of the leading group office)",
        ("身份甄别、临时庇护 identity verification and temporary shelter",),
        kind=CIVIL_AFFAIRS,
        supervisor=CIVIL_AFFAIRS,
        member=False,
    ),
    Agency(
        CITY_RESCUE_CENTRE,
        "市未成年人救助保护中心",
        "City minor rescue and protection centre",
        ("接收独自流浪的未成年人 receives children found wandering alone",),
        kind=CIVIL_AFFAIRS,
        level=Level.CITY,
        member=False,
    ),
    Agency(
        CITY_SECOND_CENTRE,
        "市第二未成年人救助保护中心",
        "City second minor rescue and protection centre",
        ("接收6岁以上有轻微违法行为的流浪未成年人 receives wandering children of 6 or over with minor offences",),
        kind=CIVIL_AFFAIRS,
        level=Level.CITY,
        member=False,
    ),
)

DIRECTORY: Mapping[str, Agency] = {agency.code: agency for agency in AGENCIES}
