"""What a member of the public may do without an account, for the HTML pages and the JSON API alike:
report to an onboarded town (throttled per address) and look up a receipt (the reporting service
throttles lookups itself and shows only status and outcome notice).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minorprot.reporting.v1 import reporting_pb2

from gateway import intake
from gateway.bootstrap import Components
from gateway.clients import Caller
from gateway.limits import PUBLIC_REPORTS
from gateway.roles import PUBLIC_CHANNELS
from gateway.towns import Town
from platform_runtime.errors import InvalidInput, NotFound, RateLimited

PUBLIC_CHANNEL_VALUES = frozenset(channel.value for channel in PUBLIC_CHANNELS)


def town(components: Components, code: str, client_ip: str) -> Town:
    found = components.towns.find(code, client_ip)
    if found is None:
        raise NotFound("本系统未受理该乡镇(街道)的报告")  # a catalogue key: `errors.shown` translates it
    return found


def submit(
    components: Components, town_code: str, payload: Mapping[str, Any], client_ip: str, idempotency_key: str | None
) -> reporting_pb2.SubmitReportResponse:
    where = town(components, town_code, client_ip)
    if payload.get("channel") not in PUBLIC_CHANNEL_VALUES:
        raise InvalidInput.single("channel", "choose anonymous or named")
    request = intake.build_request(payload, default_division=where.code, idempotency_key=idempotency_key)
    key = f"public-report:{client_ip}"
    if components.limiter.exceeded(key, PUBLIC_REPORTS):
        raise RateLimited(PUBLIC_REPORTS.window_seconds)
    components.limiter.record(key, PUBLIC_REPORTS)
    caller = Caller(components.tokens.public_principal(where.code), client_ip)
    return components.backends.submit_report(caller, request)


def lookup(components: Components, receipt_number: str, client_ip: str) -> reporting_pb2.LookupReceiptResponse:
    if not receipt_number.strip():
        raise InvalidInput.single("receipt_number", "is required")
    # The one call made without any token: a receipt is its own proof.
    return components.backends.lookup_receipt(Caller(None, client_ip), receipt_number.strip())
