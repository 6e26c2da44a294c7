"""Every failure as a page or a JSON body with the right status, never with a stack trace.

Services' messages for the caller's own mistakes (invalid input, not found, not allowed) are shown
as-is (the services write them for the caller); transport failures get a generic message instead, since
theirs name internal addresses.

Language: titles and the gateway's own refusals are catalogue keys (Chinese, see `gateway.messages`) and are
shown through `shown()` in the request's language. The services' refusals are written in English only (none
is bilingual) and the services keep no catalogue, so they pass through `shown()` unchanged: translating a few
hundred service messages in the gateway would be a second copy of each service's rules. In zh-CN the page
still says in Chinese what kind of refusal it is (its title); the detail stays the service's English.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, flash, jsonify, render_template
from opentelemetry import trace
from werkzeug.exceptions import HTTPException

from gateway.clients import BackendError
from gateway.i18n import gettext
from gateway.messages import ENGLISH
from gateway.security import wants_json
from platform_runtime import errors as domain

log = logging.getLogger(__name__)

STATUS_FOR_CODE = {
    "INVALID_ARGUMENT": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "FAILED_PRECONDITION": 409,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "UNIMPLEMENTED": 503,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
CALLER_CODES = frozenset(
    {
        "INVALID_ARGUMENT",
        "OUT_OF_RANGE",
        "PERMISSION_DENIED",
        "NOT_FOUND",
        "FAILED_PRECONDITION",
        "ABORTED",
        "ALREADY_EXISTS",
        "RESOURCE_EXHAUSTED",
    }
)
CODE_FOR_DOMAIN_ERROR: list[tuple[type[domain.DomainError], str]] = [
    (domain.InvalidInput, "INVALID_ARGUMENT"),
    (domain.NotFound, "NOT_FOUND"),
    (domain.Conflict, "FAILED_PRECONDITION"),
    (domain.ConcurrentUpdate, "ABORTED"),
    (domain.PermissionDenied, "PERMISSION_DENIED"),
    (domain.Unauthenticated, "UNAUTHENTICATED"),
    (domain.RateLimited, "RESOURCE_EXHAUSTED"),
]
TITLES = {
    400: "请求有误",
    401: "请先登录",
    403: "无权访问",
    404: "未找到",
    405: "不支持的操作",
    409: "当前状态不允许",
    413: "请求过大",
    429: "请求过于频繁",
    500: "系统错误",
    502: "服务出错",
    503: "服务暂不可用",
    504: "服务超时",
}
TRY_AGAIN = "请稍后再试"


def _trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def shown(message: str) -> str:
    """A refusal's text in the request's language: the gateway's own are catalogue keys; any other text (a
    service's English refusal, data) is returned as it is."""
    return gettext(message)


def said(violations: tuple[domain.FieldViolation, ...]) -> str:
    """Every violation on one line, each message in the request's language."""
    return "; ".join(f"{v.field}: {shown(v.message)}" if v.field else shown(v.message) for v in violations)


def flash_refusal(error: BackendError | domain.InvalidInput) -> None:
    """A refusal shown on the next page: each violation (else the message) as an error, in the request's language."""
    for v in error.violations:
        flash(f"{v.field}: {shown(v.message)}" if v.field else shown(v.message), "error")
    if not error.violations:
        flash(shown(error.message if isinstance(error, BackendError) else str(error)), "error")


def respond(status: int, message: str, violations: tuple[domain.FieldViolation, ...] = ()) -> Any:
    title = TITLES.get(status, str(status))
    message = shown(message)
    if wants_json():
        # `error` names the kind of failure for programs (always English); `message` is for people.
        body: dict[str, Any] = {"error": ENGLISH.get(title, title), "message": message or shown(title)}
        if violations:
            body["violations"] = [{"field": v.field, "message": shown(v.message)} for v in violations]
        return jsonify(body), status
    return render_template("error.html", title=title, message=message, trace_id=_trace_id()), status


def _backend_error(error: BackendError) -> Any:
    status = STATUS_FOR_CODE.get(error.code, 502)
    if error.code in CALLER_CODES:
        return respond(status, error.message, error.violations)
    log.warning("service call failed: %s", error)
    return respond(status, TRY_AGAIN)


def _domain_error(error: domain.DomainError) -> Any:
    code = next((code for kind, code in CODE_FOR_DOMAIN_ERROR if isinstance(error, kind)), "INVALID_ARGUMENT")
    if isinstance(error, domain.InvalidInput):
        return respond(STATUS_FOR_CODE[code], said(error.violations), error.violations)
    return respond(STATUS_FOR_CODE[code], str(error))


def _http_error(error: HTTPException) -> Any:
    status = error.code or 500
    # Werkzeug's own descriptions are English only: a bare abort shows just the title.
    given = error.description != type(error).description
    description = error.description if status in (400, 429) and given else ""
    return respond(status, description or "")


def _unexpected(error: Exception) -> Any:
    log.exception("unhandled error")
    return respond(500, gettext("请稍后再试(追踪编号 %(trace)s)", trace=_trace_id() or "-"))


def register(app: Flask) -> None:
    app.register_error_handler(BackendError, _backend_error)
    app.register_error_handler(domain.DomainError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
