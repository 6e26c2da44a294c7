"""What leaves the portal (e-mail, SMS, webhooks): Jinja2 templates per event type and locale, zh-CN first.

A message that leaves the portal carries the minimum: the kind of event, what to do, a time limit, and a
link into the portal, never a child's name or identity number, a diagnosis, family details or a reporter.
Templates only ever see the variables below (`VARIABLES`: no case data is passed in), so neither the
district's templates nor a town's own can print more; a town's template runs in Jinja2's sandbox and is
checked by rendering it with sample data before it is saved.

The in-app inbox's titles and bodies come from the same catalogue, under `inbox.<event type>`: staff-facing,
so they may also name the report, child or referral by id and the town's staff named on a case (ADR 0008), but
never text anyone typed (a referral's reason, triage reasons) or any other fact about a child. The zh-CN ones
are bilingual, as the shared role inboxes are read by everyone of the role; a person's own inbox follows their
language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from platform_runtime import errors

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
MAX_SUBJECT = 200
MAX_TEXT = 1000

# Every template may use these; each event type adds its own facts.
COMMON = ("link", "code", "town")
INBOX = "inbox."  # the prefix of the in-app templates' names
RECEIPT = "report_receipt"
FACTS: dict[str, tuple[str, ...]] = {
    "crisis_declared": ("actions",),
    "crisis_escalation": ("actions",),
    "deadline_breached": ("milestone", "due"),
    "crisis_deadline_breached": ("milestone", "due"),
    "referral_opened": ("agency", "due"),
    "referral_sent": ("agency", "due"),
    "referral_escalated": ("agency", "step"),
    "visit_overdue": ("days_overdue", "due_on"),
    "case_status_changed": ("status",),
    "case_assigned": (),
    "entitlement_changed": ("change", "effective_on"),
    # To a reporter who asked for it (SendReceipt): the receipt number and the public lookup page as `link`;
    # never the child, the family, the place or the reporter (notify is not even told them).
    RECEIPT: ("receipt",),
}
FACTS.update(
    {
        f"{INBOX}crisis_declared": ("actions", "situations", "division", "report_id"),
        f"{INBOX}crisis_escalation": ("actions", "report_id"),
        f"{INBOX}deadline_breached": ("milestone", "due", "reached", "report_id"),
        f"{INBOX}crisis_deadline_breached": ("milestone", "due", "reached", "report_id"),
        f"{INBOX}referral_opened": ("agency", "due", "report_id"),
        f"{INBOX}referral_sent": ("agency", "due", "report_id"),
        f"{INBOX}referral_escalated": ("agency", "step", "due", "escalated_to", "report_id"),
        f"{INBOX}visit_overdue": ("days_overdue", "due_on", "risk", "child_id", "staff"),
        f"{INBOX}case_status_changed": ("status", "from_status", "to_status", "child_id", "staff"),
        f"{INBOX}case_assigned": ("named", "child_id", "staff"),
        f"{INBOX}entitlement_changed": ("change", "benefit", "effective_on", "monthly_yuan", "child_id"),
    }
)

_ACK = "{% if code %}\n回复 {{ code }} 确认收到。{% endif %}"
_ACK_EN = "{% if code %}\nReply {{ code }} to acknowledge.{% endif %}"
_LINK = "\n详情请登录平台:{{ link }}"
_LINK_EN = "\nDetails in the portal: {{ link }}"

DEFAULTS: dict[tuple[str, str], tuple[str, str]] = {
    ("crisis_declared", "zh-CN"): (
        "【紧急】危机报告,请立即处置",
        "【未成年人保护】危机报告,请立即处置:{{ actions }}。" + _LINK + _ACK,
    ),
    ("crisis_declared", "en"): (
        "[URGENT] Crisis report: act now",
        "Child protection: a crisis report. Act now: {{ actions }}." + _LINK_EN + _ACK_EN,
    ),
    ("crisis_escalation", "zh-CN"): (
        "【紧急】危机报告无人确认,已升级",
        "【未成年人保护】危机报告在时限内无人确认,现升级至您:{{ actions }}。" + _LINK + _ACK,
    ),
    ("crisis_escalation", "en"): (
        "[URGENT] Unacknowledged crisis escalated to you",
        "Child protection: a crisis report was not acknowledged in time and is escalated to you: {{ actions }}."
        + _LINK_EN
        + _ACK_EN,
    ),
    ("deadline_breached", "zh-CN"): (
        "办理超时:{{ milestone }}",
        "【未成年人保护】一份发现报告的“{{ milestone }}”已超过期限({{ due }})。" + _LINK,
    ),
    ("deadline_breached", "en"): (
        "Deadline missed: {{ milestone }}",
        "Child protection: a report's '{{ milestone }}' is past its limit ({{ due }})." + _LINK_EN,
    ),
    ("crisis_deadline_breached", "zh-CN"): (
        "【紧急】危机报告办理超时:{{ milestone }}",
        "【未成年人保护】一份危机报告的“{{ milestone }}”已超过期限({{ due }})。" + _LINK,
    ),
    ("crisis_deadline_breached", "en"): (
        "[URGENT] Crisis deadline missed: {{ milestone }}",
        "Child protection: a crisis report's '{{ milestone }}' is past its limit ({{ due }})." + _LINK_EN,
    ),
    ("referral_opened", "zh-CN"): (
        "新转介:{{ agency }}",
        "【未成年人保护】{{ agency }}有一件新转介,办理期限 {{ due }}。" + _LINK,
    ),
    ("referral_opened", "en"): (
        "New referral: {{ agency }}",
        "Child protection: a new referral to {{ agency }}, due {{ due }}." + _LINK_EN,
    ),
    ("referral_sent", "zh-CN"): (
        "转介待办理:{{ agency }}",
        "【未成年人保护】一件转介已送达{{ agency }},办理期限 {{ due }}。" + _LINK,
    ),
    ("referral_sent", "en"): (
        "Referral to handle: {{ agency }}",
        "Child protection: a referral was sent to {{ agency }}, due {{ due }}." + _LINK_EN,
    ),
    ("referral_escalated", "zh-CN"): (
        "转介督办:{{ agency }}",
        "【未成年人保护】{{ agency }}的一件转介超期未办,已升级督办(第 {{ step }} 级)。" + _LINK,
    ),
    ("referral_escalated", "en"): (
        "Referral escalated: {{ agency }}",
        "Child protection: a referral to {{ agency }} is overdue and escalated (level {{ step }})." + _LINK_EN,
    ),
    ("visit_overdue", "zh-CN"): (
        "随访逾期 {{ days_overdue }} 天",
        "【未成年人保护】一名儿童的随访已逾期 {{ days_overdue }} 天(应于 {{ due_on }})。" + _LINK,
    ),
    ("visit_overdue", "en"): (
        "Follow-up visit {{ days_overdue }} days overdue",
        "Child protection: a child's follow-up visit is {{ days_overdue }} days overdue (due {{ due_on }})." + _LINK_EN,
    ),
    ("case_status_changed", "zh-CN"): (
        "个案状态:{{ status }}",
        "【未成年人保护】您负责的一份个案状态变为“{{ status }}”。" + _LINK,
    ),
    ("case_status_changed", "en"): (
        "Case status: {{ status }}",
        "Child protection: a case you hold is now '{{ status }}'." + _LINK_EN,
    ),
    ("case_assigned", "zh-CN"): ("新分配的个案", "【未成年人保护】一份个案已指定由您负责。" + _LINK),
    ("case_assigned", "en"): ("A case assigned to you", "Child protection: a case was assigned to you." + _LINK_EN),
    ("entitlement_changed", "zh-CN"): (
        "待遇变更:{{ change }}",
        "【未成年人保护】您负责的一名儿童的待遇{{ change }},自 {{ effective_on }} 起。" + _LINK,
    ),
    ("entitlement_changed", "en"): (
        "Benefit {{ change }}",
        "Child protection: a benefit of a child you hold was {{ change }}, from {{ effective_on }}." + _LINK_EN,
    ),
    (RECEIPT, "zh-CN"): (
        "已收到您的报告",
        "【未成年人保护】您的报告已收到,回执编号 {{ receipt }}。凭回执编号可查询处理进展:{{ link }}",
    ),
    (RECEIPT, "en"): (
        "Your report was received",
        "Child protection: your report was received. Receipt number {{ receipt }}; "
        "look up its progress with it at {{ link }}",
    ),
}

_REPORT = "\n发现报告 report: {{ report_id }}"
_REPORT_EN = "\nReport: {{ report_id }}"
_HOLDERS = "\n负责人 named staff: {{ staff or '尚未指定 nobody named yet: 请指定专人 name a responsible person' }}"
_HOLDERS_EN = "\nNamed staff: {{ staff or 'nobody named yet: name a responsible person' }}"
_REACHED = "{% if reached %}{{ reached }} (超时完成 reached late){% else %}尚未完成 not yet{% endif %}"
_REACHED_EN = "{% if reached %}{{ reached }} (late){% else %}not yet{% endif %}"
_STATUS_TITLE = (
    "{% if to_status == 'transferred' %}个案已转出 Case transferred out{% elif to_status == 'closed' %}"
    "个案已结案 Case closed{% else %}个案重新开启 Case reopened{% endif %}"
)
_STATUS_THEN = (
    "{% if to_status == 'transferred' %}随访停止,接收地另建档案 visits stop; the receiving town opens its own file"
    "{% elif to_status == 'closed' %}随访停止 visits stop"
    "{% else %}重新评估后安排随访 assess again, then visits are scheduled{% endif %}"
)
_STATUS_TITLE_EN = (
    "{% if to_status == 'transferred' %}Case transferred out{% elif to_status == 'closed' %}Case closed"
    "{% else %}Case reopened{% endif %}"
)
_STATUS_THEN_EN = (
    "{% if to_status == 'transferred' %}visits stop; the receiving town opens its own file"
    "{% elif to_status == 'closed' %}visits stop{% else %}assess again, then visits are scheduled{% endif %}"
)

# The in-app inbox: (title, body) per event type and locale.
DEFAULTS.update(
    {
        (f"{INBOX}crisis_declared", "zh-CN"): (
            "危机报告 Crisis report: {{ actions }}",
            "第一时间处置 act at once: {{ actions }}\n情形 situations: {{ situations }}\n"
            "地点 division: {{ division }}" + _REPORT,
        ),
        (f"{INBOX}crisis_declared", "en"): (
            "Crisis report: {{ actions }}",
            "Act at once: {{ actions }}\nSituations: {{ situations }}\nDivision: {{ division }}" + _REPORT_EN,
        ),
        (f"{INBOX}crisis_escalation", "zh-CN"): (
            "升级 Escalated · 危机报告 Crisis report: {{ actions }}",
            "危机报告 {{ report_id }} 在时限内无人确认 not acknowledged in time; 请立即处置 act now",
        ),
        (f"{INBOX}crisis_escalation", "en"): (
            "Escalated · Crisis report: {{ actions }}",
            "Crisis report {{ report_id }} was not acknowledged in time; act now",
        ),
        (f"{INBOX}deadline_breached", "zh-CN"): (
            "办理超时 Deadline missed: {{ milestone }}",
            "期限 due: {{ due }} (北京时间)\n完成 reached: " + _REACHED + _REPORT,
        ),
        (f"{INBOX}deadline_breached", "en"): (
            "Deadline missed: {{ milestone }}",
            "Due: {{ due }} (Beijing time)\nReached: " + _REACHED_EN + _REPORT_EN,
        ),
        (f"{INBOX}crisis_deadline_breached", "zh-CN"): (
            "办理超时 Deadline missed: {{ milestone }}",
            "期限 due: {{ due }} (北京时间)\n完成 reached: " + _REACHED + _REPORT,
        ),
        (f"{INBOX}crisis_deadline_breached", "en"): (
            "Crisis deadline missed: {{ milestone }}",
            "Due: {{ due }} (Beijing time)\nReached: " + _REACHED_EN + _REPORT_EN,
        ),
        (f"{INBOX}referral_opened", "zh-CN"): (
            "新转介 New referral to {{ agency }}",
            "办理期限 due: {{ due }} (北京时间)" + _REPORT,
        ),
        (f"{INBOX}referral_opened", "en"): (
            "New referral to {{ agency }}",
            "Due: {{ due }} (Beijing time)" + _REPORT_EN,
        ),
        (f"{INBOX}referral_sent", "zh-CN"): (
            "转介已送达 Referral sent to {{ agency }}",
            "办理期限 due: {{ due }} (北京时间)" + _REPORT,
        ),
        (f"{INBOX}referral_sent", "en"): (
            "Referral sent to {{ agency }}",
            "Due: {{ due }} (Beijing time)" + _REPORT_EN,
        ),
        (f"{INBOX}referral_escalated", "zh-CN"): (
            "转介督办 Referral escalated (第 {{ step }} 级 step): {{ agency }}",
            "超期未办 past its time limit ({{ due }} 北京时间)\n督办至 escalated to: {{ escalated_to }}" + _REPORT,
        ),
        (f"{INBOX}referral_escalated", "en"): (
            "Referral escalated (step {{ step }}): {{ agency }}",
            "Past its time limit ({{ due }} Beijing time)\nEscalated to: {{ escalated_to }}" + _REPORT_EN,
        ),
        (f"{INBOX}visit_overdue", "zh-CN"): (
            "随访逾期 Follow-up visit overdue: {{ days_overdue }} 天 days",
            "应随访日期 visit due: {{ due_on }}, 已逾期 {{ days_overdue }} 天 days overdue\n"
            "风险等级 risk: {{ risk }}\n儿童 child: {{ child_id }}" + _HOLDERS,
        ),
        (f"{INBOX}visit_overdue", "en"): (
            "Follow-up visit overdue: {{ days_overdue }} days",
            "Visit due: {{ due_on }}, {{ days_overdue }} days overdue\nRisk: {{ risk }}\nChild: {{ child_id }}"
            + _HOLDERS_EN,
        ),
        (f"{INBOX}case_status_changed", "zh-CN"): (
            _STATUS_TITLE,
            "档案状态 case status: {{ from_status }} → {{ status }}\n"
            + _STATUS_THEN
            + "; 原因见档案 the reason is in the case file\n儿童 child: {{ child_id }}"
            + _HOLDERS,
        ),
        (f"{INBOX}case_status_changed", "en"): (
            _STATUS_TITLE_EN,
            "Case status: {{ from_status }} → {{ status }}\n"
            + _STATUS_THEN_EN
            + "; the reason is in the case file\nChild: {{ child_id }}"
            + _HOLDERS_EN,
        ),
        (f"{INBOX}case_assigned", "zh-CN"): (
            "个案分配 Case assigned",
            "新指定 newly named: {{ named or '—' }}\n儿童 child: {{ child_id }}" + _HOLDERS,
        ),
        (f"{INBOX}case_assigned", "en"): (
            "Case assigned",
            "Newly named: {{ named or '—' }}\nChild: {{ child_id }}" + _HOLDERS_EN,
        ),
        (f"{INBOX}entitlement_changed", "zh-CN"): (
            "待遇变更 Benefit {{ change }}: {{ benefit }}",
            "生效日期 effective: {{ effective_on }}\n月标准 monthly: {{ monthly_yuan }} 元 yuan\n儿童 child: {{ child_id }}",
        ),
        (f"{INBOX}entitlement_changed", "en"): (
            "Benefit {{ change }}: {{ benefit }}",
            "Effective: {{ effective_on }}\nMonthly: {{ monthly_yuan }} yuan\nChild: {{ child_id }}",
        ),
    }
)

# Sample facts for previews (and the tests' scan of every template).
SAMPLE: dict[str, dict[str, str]] = {
    "crisis_declared": {"actions": "立即通知乡镇(街道)值班人员、向公安机关报告"},
    "crisis_escalation": {"actions": "立即通知乡镇(街道)值班人员"},
    "deadline_breached": {"milestone": "首次接触儿童 first contact", "due": "2026-12-04 18:00"},
    "crisis_deadline_breached": {"milestone": "受理确认 acknowledge", "due": "2026-12-04 09:00"},
    "referral_opened": {"agency": "区教委", "due": "2026-12-06 17:00"},
    "referral_sent": {"agency": "区公安分局", "due": "2026-12-05 12:00"},
    "referral_escalated": {"agency": "区卫健委", "step": "1"},
    "visit_overdue": {"days_overdue": "13", "due_on": "2026-11-21"},
    "case_status_changed": {"status": "已结案 closed"},
    "case_assigned": {},
    "entitlement_changed": {"change": "停发 suspended", "effective_on": "2026-12-01"},
    RECEIPT: {"receipt": "R-T242F2X-Q4KERV3-R7HPCPW"},
}
_STAFF = "专人 王专人 · 社工 李社工"
SAMPLE.update(
    {
        f"{INBOX}crisis_declared": {
            **SAMPLE["crisis_declared"],
            "situations": "遭受或疑似遭受家庭暴力",
            "division": "110111008001",
            "report_id": "r-sample",
        },
        f"{INBOX}crisis_escalation": {**SAMPLE["crisis_escalation"], "report_id": "r-sample"},
        f"{INBOX}deadline_breached": {**SAMPLE["deadline_breached"], "reached": "", "report_id": "r-sample"},
        f"{INBOX}crisis_deadline_breached": {
            **SAMPLE["crisis_deadline_breached"],
            "reached": "2026-12-04 09:20",
            "report_id": "r-sample",
        },
        f"{INBOX}referral_opened": {**SAMPLE["referral_opened"], "report_id": "r-sample"},
        f"{INBOX}referral_sent": {**SAMPLE["referral_sent"], "report_id": "r-sample"},
        f"{INBOX}referral_escalated": {
            **SAMPLE["referral_escalated"],
            "due": "2026-12-03 17:00",
            "escalated_to": "leading_group_office",
            "report_id": "r-sample",
        },
        f"{INBOX}visit_overdue": {
            **SAMPLE["visit_overdue"],
            "risk": "高风险 high",
            "child_id": "c-sample",
            "staff": _STAFF,
        },
        f"{INBOX}case_status_changed": {
            **SAMPLE["case_status_changed"],
            "from_status": "跟踪监测 monitoring",
            "to_status": "closed",
            "child_id": "c-sample",
            "staff": _STAFF,
        },
        f"{INBOX}case_assigned": {"named": "社工 李社工", "child_id": "c-sample", "staff": _STAFF},
        f"{INBOX}entitlement_changed": {
            **SAMPLE["entitlement_changed"],
            "benefit": "orphan_basic",
            "monthly_yuan": "1850.00",
            "child_id": "c-sample",
        },
    }
)

_environment = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


def variables(event_type: str) -> tuple[str, ...]:
    return COMMON + FACTS.get(event_type, ())


def check_locale(locale: str) -> str:
    if locale not in LOCALES:
        raise errors.InvalidInput.single("locale", f"locale is one of {', '.join(LOCALES)}")
    return locale


def check_event_type(event_type: str) -> str:
    if event_type not in FACTS:
        raise errors.InvalidInput.single("event_type", "no template for this event type")
    return event_type


@lru_cache(maxsize=1024)
def _compiled(source: str) -> Template:
    # Every notification renders a few templates (the inbox item's and each channel's): compile each once.
    return _environment.from_string(source)


def render(subject: str, text: str, facts: Mapping[str, str]) -> Rendered:
    """Render a template pair; only the known variables exist, so a template cannot reach anything else."""
    return Rendered(
        subject=" ".join(_compiled(subject).render(facts).split())[:MAX_SUBJECT],
        text=_compiled(text).render(facts).strip()[:MAX_TEXT],
    )


def check(event_type: str, subject: str, text: str) -> Rendered:
    """A town's template must render with the event type's variables alone; returns the sample rendering."""
    if not subject.strip() or not text.strip():
        raise errors.InvalidInput.single("text", "a template needs a subject and a text")
    if len(subject) > 2 * MAX_SUBJECT or len(text) > 2 * MAX_TEXT:
        raise errors.InvalidInput.single("text", "the template is too long")
    try:
        return render(subject, text, sample_facts(event_type))
    except TemplateError as error:
        raise errors.InvalidInput.single("text", f"the template does not render: {error}") from error


def sample_facts(event_type: str) -> dict[str, str]:
    return {
        "link": "https://portal.example/public/receipt"
        if event_type == RECEIPT
        else "https://portal.example/notifications/about/report/r-sample",
        "code": "482913" if event_type.removeprefix(INBOX).startswith("crisis") else "",
        "town": "110111008",
        **SAMPLE.get(event_type, {}),
    }
