"""Every failure as a page or a JSON body with the right status, never with a stack trace.

Services' messages for the caller's own mistakes (invalid input, not found, not allowed) are shown
as-is (the services write them for the caller); transport failures get a generic message instead, since
theirs name internal addresses.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template
from opentelemetry import trace
from werkzeug.exceptions import HTTPException

from gateway.clients import BackendError
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
    400: "请求有误 Bad request",
    401: "请先登录 Please sign in",
    403: "无权访问 Not allowed",
    404: "未找到 Not found",
    405: "不支持的操作 Method not allowed",
    409: "当前状态不允许 Not possible now",
    413: "请求过大 Request too large",
    429: "请求过于频繁 Too many requests",
    500: "系统错误 Internal error",
    502: "服务出错 Service error",
    503: "服务暂不可用 Service unavailable",
    504: "服务超时 Service timed out",
}


def _trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def respond(status: int, message: str, violations: tuple[domain.FieldViolation, ...] = ()) -> Any:
    title = TITLES.get(status, str(status))
    if wants_json():
        body: dict[str, Any] = {"error": title.split(" ", 1)[-1], "message": message or title}
        if violations:
            body["violations"] = [{"field": v.field, "message": v.message} for v in violations]
        return jsonify(body), status
    return render_template("error.html", title=title.split(" ", 1)[0], message=message, trace_id=_trace_id()), status


def _backend_error(error: BackendError) -> Any:
    status = STATUS_FOR_CODE.get(error.code, 502)
    if error.code in CALLER_CODES:
        return respond(status, error.message, error.violations)
    log.warning("service call failed: %s", error)
    return respond(status, "请稍后再试 Please try again in a moment.")


def _domain_error(error: domain.DomainError) -> Any:
    code = next((code for kind, code in CODE_FOR_DOMAIN_ERROR if isinstance(error, kind)), "INVALID_ARGUMENT")
    violations = error.violations if isinstance(error, domain.InvalidInput) else ()
    return respond(STATUS_FOR_CODE[code], str(error), violations)


def _http_error(error: HTTPException) -> Any:
    status = error.code or 500
    description = error.description if status in (400, 429) else ""
    return respond(status, description or "")


def _unexpected(error: Exception) -> Any:
    log.exception("unhandled error")
    return respond(500, f"请稍后再试 Please try again later (trace {_trace_id() or '-'}).")


def register(app: Flask) -> None:
    app.register_error_handler(BackendError, _backend_error)
    app.register_error_handler(domain.DomainError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
