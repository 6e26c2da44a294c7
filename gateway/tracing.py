"""What the gateway's HTTP spans may record: the path, never the query string (receipts, phones, purposes)."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span

_URL_ATTRIBUTES = ("http.target", "http.url", "url.full")


def path_only(span: Span | None, _status: str, _headers: Any) -> None:
    """Flask instrumentation response hook (it runs after the request attributes are set): cut the query off.

    A request refused by a `before_request` hook that runs before the instrumentation's own (CSRF, a bad
    bearer token) has no span: the hook is called with None."""
    if span is None or not span.is_recording():
        return
    recorded = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = recorded.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, value.split("?", 1)[0])
    if recorded.get("url.query"):
        span.set_attribute("url.query", "")
