"""A submission retried at the gateway (a timeout, a double click, a client resending) is the same report: the
REST API with the client's Idempotency-Key, the public form with the key minted when it was shown. The whole
platform as processes (the `platform` fixture), on PostgreSQL and Kafka."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from tests.e2e.conftest import RunningStack
from tests.support.infra import PILOT_TENANT

pytestmark = pytest.mark.e2e

_HIDDEN = re.compile(r'name="(csrf_token|idempotency_key)" value="([^"]+)"')


def post(platform: RunningStack, path: str, token: str, body: dict[str, Any], key: str = "") -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(  # noqa: S310 - loopback only
        platform.base_url + path,
        method="POST",
        data=json.dumps(body).encode(),
        headers=headers | ({"Idempotency-Key": key} if key else {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def reports_with(platform: RunningStack, narrative: str) -> list[str]:
    caseworker = platform.login("caseworker", platform.password)
    _, listed = platform.call("GET", "/api/v1/reports?page_size=200", caseworker)
    found = []
    for listed_report in listed["reports"]:  # lists carry no narrative: open each, naming why (logged)
        report_id = listed_report["report_id"]
        _, report = platform.call("GET", f"/api/v1/reports/{report_id}?purpose=check-for-duplicates", caseworker)
        if report["narrative"] == narrative:
            found.append(report_id)
    return found


def test_the_same_rest_request_with_the_same_idempotency_key_is_one_report(platform: RunningStack) -> None:
    teacher = platform.login("teacher", platform.password)
    narrative = f"孩子连续两周未到校,家中无人应答。({uuid.uuid4().hex[:8]})"
    body = {
        "channel": "mandated_reporter",
        "child": {"name": "周小满", "approximate_age": 9},
        "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="minutes"),
        "situation_types": ["out_of_school"],
        "narrative": narrative,
        "reporter": {"name": "陈老师", "phone": "13900000004", "organisation": "良乡中心小学", "role": "teacher"},
    }
    key = str(uuid.uuid4())
    first_status, first = post(platform, "/api/v1/reports", teacher, body, key)
    again_status, again = post(platform, "/api/v1/reports", teacher, body, key)
    assert (first_status, again_status) == (201, 201), (first, again)
    assert again["report_id"] == first["report_id"]
    assert first["receipt_number"] and not again["receipt_number"]  # only its hash is kept
    assert reports_with(platform, narrative) == [first["report_id"]]

    _, other = post(platform, "/api/v1/reports", teacher, body, str(uuid.uuid4()))
    assert other["report_id"] != first["report_id"]  # another key: another report


def test_the_public_form_posted_twice_is_one_report(platform: RunningStack) -> None:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    path = f"{platform.base_url}/public/{PILOT_TENANT}/report"
    with opener.open(path, timeout=30) as page:
        hidden = dict(_HIDDEN.findall(page.read().decode()))
    assert set(hidden) == {"csrf_token", "idempotency_key"}
    narrative = f"连续几天看到这个孩子晚上独自在公交站,没有大人。({uuid.uuid4().hex[:8]})"
    fields = hidden | {
        "channel": "public_anonymous",
        "child.description": "穿蓝色校服的男孩,约9岁",
        "place.text": "良乡镇公交站",
        "occurred_at": (datetime.now(CHINA_STANDARD_TIME) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "situation_types": "wandering",
        "narrative": narrative,
    }
    pages = []
    for _ in range(2):  # the browser sends the same form again, e.g. after the first answer timed out
        with opener.open(path, data=urllib.parse.urlencode(fields).encode(), timeout=30) as reply:
            pages.append((reply.status, reply.read().decode()))
    assert [status for status, _ in pages] == [200, 200]
    assert 'id="receipt-number"' in pages[0][1] and 'id="already-received"' in pages[1][1]
    assert len(reports_with(platform, narrative)) == 1
