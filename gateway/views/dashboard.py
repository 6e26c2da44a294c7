"""The dashboard: a town's register in numbers and charts for its staff, and the district's towns side by side
for the district officer. Counts come from the registry (GetRegisterStatistics, nothing named, nothing
audited) and from the town's recent reports."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, render_template
from minorprot.registry.v1 import registry_pb2
from werkzeug.wrappers import Response

from gateway import register_codes, roles
from gateway.charts import bar_chart
from gateway.clients import BackendError
from gateway.i18n import gettext
from gateway.security import caller, components, current_user, login_required, require_role
from platform_runtime.auth import Role
from platform_runtime.vocabulary import CHINA_STANDARD_TIME

bp = Blueprint("dashboard", __name__)
log = logging.getLogger(__name__)
NEW_REPORT_DAYS = 7
RECENT_REPORTS = 100  # the reports looked at for "new" and "open crises"


def _counts(pairs: Any) -> dict[str, int]:
    return {pair.key: pair.count for pair in pairs}


def _labelled(counts: dict[str, int], labels: dict[str, str]) -> list[tuple[str, int]]:
    return [(labels.get(key) or key or gettext("未填"), count) for key, count in counts.items()]


def _translated(choices: register_codes.Choices) -> dict[str, str]:
    return {code: gettext(text) for code, text in choices}


def _report_counts() -> dict[str, int]:
    """New reports of the last week and open crises among the town's recent reports."""
    since = datetime.now(CHINA_STANDARD_TIME) - timedelta(days=NEW_REPORT_DAYS)
    found = components().backends.list_reports(caller(), page_size=RECENT_REPORTS)
    new = sum(1 for r in found if r.received_at.ToDatetime(tzinfo=CHINA_STANDARD_TIME) >= since)
    crises = sum(1 for r in found if r.crisis and r.status != "closed")
    return {"new_reports": new, "open_crises": crises}


@bp.route("/dashboard")
@login_required
def dashboard() -> str | Response:
    user = require_role(roles.CASE_FILE_READERS)
    backends = components().backends
    reports: dict[str, int] = {}
    if user.role in roles.REPORT_READERS:
        try:
            reports = _report_counts()
        except BackendError as exc:  # the register's numbers still help without the reporting service
            log.warning("reports unavailable for the dashboard: %s", exc)
    if user.role is Role.DISTRICT_OFFICER:
        return _district(reports)
    stats = backends.register_statistics(caller(), "")
    villages = {v.code: v.name for v in backends.list_villages(caller())}
    categories = _translated(register_codes.CATEGORIES)
    return render_template(
        "register/dashboard.html",
        stats=stats,
        reports=reports,
        towns=[],
        charts=[
            bar_chart("chart-category", gettext("按困境类别"), _labelled(_counts(stats.by_category), categories)),
            bar_chart(
                "chart-village", gettext("按村(社区)"), _labelled(_counts(stats.by_village), villages), names=True
            ),
            bar_chart(
                "chart-status",
                gettext("按档案状态"),
                _labelled(_counts(stats.by_case_status), _translated(register_codes.CASE_STATUSES)),
            ),
        ],
    )


def _district(reports: dict[str, int]) -> str:
    """Each onboarded town of the officer's district, and the district's totals."""
    backends = components().backends
    user = current_user()
    towns = backends.list_tenants(caller(), user.district)
    per_town: list[tuple[registry_pb2.Tenant, registry_pb2.GetRegisterStatisticsResponse]] = []
    by_category: Counter[str] = Counter()
    for town in towns:
        stats = backends.register_statistics(caller(), town.code)
        per_town.append((town, stats))
        by_category.update(_counts(stats.by_category))
    total = registry_pb2.GetRegisterStatisticsResponse(
        town_code=user.district,
        children=sum(s.children for _, s in per_town),
        overdue_visits=sum(s.overdue_visits for _, s in per_town),
        overdue_plan_actions=sum(s.overdue_plan_actions for _, s in per_town),
    )
    return render_template(
        "register/dashboard.html",
        stats=total,
        reports=reports,
        towns=per_town,
        charts=[
            bar_chart(
                "chart-category",
                gettext("全区按困境类别"),
                _labelled(dict(by_category), _translated(register_codes.CATEGORIES)),
            ),
            bar_chart("chart-town", gettext("按乡镇"), [(t.name, s.children) for t, s in per_town], names=True),
        ],
    )
