"""Survey import throughput: an .xlsx survey of BENCH_SURVEY_ROWS rows checked (dry run), imported, then
imported again (which changes nothing) over gRPC, beside a bare PostgreSQL COPY of the same rows into a
plain table.

Each row is a synthetic child of the pilot town with both parents and one difficulty category, as a
township survey has it. A dry run reads, checks and matches each row against the register (MatchChild's
candidates and scores, a few queries per batch of rows). The import then records each accepted row by the
use cases' own in-transaction work (RegisterChild's, AddFamilyMember's twice and AddCategory's: change
history, derived categories, match keys and events), a batch of rows with their outcomes per transaction,
each table's new rows in one INSERT from arrays (services/registry/adapters/bulk_rows.py; PostgreSQL
refuses COPY under row-level security). The register starts empty, as in a town's first survey; the events
go to topics of their own (isolated_kafka_env).

Figures and where the time goes: docs/performance.md §5; `python -m bench.survey_import_profile` profiles
the same file's dry run and import in process.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from datetime import date

import psycopg
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc, survey_pb2, survey_pb2_grpc

from bench.registry_match import drop_database, superuser_dsn
from bench.runner import Figure, print_figures
from platform_runtime.auth import Role
from services.registry.adapters.spreadsheets import Cell, Sheet, write_workbook
from services.registry.domain import synthetic
from services.registry.domain.codes import DifficultyCategory
from services.registry.service_layer.survey_rows import COLUMNS, DATA_SHEET
from services.registry.tests.integration.test_survey_import import running_registry_with_survey
from tests.support.infra import DISTRICT, PILOT_TENANT, Secrets, start_kafka, start_postgres
from tests.support.services import bearer

ROWS = int(os.environ.get("BENCH_SURVEY_ROWS", "1000"))
CHUNK = 1024 * 1024
SEED = 2014


def survey_rows(rng: random.Random) -> list[list[Cell]]:
    typed_in = [c.value for c in DifficultyCategory if not c.is_derived]
    rows = []
    for child in synthetic.generate_children(ROWS, rng=rng, as_of=date.today()):
        cells: dict[str, Cell] = {
            "legal_name": child.name,
            "sex": child.sex.label,
            "birth_date": child.birth_date.isoformat(),
            "identity_number": child.identity_number or "",
            "ethnicity_code": child.ethnicity.value,
            "household_division_code": PILOT_TENANT,
            "residence_division_code": PILOT_TENANT + child.residence_code[9:],
            "school": child.school or "",
            "categories": rng.choice(typed_in),
            "father_name": child.parents[0].name,
            "mother_name": child.parents[1].name,
        }
        rows.append([cells.get(column.field, "") for column in COLUMNS])
    return rows


def import_seconds(
    stub: survey_pb2_grpc.SurveyServiceStub, metadata: object, content: bytes, *, dry_run: bool
) -> tuple[float, survey_pb2.SurveyImportSummary]:
    def requests() -> Iterator[survey_pb2.ImportSurveyRequest]:
        options = survey_pb2.SurveyImportOptions(file_name="bench.xlsx", dry_run=dry_run, progress_every=1000)
        yield survey_pb2.ImportSurveyRequest(options=options)
        for offset in range(0, len(content), CHUNK):
            yield survey_pb2.ImportSurveyRequest(chunk=content[offset : offset + CHUNK])

    started = time.perf_counter()
    *_, last = stub.ImportSurvey(requests(), metadata=metadata)
    return time.perf_counter() - started, last.summary


def copy_seconds(dsn: str, rows: list[list[Cell]]) -> float:
    """The floor: the same rows, already parsed, into a plain table with one COPY."""
    with psycopg.connect(dsn) as connection:
        columns = ", ".join(f"{column.field} text" for column in COLUMNS)
        connection.execute(f"CREATE TABLE bare_survey_rows ({columns})")
        connection.commit()
        started = time.perf_counter()
        with connection.cursor() as cursor, cursor.copy("COPY bare_survey_rows FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        connection.commit()
        return time.perf_counter() - started


def run() -> list[Figure]:
    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    postgres_url = start_postgres()
    kafka = start_kafka()
    secrets = Secrets.generate().for_audience("registry")
    rows = survey_rows(random.Random(SEED))
    content = write_workbook([Sheet(DATA_SHEET, [column.header for column in COLUMNS], rows)])
    with running_registry_with_survey(postgres_url, kafka, secrets) as registry:
        registry_pb2_grpc.TenantDirectoryServiceStub(registry.channel()).OnboardTenant(
            registry_pb2.OnboardTenantRequest(code=PILOT_TENANT, name="良乡镇", district_code=DISTRICT),
            metadata=bearer(secrets.token(PILOT_TENANT, Role.SYSTEM)),
        )
        stub = survey_pb2_grpc.SurveyServiceStub(registry.channel())
        metadata = bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER))
        checked, dry = import_seconds(stub, metadata, content, dry_run=True)
        imported, real = import_seconds(stub, metadata, content, dry_run=False)
        again, repeated = import_seconds(stub, metadata, content, dry_run=False)
        bare = copy_seconds(superuser_dsn(postgres_url, registry.database.name), rows)
    drop_database(postgres_url, registry.database.name)

    print(
        f"\n{ROWS:,} rows, {len(content) / 1e6:.1f} MB .xlsx; dry run {checked:.0f} s, import {imported:.0f} s,"
        f" import again {again:.0f} s"
    )
    print(
        f"dry run: {dry.accepted:,} accepted, {dry.possible_duplicates:,} possible duplicates, {dry.rejected:,} rejected"
    )
    print(f"import: {real.accepted:,} registered ({1000 * imported / max(real.accepted, 1):.1f} ms per child)")
    print(f"import again: {repeated.unchanged:,} unchanged, {repeated.accepted:,} registered")
    baseline = "bare COPY of the same rows, plain table"
    return [
        Figure("survey dry run (read, check, match)", ROWS / checked, baseline, ROWS / bare, "rows/s", True),
        Figure("survey import (dry run's work + record)", ROWS / imported, baseline, ROWS / bare, "rows/s", True),
        Figure("survey import again (changes nothing)", ROWS / again, baseline, ROWS / bare, "rows/s", True),
    ]


def main() -> None:
    print_figures(f"survey import over gRPC ({ROWS:,} rows)", run())


if __name__ == "__main__":
    main()
