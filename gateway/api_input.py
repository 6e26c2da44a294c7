"""What the JSON API (/api/v1) accepts before any view reads it, checked in one place for every operation:
path parameters, the query and the JSON body hold text that is valid Unicode without NUL, and numbers that
are finite and within JSON's safe integers. JSON may carry lone surrogates (\\ud800), NUL and numbers such as
1e999 (read as infinity) that no service can encode or store; they are refused as field-level violations
(400) instead of failing somewhere behind the gateway.
"""

from __future__ import annotations

import math
from typing import Any

from flask import request

from platform_runtime.errors import FieldViolation, InvalidInput

MAX_SAFE_INTEGER = 2**53 - 1  # the largest integer every JSON client reads exactly
_MAX_VIOLATIONS = 20
_FIELD_CHARS = 60


def text_problem(text: str) -> str | None:
    """Why `text` cannot be taken as text, None if it can."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains characters that are not valid Unicode text"
    if "\x00" in text:
        return "contains a NUL character"
    return None


def _printable(name: str) -> str:
    return name.encode("utf-8", "replace").decode("utf-8").replace("\x00", "?")[:_FIELD_CHARS]


def _number_problem(number: float) -> str | None:
    if isinstance(number, float) and not math.isfinite(number):
        return "must be a finite number"
    if abs(number) > MAX_SAFE_INTEGER:
        return f"must be between -{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER}"
    return None


def problems(value: Any, path: str = "") -> list[FieldViolation]:
    """Every string (key or value) and number in a decoded JSON value that the services cannot take, by the
    dotted path of its field ("" for the body itself)."""
    found: list[FieldViolation] = []
    if isinstance(value, str):
        message = text_problem(value)
        if message:
            found.append(FieldViolation(path, message))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        message = _number_problem(value)
        if message:
            found.append(FieldViolation(path, message))
    elif isinstance(value, dict):
        for key, item in value.items():
            name = _printable(str(key))
            here = f"{path}.{name}" if path else name
            if text_problem(str(key)):
                found.append(FieldViolation(here, "the field's name " + str(text_problem(str(key)))))
            found.extend(problems(item, here))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(problems(item, f"{path}[{index}]"))
    return found[:_MAX_VIOLATIONS]


def check_request() -> None:
    """before_request for /api/: refuse a request whose path parameters, query or JSON body cannot be taken."""
    if not request.path.startswith("/api/"):
        return
    found = [
        violation
        for name, value in (request.view_args or {}).items()
        for violation in problems(str(value), _printable(name))
    ]
    found += [
        violation for name, value in request.args.items(multi=True) for violation in problems(value, _printable(name))
    ]
    if request.is_json and request.content_length:
        found += problems(request.get_json(silent=True))
    if found:
        raise InvalidInput(found[:_MAX_VIOLATIONS])


def json_object() -> dict[str, Any]:
    """The request's JSON object (already checked by `check_request`)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput.single("", "the body must be a JSON object (Content-Type: application/json)")
    return body
