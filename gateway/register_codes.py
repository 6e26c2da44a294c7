"""The registry's code lists as the portal shows them: (code, Chinese label), in the registry's order.

The gateway imports no service, so these are copies; tests/test_gateway_register_codes_match_registry.py
keeps them equal to services/registry/domain/codes.py.
"""

from __future__ import annotations

Choices = tuple[tuple[str, str], ...]

CATEGORIES: Choices = (
    ("de_facto_unattended", "因监护人服刑、重病、遗弃等原因实际无人监护"),
    ("improperly_guarded", "因监护人经常性忽视、家庭暴力等得不到适当监护"),
    ("poverty", "因家庭贫困面临辍学和失去基本生活保障"),
    ("wandering", "有流浪经历"),
    ("other_trafficked_or_employed", "因被拐卖、非法雇佣等陷入困境"),
    ("intellectual_or_mental", "智障、精神异常"),
    ("out_of_school", "失学、辍学、逃学"),
    ("no_effective_guardian", "无监护人或监护人监护不力"),
    ("national_family_poverty", "因家庭贫困导致生活、就医、就学等困难"),
    ("national_own_disability", "因自身残疾导致康复、照料、护理和社会融入等困难"),
    ("national_guardianship_missing_or_improper", "因家庭监护缺失或监护不当遭受虐待、遗弃、意外伤害、不法侵害等"),
    ("de_facto_unattended_mca_2019", "事实无人抚养儿童"),
    ("infant_0_3_local", "0-3岁本区户籍婴幼儿"),
    ("ageing_out", "即将或已经年满18周岁"),
)
CATEGORY_SOURCES: Choices = (
    ("survey", "排查摸底"),
    ("report", "发现报告"),
    ("home_visit", "入户走访"),
    ("agency", "部门信息共享"),
    ("rule", "规则认定"),
)
CASE_STATUSES: Choices = (
    ("identified", "已发现"),
    ("assessing", "评估中"),
    ("plan_active", "帮扶计划实施中"),
    ("monitoring", "跟踪监测"),
    ("closed", "已结案"),
    ("transferred", "已转出"),
)
RELATIONSHIPS: Choices = (
    ("father", "父亲"),
    ("mother", "母亲"),
    ("adoptive_father", "养父"),
    ("adoptive_mother", "养母"),
    ("stepfather", "继父"),
    ("stepmother", "继母"),
    ("paternal_grandfather", "祖父"),
    ("paternal_grandmother", "祖母"),
    ("maternal_grandfather", "外祖父"),
    ("maternal_grandmother", "外祖母"),
    ("sibling", "兄弟姐妹"),
    ("other_relative", "其他亲属"),
    ("non_relative", "非亲属"),
    ("civil_affairs_department", "民政部门"),
    ("residents_or_villagers_committee", "居(村)民委员会"),
)
GUARDIAN_STATUSES: Choices = (
    ("normal", "正常"),
    ("imprisoned_or_detained", "服刑在押或被限制人身自由"),
    ("compulsory_drug_rehab", "强制隔离戒毒"),
    ("seriously_ill", "重病"),
    ("severely_disabled", "重残"),
    ("deceased", "死亡"),
    ("missing", "失联或失踪"),
    ("deported", "被遣送(驱逐)出境"),
    ("guardianship_revoked", "被撤销监护资格"),
)
DOMAINS: Choices = (
    ("safety", "人身安全"),
    ("guardianship", "监护状况"),
    ("health", "身心健康"),
    ("education", "教育就学"),
    ("livelihood", "基本生活"),
    ("psychology", "心理行为"),
)
ASSESSMENT_KINDS: Choices = (
    ("initial", "首次评估"),
    ("re_assessment", "再评估"),
)
RISK_LEVELS: Choices = (
    ("low", "低风险"),
    ("medium", "中风险"),
    ("high", "高风险"),
)
GOAL_STATUSES: Choices = (
    ("open", "进行中"),
    ("achieved", "已达成"),
    ("dropped", "已放弃"),
)
ACTION_STATUSES: Choices = (
    ("planned", "待办"),
    ("in_progress", "进行中"),
    ("done", "已完成"),
    ("cancelled", "已取消"),
)
OWNER_KINDS: Choices = (
    ("person", "责任人"),
    ("agency", "责任单位"),
)
DISABILITY_TYPES: Choices = (
    ("visual", "视力残疾"),
    ("hearing", "听力残疾"),
    ("speech", "言语残疾"),
    ("physical", "肢体残疾"),
    ("intellectual", "智力残疾"),
    ("mental", "精神残疾"),
    ("multiple", "多重残疾"),
)

# Computed by the registry's rules: never offered to type in.
DERIVED_CATEGORIES = frozenset({"ageing_out", "de_facto_unattended_mca_2019", "infant_0_3_local"})
# Scores of an assessment domain: 0 no concern ... 4 critical; from 2 on a finding in words is required.
SCORES: Choices = (("0", "0 无"), ("1", "1 轻微"), ("2", "2 中度"), ("3", "3 严重"), ("4", "4 危急"))
# The categories staff may type in (AddCategory refuses a derived one).
TYPED_CATEGORIES: Choices = tuple(c for c in CATEGORIES if c[0] not in DERIVED_CATEGORIES)
# Sources staff may give for a typed-in category.
TYPED_SOURCES: Choices = tuple(c for c in CATEGORY_SOURCES if c[0] != "rule")


def label(choices: Choices, code: str) -> str:
    """The label of `code`, or the code itself when it is newer than this gateway."""
    return dict(choices).get(code, code)
