"""The benefits lists page by keyset on PostgreSQL: the pages hold every row once, in the list's order, and a
token the service did not give is refused (issue 16)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database
from platform_runtime.tenancy import acting_as
from services.benefits.adapters.orm import (
    ApplicationRecord,
    DisbursementLineRecord,
    DisbursementRunRecord,
    InsuranceEnrolmentRecord,
)
from services.benefits.bootstrap import Services
from services.benefits.domain.policy import sample_policy
from tests.support.infra import DISTRICT, PILOT_TENANT

pytestmark = pytest.mark.integration

AT = datetime(2024, 5, 3, 2, 0, tzinfo=UTC)
CASEWORKER = Principal(user_id="cw", display_name="cw", role=Role.CASEWORKER, tenant=PILOT_TENANT, district=DISTRICT)
OFFICER = Principal(user_id="o", display_name="o", role=Role.DISTRICT_OFFICER, tenant=DISTRICT, district=DISTRICT)
ADMIN = Principal(user_id="a", display_name="a", role=Role.DISTRICT_ADMIN, tenant=DISTRICT, district=DISTRICT)


def every_page(list_page: Callable[[int, str], tuple[list[str], str]], size: int) -> list[list[str]]:
    pages, token = [], ""
    while True:
        ids, token = list_page(size, token)
        pages.append(ids)
        if not token:
            return pages


def _when(n: int) -> datetime:
    return AT - timedelta(minutes=n // 2)  # two rows share each time: the id breaks the tie


def test_applications_page_the_latest_updated_first(database: Database, services: Services) -> None:
    with acting_as(ADMIN):
        services.catalogue.save(replace(sample_policy(DISTRICT), version=0))
    with database.unit_of_work(PILOT_TENANT) as uow:
        for n in range(7):
            uow.session.add(
                ApplicationRecord(
                    id=f"app{n}", tenant_id=PILOT_TENANT, child_id=f"c{n}", benefit_code="BLA_POOR", status="draft",
                    documents="[]", reason="", source=f"portal:{n}", town_reviewed_by="", decided_by="",
                    rejection_reason="", created_by="cw", created_at=AT, updated_at=_when(n),
                )
            )  # fmt: skip
        uow.commit()
    expected = [f"app{n}" for n in range(7)]
    for who in (CASEWORKER, OFFICER):
        with acting_as(who):

            def page(size: int, token: str) -> tuple[list[str], str]:
                views, next_token = services.applications.list(page_size=size, page_token=token)
                return [view.application_id for view in views], next_token

            pages = every_page(page, 3)
            assert pages == [expected[0:3], expected[3:6], expected[6:]]
            assert every_page(page, 0) == [expected]  # 0: the default size
            with pytest.raises(errors.InvalidInput):
                services.applications.list(page_token="not-a-token")
            with pytest.raises(errors.InvalidInput):
                services.applications.list(page_size=201)


def test_insurance_enrolments_page_the_latest_decided_first(database: Database, services: Services) -> None:
    with database.unit_of_work(PILOT_TENANT) as uow:
        for n in range(5):
            uow.session.add(
                InsuranceEnrolmentRecord(
                    id=f"en{n}", tenant_id=PILOT_TENANT, child_id=f"c{n}", status="enrolled", policy_code="p",
                    covered_until=date(2025, 1, 1), decided_on=AT.date(), decided_at=_when(n),
                )
            )  # fmt: skip
        uow.commit()
    with acting_as(CASEWORKER):

        def page(size: int, token: str) -> tuple[list[str], str]:
            views, next_token = services.insurance.list_enrolments(page_size=size, page_token=token)
            return [view.enrolment_id for view in views], next_token

        assert every_page(page, 2) == [["en0", "en1"], ["en2", "en3"], ["en4"]]
        with pytest.raises(errors.InvalidInput):
            services.insurance.list_enrolments(page_token="e30=")  # base64 of {}


def _run(database: Database, run_id: str, period: date) -> None:
    with database.unit_of_work(DISTRICT) as uow:
        uow.session.add(
            DisbursementRunRecord(
                id=run_id, tenant_id=DISTRICT, period=period, status="computed", step_cursor="", done=0, total=0,
                line_count=0, total_fen=0, batches=0, created_by="m", computed_by="m", checked_by="", approved_by="",
                paid_by="", created_at=AT, updated_at=AT,
            )
        )  # fmt: skip
        uow.commit()


def test_runs_page_the_latest_month_first(database: Database, services: Services) -> None:
    for month in range(1, 6):
        _run(database, f"run{month}", date(2024, month, 1))
    with acting_as(OFFICER):

        def page(size: int, token: str) -> tuple[list[str], str]:
            runs, next_token = services.runs.runs(page_size=size, page_token=token)
            return [run.run_id for run in runs], next_token

        assert every_page(page, 2) == [["run5", "run4"], ["run3", "run2"], ["run1"]]
        with pytest.raises(errors.InvalidInput):
            services.runs.runs(page_token="WyJ4IiwgInkiXQ==")  # ["x", "y"]: not a month


def test_run_lines_page_in_line_order(database: Database, services: Services) -> None:
    _run(database, "run1", date(2024, 5, 1))
    with database.unit_of_work(DISTRICT) as uow:
        for seq in (3, 1, 5, 2, 4):
            uow.session.add(
                DisbursementLineRecord(
                    tenant_id=DISTRICT, run_id="run1", seq=seq, town=PILOT_TENANT, child_id=f"c{seq}",
                    benefit_code="BLA_POOR", fund="f", service_month=date(2024, 5, 1), correction=0, kind="due",
                    amount_fen=100, policy_version=1, explanation="",
                )
            )  # fmt: skip
        uow.commit()
    with acting_as(OFFICER):

        def page(size: int, token: str) -> tuple[list[str], str]:
            lines, next_token = services.runs.lines("run1", page_size=size, page_token=token)
            return [line.child_id for line in lines], next_token

        assert every_page(page, 2) == [["c1", "c2"], ["c3", "c4"], ["c5"]]
        with pytest.raises(errors.InvalidInput):
            services.runs.lines("run1", page_token="%%%")
