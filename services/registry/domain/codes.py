"""Code lists used by the register, each value with the Chinese label staff see on screens.

Values are what is stored and sent over the wire; labels are for display only. Where a national
standard defines numeric codes (sex, ethnicity, disability grade) the value is that code; elsewhere
the value is a stable English snake_case name.
"""

from __future__ import annotations

from typing import TypeVar

# The labelled-enum mechanism and `Sex` (GB/T 2261.1) are the shared vocabulary's, named here too; the
# register's own code lists below use the same mechanism.
from platform_runtime.vocabulary import LabelledEnum as LabelledEnum
from platform_runtime.vocabulary import Sex as Sex
from platform_runtime.vocabulary import set_labels
from services.registry.domain.errors import InvalidInput

_E = TypeVar("_E", bound=LabelledEnum)
_set_labels = set_labels


class Ethnicity(LabelledEnum):
    """GB 3304-1991 codes of the nationalities of China (values are the two-digit codes)."""

    HAN = "01"
    MONGOL = "02"
    HUI = "03"
    ZANG = "04"
    UYGUR = "05"
    MIAO = "06"
    YI = "07"
    ZHUANG = "08"
    BUYEI = "09"
    CHOSEN = "10"
    MAN = "11"
    DONG = "12"
    YAO = "13"
    BAI = "14"
    TUJIA = "15"
    HANI = "16"
    KAZAK = "17"
    DAI = "18"
    LI = "19"
    LISU = "20"
    VA = "21"
    SHE = "22"
    GAOSHAN = "23"
    LAHU = "24"
    SUI = "25"
    DONGXIANG = "26"
    NAXI = "27"
    JINGPO = "28"
    KIRGIZ = "29"
    TU = "30"
    DAUR = "31"
    MULAO = "32"
    QIANG = "33"
    BLANG = "34"
    SALAR = "35"
    MAONAN = "36"
    GELAO = "37"
    XIBE = "38"
    ACHANG = "39"
    PUMI = "40"
    TAJIK = "41"
    NU = "42"
    UZBEK = "43"
    RUSS = "44"
    EWENKI = "45"
    DEANG = "46"
    BONAN = "47"
    YUGUR = "48"
    GIN = "49"
    TATAR = "50"
    DERUNG = "51"
    OROQEN = "52"
    HEZHEN = "53"
    MONBA = "54"
    LHOBA = "55"
    JINO = "56"
    OTHER = "97"
    FOREIGN_ORIGIN = "98"


_set_labels(
    Ethnicity,
    {
        Ethnicity.HAN: "汉族",
        Ethnicity.MONGOL: "蒙古族",
        Ethnicity.HUI: "回族",
        Ethnicity.ZANG: "藏族",
        Ethnicity.UYGUR: "维吾尔族",
        Ethnicity.MIAO: "苗族",
        Ethnicity.YI: "彝族",
        Ethnicity.ZHUANG: "壮族",
        Ethnicity.BUYEI: "布依族",
        Ethnicity.CHOSEN: "朝鲜族",
        Ethnicity.MAN: "满族",
        Ethnicity.DONG: "侗族",
        Ethnicity.YAO: "瑶族",
        Ethnicity.BAI: "白族",
        Ethnicity.TUJIA: "土家族",
        Ethnicity.HANI: "哈尼族",
        Ethnicity.KAZAK: "哈萨克族",
        Ethnicity.DAI: "傣族",
        Ethnicity.LI: "黎族",
        Ethnicity.LISU: "傈僳族",
        Ethnicity.VA: "佤族",
        Ethnicity.SHE: "畲族",
        Ethnicity.GAOSHAN: "高山族",
        Ethnicity.LAHU: "拉祜族",
        Ethnicity.SUI: "水族",
        Ethnicity.DONGXIANG: "东乡族",
        Ethnicity.NAXI: "纳西族",
        Ethnicity.JINGPO: "景颇族",
        Ethnicity.KIRGIZ: "柯尔克孜族",
        Ethnicity.TU: "土族",
        Ethnicity.DAUR: "达斡尔族",
        Ethnicity.MULAO: "仫佬族",
        Ethnicity.QIANG: "羌族",
        Ethnicity.BLANG: "布朗族",
        Ethnicity.SALAR: "撒拉族",
        Ethnicity.MAONAN: "毛南族",
        Ethnicity.GELAO: "仡佬族",
        Ethnicity.XIBE: "锡伯族",
        Ethnicity.ACHANG: "阿昌族",
        Ethnicity.PUMI: "普米族",
        Ethnicity.TAJIK: "塔吉克族",
        Ethnicity.NU: "怒族",
        Ethnicity.UZBEK: "乌孜别克族",
        Ethnicity.RUSS: "俄罗斯族",
        Ethnicity.EWENKI: "鄂温克族",
        Ethnicity.DEANG: "德昂族",
        Ethnicity.BONAN: "保安族",
        Ethnicity.YUGUR: "裕固族",
        Ethnicity.GIN: "京族",
        Ethnicity.TATAR: "塔塔尔族",
        Ethnicity.DERUNG: "独龙族",
        Ethnicity.OROQEN: "鄂伦春族",
        Ethnicity.HEZHEN: "赫哲族",
        Ethnicity.MONBA: "门巴族",
        Ethnicity.LHOBA: "珞巴族",
        Ethnicity.JINO: "基诺族",
        Ethnicity.OTHER: "其他",
        Ethnicity.FOREIGN_ORIGIN: "外国血统中国籍人士",
    },
)


class GuardianStatus(LabelledEnum):
    """Situation of a parent or guardian; recorded with the date it started."""

    NORMAL = "normal"
    IMPRISONED_OR_DETAINED = "imprisoned_or_detained"
    COMPULSORY_DRUG_REHAB = "compulsory_drug_rehab"
    SERIOUSLY_ILL = "seriously_ill"
    SEVERELY_DISABLED = "severely_disabled"
    DECEASED = "deceased"
    MISSING = "missing"
    DEPORTED = "deported"
    GUARDIANSHIP_REVOKED = "guardianship_revoked"


_set_labels(
    GuardianStatus,
    {
        GuardianStatus.NORMAL: "正常",
        GuardianStatus.IMPRISONED_OR_DETAINED: "服刑在押或被限制人身自由",
        GuardianStatus.COMPULSORY_DRUG_REHAB: "强制隔离戒毒",
        GuardianStatus.SERIOUSLY_ILL: "重病",
        GuardianStatus.SEVERELY_DISABLED: "重残",
        GuardianStatus.DECEASED: "死亡",
        GuardianStatus.MISSING: "失联或失踪",
        GuardianStatus.DEPORTED: "被遣送(驱逐)出境",
        GuardianStatus.GUARDIANSHIP_REVOKED: "被撤销监护资格",
    },
)


class Relationship(LabelledEnum):
    """Relationship of a family member or guardian to the child."""

    FATHER = "father"
    MOTHER = "mother"
    ADOPTIVE_FATHER = "adoptive_father"
    ADOPTIVE_MOTHER = "adoptive_mother"
    STEPFATHER = "stepfather"
    STEPMOTHER = "stepmother"
    PATERNAL_GRANDFATHER = "paternal_grandfather"
    PATERNAL_GRANDMOTHER = "paternal_grandmother"
    MATERNAL_GRANDFATHER = "maternal_grandfather"
    MATERNAL_GRANDMOTHER = "maternal_grandmother"
    SIBLING = "sibling"
    OTHER_RELATIVE = "other_relative"
    NON_RELATIVE = "non_relative"
    # Civil Code Art. 32: when no one else can, these organisations act as guardian.
    CIVIL_AFFAIRS_DEPARTMENT = "civil_affairs_department"
    RESIDENTS_OR_VILLAGERS_COMMITTEE = "residents_or_villagers_committee"

    @property
    def is_parent(self) -> bool:
        """Parents in law: birth and adoptive parents. A step-parent counts only where a
        raising relationship is established, which the service records as a parent explicitly."""
        return self in _PARENTS


_PARENTS = frozenset(
    {
        Relationship.FATHER,
        Relationship.MOTHER,
        Relationship.ADOPTIVE_FATHER,
        Relationship.ADOPTIVE_MOTHER,
    }
)

_set_labels(
    Relationship,
    {
        Relationship.FATHER: "父亲",
        Relationship.MOTHER: "母亲",
        Relationship.ADOPTIVE_FATHER: "养父",
        Relationship.ADOPTIVE_MOTHER: "养母",
        Relationship.STEPFATHER: "继父",
        Relationship.STEPMOTHER: "继母",
        Relationship.PATERNAL_GRANDFATHER: "祖父",
        Relationship.PATERNAL_GRANDMOTHER: "祖母",
        Relationship.MATERNAL_GRANDFATHER: "外祖父",
        Relationship.MATERNAL_GRANDMOTHER: "外祖母",
        Relationship.SIBLING: "兄弟姐妹",
        Relationship.OTHER_RELATIVE: "其他亲属",
        Relationship.NON_RELATIVE: "非亲属",
        Relationship.CIVIL_AFFAIRS_DEPARTMENT: "民政部门",
        Relationship.RESIDENTS_OR_VILLAGERS_COMMITTEE: "居(村)民委员会",
    },
)


class DisabilityType(LabelledEnum):
    """GB/T 26341-2010 disability categories."""

    VISUAL = "visual"
    HEARING = "hearing"
    SPEECH = "speech"
    PHYSICAL = "physical"
    INTELLECTUAL = "intellectual"
    MENTAL = "mental"
    MULTIPLE = "multiple"


_set_labels(
    DisabilityType,
    {
        DisabilityType.VISUAL: "视力残疾",
        DisabilityType.HEARING: "听力残疾",
        DisabilityType.SPEECH: "言语残疾",
        DisabilityType.PHYSICAL: "肢体残疾",
        DisabilityType.INTELLECTUAL: "智力残疾",
        DisabilityType.MENTAL: "精神残疾",
        DisabilityType.MULTIPLE: "多重残疾",
    },
)


class DisabilityGrade(LabelledEnum):
    """GB/T 26341-2010 grades: 1 is the most severe."""

    GRADE_1 = "1"
    GRADE_2 = "2"
    GRADE_3 = "3"
    GRADE_4 = "4"


_set_labels(
    DisabilityGrade,
    {
        DisabilityGrade.GRADE_1: "一级",
        DisabilityGrade.GRADE_2: "二级",
        DisabilityGrade.GRADE_3: "三级",
        DisabilityGrade.GRADE_4: "四级",
    },
)


class CategoryGroup(LabelledEnum):
    """Where a difficulty category comes from."""

    PILOT_PLAN = "pilot_plan"
    TRACKED = "tracked"
    NATIONAL_2016 = "national_2016"
    DERIVED = "derived"


_set_labels(
    CategoryGroup,
    {
        CategoryGroup.PILOT_PLAN: "试点方案工作对象",
        CategoryGroup.TRACKED: "跟踪情形",
        CategoryGroup.NATIONAL_2016: "国发〔2016〕36号困境儿童",
        CategoryGroup.DERIVED: "规则认定",
    },
)


class DifficultyCategory(LabelledEnum):
    """困境类别. A child may be in several at once. DERIVED ones are computed by rules
    (see rules.py) and must never be typed in by staff."""

    # The five groups of the 2014 pilot plan.
    DE_FACTO_UNATTENDED = "de_facto_unattended"
    IMPROPERLY_GUARDED = "improperly_guarded"
    POVERTY = "poverty"
    WANDERING = "wandering"
    OTHER_TRAFFICKED_OR_EMPLOYED = "other_trafficked_or_employed"
    # Also tracked during the pilot.
    INTELLECTUAL_OR_MENTAL = "intellectual_or_mental"
    OUT_OF_SCHOOL = "out_of_school"
    NO_EFFECTIVE_GUARDIAN = "no_effective_guardian"
    # 国发〔2016〕36号: the three kinds of children in difficulty.
    NATIONAL_FAMILY_POVERTY = "national_family_poverty"
    NATIONAL_OWN_DISABILITY = "national_own_disability"
    NATIONAL_GUARDIANSHIP_MISSING_OR_IMPROPER = "national_guardianship_missing_or_improper"
    # Derived by rules. The 2019 definition gets its own value: it is narrower than the plan's
    # typed-in "de facto unattended" and carries a benefit entitlement.
    DE_FACTO_UNATTENDED_MCA_2019 = "de_facto_unattended_mca_2019"
    INFANT_0_3_LOCAL = "infant_0_3_local"
    AGEING_OUT = "ageing_out"

    @property
    def group(self) -> CategoryGroup:
        return _CATEGORY_GROUPS[self]

    @property
    def is_derived(self) -> bool:
        return self.group is CategoryGroup.DERIVED


_CATEGORY_GROUPS: dict[DifficultyCategory, CategoryGroup] = {
    DifficultyCategory.DE_FACTO_UNATTENDED: CategoryGroup.PILOT_PLAN,
    DifficultyCategory.IMPROPERLY_GUARDED: CategoryGroup.PILOT_PLAN,
    DifficultyCategory.POVERTY: CategoryGroup.PILOT_PLAN,
    DifficultyCategory.WANDERING: CategoryGroup.PILOT_PLAN,
    DifficultyCategory.OTHER_TRAFFICKED_OR_EMPLOYED: CategoryGroup.PILOT_PLAN,
    DifficultyCategory.INTELLECTUAL_OR_MENTAL: CategoryGroup.TRACKED,
    DifficultyCategory.OUT_OF_SCHOOL: CategoryGroup.TRACKED,
    DifficultyCategory.NO_EFFECTIVE_GUARDIAN: CategoryGroup.TRACKED,
    DifficultyCategory.NATIONAL_FAMILY_POVERTY: CategoryGroup.NATIONAL_2016,
    DifficultyCategory.NATIONAL_OWN_DISABILITY: CategoryGroup.NATIONAL_2016,
    DifficultyCategory.NATIONAL_GUARDIANSHIP_MISSING_OR_IMPROPER: CategoryGroup.NATIONAL_2016,
    DifficultyCategory.DE_FACTO_UNATTENDED_MCA_2019: CategoryGroup.DERIVED,
    DifficultyCategory.INFANT_0_3_LOCAL: CategoryGroup.DERIVED,
    DifficultyCategory.AGEING_OUT: CategoryGroup.DERIVED,
}

DERIVED_CATEGORIES = frozenset(c for c in DifficultyCategory if c.is_derived)

_set_labels(
    DifficultyCategory,
    {
        DifficultyCategory.DE_FACTO_UNATTENDED: "因监护人服刑、重病、遗弃等原因实际无人监护",
        DifficultyCategory.IMPROPERLY_GUARDED: "因监护人经常性忽视、家庭暴力等得不到适当监护",
        DifficultyCategory.POVERTY: "因家庭贫困面临辍学和失去基本生活保障",
        DifficultyCategory.WANDERING: "有流浪经历",
        DifficultyCategory.OTHER_TRAFFICKED_OR_EMPLOYED: "因被拐卖、非法雇佣等陷入困境",
        DifficultyCategory.INTELLECTUAL_OR_MENTAL: "智障、精神异常",
        DifficultyCategory.OUT_OF_SCHOOL: "失学、辍学、逃学",
        DifficultyCategory.NO_EFFECTIVE_GUARDIAN: "无监护人或监护人监护不力",
        DifficultyCategory.NATIONAL_FAMILY_POVERTY: "因家庭贫困导致生活、就医、就学等困难",
        DifficultyCategory.NATIONAL_OWN_DISABILITY: "因自身残疾导致康复、照料、护理和社会融入等困难",
        DifficultyCategory.NATIONAL_GUARDIANSHIP_MISSING_OR_IMPROPER: (
            "因家庭监护缺失或监护不当遭受虐待、遗弃、意外伤害、不法侵害等"
        ),
        DifficultyCategory.DE_FACTO_UNATTENDED_MCA_2019: "事实无人抚养儿童",
        DifficultyCategory.INFANT_0_3_LOCAL: "0-3岁本区户籍婴幼儿",
        DifficultyCategory.AGEING_OUT: "即将或已经年满18周岁",
    },
)


class CategorySource(LabelledEnum):
    """Where the knowledge of a difficulty category came from."""

    SURVEY = "survey"
    REPORT = "report"
    HOME_VISIT = "home_visit"
    AGENCY = "agency"  # information shared by a member unit (police, education, justice...)
    RULE = "rule"  # derived by a rule: never typed in

    @property
    def typed_in(self) -> bool:
        return self is not CategorySource.RULE


_set_labels(
    CategorySource,
    {
        CategorySource.SURVEY: "排查摸底",
        CategorySource.REPORT: "发现报告",
        CategorySource.HOME_VISIT: "入户走访",
        CategorySource.AGENCY: "部门信息共享",
        CategorySource.RULE: "规则认定",
    },
)


class CaseStatus(LabelledEnum):
    """Status of a case file (档案); the allowed transitions are in casefile.py."""

    IDENTIFIED = "identified"
    ASSESSING = "assessing"
    PLAN_ACTIVE = "plan_active"
    MONITORING = "monitoring"
    CLOSED = "closed"
    TRANSFERRED = "transferred"

    @property
    def is_open(self) -> bool:
        return self not in (CaseStatus.CLOSED, CaseStatus.TRANSFERRED)


_set_labels(
    CaseStatus,
    {
        CaseStatus.IDENTIFIED: "已发现",
        CaseStatus.ASSESSING: "评估中",
        CaseStatus.PLAN_ACTIVE: "帮扶计划实施中",
        CaseStatus.MONITORING: "跟踪监测",
        CaseStatus.CLOSED: "已结案",
        CaseStatus.TRANSFERRED: "已转出",
    },
)


class AssessmentDomain(LabelledEnum):
    """The structured domains of a guardianship and needs assessment (监护情况与需求评估)."""

    SAFETY = "safety"
    GUARDIANSHIP = "guardianship"
    HEALTH = "health"
    EDUCATION = "education"
    LIVELIHOOD = "livelihood"
    PSYCHOLOGY = "psychology"


_set_labels(
    AssessmentDomain,
    {
        AssessmentDomain.SAFETY: "人身安全",
        AssessmentDomain.GUARDIANSHIP: "监护状况",
        AssessmentDomain.HEALTH: "身心健康",
        AssessmentDomain.EDUCATION: "教育就学",
        AssessmentDomain.LIVELIHOOD: "基本生活",
        AssessmentDomain.PSYCHOLOGY: "心理行为",
    },
)


class AssessmentKind(LabelledEnum):
    INITIAL = "initial"
    RE_ASSESSMENT = "re_assessment"  # at the evaluation phase (总结评估), or when things change


_set_labels(AssessmentKind, {AssessmentKind.INITIAL: "首次评估", AssessmentKind.RE_ASSESSMENT: "再评估"})


class RiskLevel(LabelledEnum):
    """Computed from an assessment (assessment.py); sets how often the child is visited (visits.py)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


_set_labels(RiskLevel, {RiskLevel.LOW: "低风险", RiskLevel.MEDIUM: "中风险", RiskLevel.HIGH: "高风险"})


class GoalStatus(LabelledEnum):
    OPEN = "open"
    ACHIEVED = "achieved"
    DROPPED = "dropped"


_set_labels(GoalStatus, {GoalStatus.OPEN: "进行中", GoalStatus.ACHIEVED: "已达成", GoalStatus.DROPPED: "已放弃"})


class ActionStatus(LabelledEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"

    @property
    def is_finished(self) -> bool:
        return self in (ActionStatus.DONE, ActionStatus.CANCELLED)


_set_labels(
    ActionStatus,
    {
        ActionStatus.PLANNED: "待办",
        ActionStatus.IN_PROGRESS: "进行中",
        ActionStatus.DONE: "已完成",
        ActionStatus.CANCELLED: "已取消",
    },
)


class OwnerKind(LabelledEnum):
    """Who carries out an action of the plan: a named person, or a member unit by its agency code."""

    PERSON = "person"
    AGENCY = "agency"


_set_labels(OwnerKind, {OwnerKind.PERSON: "责任人", OwnerKind.AGENCY: "责任单位"})


def parse_code(enum_class: type[_E], value: str, field: str) -> _E:
    """The member of `enum_class` whose value is `value`, or InvalidInput naming the field."""
    try:
        return enum_class(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum_class)
        raise InvalidInput(field, f"unknown code {value[:40]!r} (one of: {allowed})") from None
