"""ListCrises pages by keyset on PostgreSQL: the pages hold every crisis once, the latest declared first, the
open ones alone when asked, and a token the service did not give is refused (issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.db import Database
from platform_runtime.tenancy import acting_as
from services.notify.adapters.orm import CrisisRecord
from services.notify.service_layer.crises import CrisisService
from services.notify.service_layer.services import NotifyService
from services.notify.tests.integration.builders import PILOT_TENANT, caller

pytestmark = pytest.mark.integration

AT = datetime(2024, 5, 3, 2, 0, tzinfo=UTC)


def test_crises_page_the_latest_declared_first(database: Database, service: NotifyService) -> None:
    with database.unit_of_work(PILOT_TENANT) as uow:
        for n in range(7):
            uow.session.add(
                CrisisRecord(
                    id=f"crisis{n}", tenant_id=PILOT_TENANT, report_id=f"r{n}", code=f"C{n}", title="t",
                    declared_at=AT - timedelta(minutes=n // 2), limit_seconds=60, step=1,
                    acknowledged_at=AT if n % 3 == 0 else None,
                )
            )  # fmt: skip
        uow.commit()
    crises = CrisisService(database, service, limit=timedelta(minutes=5))

    def every_page(size: int, *, open_only: bool) -> list[list[str]]:
        pages, token = [], ""
        while True:
            views, token = crises.list_crises(open_only=open_only, page_size=size, page_token=token)
            pages.append([view.crisis.id for view in views])
            if not token:
                return pages

    with acting_as(caller(Role.TOWN_ADMIN)):
        assert every_page(3, open_only=False) == [
            ["crisis0", "crisis1", "crisis2"],
            ["crisis3", "crisis4", "crisis5"],
            ["crisis6"],
        ]
        assert every_page(2, open_only=True) == [["crisis1", "crisis2"], ["crisis4", "crisis5"]]
        with pytest.raises(errors.InvalidInput):
            crises.list_crises(page_token="bm90IGpzb24=")  # base64 of "not json"
        with pytest.raises(errors.InvalidInput):
            crises.list_crises(page_size=-1)
