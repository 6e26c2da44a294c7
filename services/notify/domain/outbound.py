"""What leaves the portal (e-mail, SMS, webhooks): Jinja2 templates per event type and locale, zh-CN first.

A message that leaves the portal carries the minimum: the kind of event, what to do, a time limit, and a
link into the portal, never a child's name or identity number, a diagnosis, family details or a reporter.
Templates only ever see the variables below (`VARIABLES`: no case data is passed in), so neither the
district's templates nor a town's own can print more; a town's template runs in Jinja2's sandbox and is
checked by rendering it with sample data before it is saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from platform_runtime import errors

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
MAX_SUBJECT = 200
MAX_TEXT = 1000

# Every template may use these; each event type adds its own facts.
COMMON = ("link", "code", "town")
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
}

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
}

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
}

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


def render(subject: str, text: str, facts: Mapping[str, str]) -> Rendered:
    """Render a template pair; only the known variables exist, so a template cannot reach anything else."""
    return Rendered(
        subject=" ".join(_environment.from_string(subject).render(facts).split())[:MAX_SUBJECT],
        text=_environment.from_string(text).render(facts).strip()[:MAX_TEXT],
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
        "link": "https://portal.example/notifications/about/report/r-sample",
        "code": "482913" if event_type.startswith("crisis") else "",
        "town": "110111008",
        **SAMPLE.get(event_type, {}),
    }
