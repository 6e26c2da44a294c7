"""Where a survey import's time goes: `python -m bench.survey_import_profile`.

Runs the SurveyService in this process on a fresh PostgreSQL database (no gRPC, no relay: what is left is
the import itself) over the same .xlsx as bench/survey_import.py (BENCH_SURVEY_ROWS rows), and profiles
the dry run and the import separately with pyinstrument, counting the statements each sends. Not part of
`python -m bench`: it reads, it does not time.
"""

from __future__ import annotations

import base64
import os
import random
import time
from typing import Any

from pyinstrument import Profiler
from sqlalchemy import event

from bench.survey_import import ROWS, SEED, survey_rows
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database
from platform_runtime.pii import BlindIndex, FieldCipher
from platform_runtime.settings import decode_key, decode_keyring
from platform_runtime.tenancy import acting_as
from services.registry.adapters.orm import APPEND_ONLY_TABLES, metadata
from services.registry.adapters.spreadsheets import Sheet, write_workbook
from services.registry.service_layer.casework import CaseworkService
from services.registry.service_layer.registry import RegistryService
from services.registry.service_layer.survey import SurveyService
from services.registry.service_layer.survey_results import ImportOptions
from services.registry.service_layer.survey_rows import COLUMNS, DATA_SHEET
from tests.support.infra import DISTRICT, PILOT_TENANT, start_postgres
from tests.support.services import migrated_database


def main() -> None:
    postgres_url = start_postgres()
    db = migrated_database(postgres_url, "registry", APPEND_ONLY_TABLES)
    database = Database.connect(db.app_url, metadata)
    key = base64.b64encode(os.urandom(32)).decode()  # throwaway keys for this run
    blind_index = BlindIndex(decode_key(key))
    registry = RegistryService(database, FieldCipher(decode_keyring("k1:" + key)), blind_index)
    survey = SurveyService(registry, CaseworkService(database, blind_index), database, blind_index)
    system = Principal(
        user_id="system", display_name="system", role=Role.SYSTEM, tenant=PILOT_TENANT, district=DISTRICT
    )
    with acting_as(system):
        registry.onboard_tenant(PILOT_TENANT, "良乡镇", DISTRICT)
    content = write_workbook(
        [Sheet(DATA_SHEET, [column.header for column in COLUMNS], survey_rows(random.Random(SEED)))]
    )
    statements = [0]

    @event.listens_for(database.engine, "before_cursor_execute")
    def count(*_: Any) -> None:
        statements[0] += 1

    caseworker = Principal(
        user_id="li.caseworker", display_name="li", role=Role.CASEWORKER, tenant=PILOT_TENANT, district=DISTRICT
    )
    show = os.environ.get("BENCH_PROFILE_SHOW", "")
    with acting_as(caseworker):
        for dry_run in (True, False, False):
            statements[0] = 0
            profiler = Profiler(interval=0.001)
            started, cpu = time.perf_counter(), time.process_time()
            profiler.start()
            *_, last = survey.import_survey(content, ImportOptions("bench.xlsx", dry_run=dry_run, progress_every=1000))
            profiler.stop()
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            what = "dry run" if dry_run else "import"
            print(
                f"\n===== {what}: {ROWS:,} rows in {seconds:.1f} s ({ROWS / seconds:,.0f} rows/s),"
                f" CPU of this process {cpu:.1f} s, {statements[0]} statements"
            )
            print(f"      {last.summary}")
            print(profiler.output_text(unicode=True, color=False, show_all=bool(show)))
    database.dispose()


if __name__ == "__main__":
    main()
