"""The survey import's transactions over real gRPC on real PostgreSQL: a child is recorded whole or not at all,
an import stopped anywhere (a failing statement, a killed process) is finished by importing the file again with
each row once, two imports of the same file at once are refused, and every import is kept for the town alone.
"""

from __future__ import annotations

import csv
import io
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import grpc
import pytest
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import (
    casework_pb2,
    casework_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    survey_pb2,
    survey_pb2_grpc,
)
from sqlalchemy import create_engine, text

from platform_runtime.auth import Role
from platform_runtime.provision import ProvisionedDatabase
from platform_runtime.service import build
from platform_runtime.settings import EnvReader, KafkaSettings
from services.registry import bootstrap
from services.registry.adapters.orm import APPEND_ONLY_TABLES
from services.registry.domain import synthetic
from services.registry.domain.codes import DifficultyCategory
from services.registry.domain.identity import make_identity_number
from services.registry.service_layer.survey_rows import COLUMNS
from services.registry.settings import load_settings
from services.registry.tests.integration.test_survey_import import cells
from tests.support.infra import DISTRICT, OTHER_TENANT, PILOT_TENANT, ROOT, Secrets, isolated_kafka_env
from tests.support.services import Running, bearer, migrated_database, service_env

pytestmark = pytest.mark.integration

Outcome = survey_pb2.SurveyRowOutcome
ACCEPTED = Outcome.SURVEY_ROW_OUTCOME_ACCEPTED
UNCHANGED = Outcome.SURVEY_ROW_OUTCOME_UNCHANGED
EVERY = 50  # rows per progress message, and so per transaction
THIRD_TENANT = "110111010"  # a town of its own for the test that checks every child of its register


# -- infrastructure ---------------------------------------------------------------------------------------------


@contextmanager
def registry_on(db: ProvisionedDatabase, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Running]:
    """The registry in this process on an existing database, on topics of its own."""
    settings = load_settings(EnvReader(service_env(db, kafka, secrets, **isolated_kafka_env(kafka))))
    server = build(bootstrap.definition(settings, periodic_work=False))
    server.start()
    try:
        yield Running(server, db)
    finally:
        server.stop(grace=1)


def onboard(target: str, secrets: Secrets, *towns: tuple[str, str]) -> None:
    with grpc.insecure_channel(target) as channel:
        for code, name in towns:
            registry_pb2_grpc.TenantDirectoryServiceStub(channel).OnboardTenant(
                registry_pb2.OnboardTenantRequest(code=code, name=name, district_code=DISTRICT),
                metadata=bearer(secrets.token(code, Role.SYSTEM)),
            )


@pytest.fixture(scope="module")
def registry(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Running]:
    db = migrated_database(postgres_url, "registry", APPEND_ONLY_TABLES)
    with registry_on(db, kafka, secrets) as running:
        onboard(running.target, secrets, (PILOT_TENANT, "良乡镇"), (OTHER_TENANT, "周口店镇"), (THIRD_TENANT, "窦店镇"))
        yield running


@pytest.fixture(scope="module")
def channel(registry: Running) -> Iterator[grpc.Channel]:
    with registry.channel() as opened:
        yield opened


@pytest.fixture(scope="module")
def caseworker(secrets: Secrets) -> tuple[tuple[str, str], ...]:
    return bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER, user="li.caseworker"))


def survey_csv(
    seed: int, rows: int, *, changes: dict[int, dict[str, str]] | None = None, town: str = PILOT_TENANT
) -> bytes:
    """A survey of `rows` synthetic children of a town as .csv, both parents and a category each, some
    without an identity number. `changes`: row number -> cells to change."""
    rng = random.Random(seed)
    table = []
    for number, child in enumerate(synthetic.generate_children(rows, rng=rng, as_of=date(2024, 6, 1)), start=2):
        row = {k: str(v) for k, v in cells(child, rng).items()}
        row["household_division_code"] = town
        row["residence_division_code"] = town + row["residence_division_code"][9:]
        table.append(row | (changes or {}).get(number, {}))
    return csv_of(table)


def csv_of(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([column.header for column in COLUMNS])
    for row in rows:
        writer.writerow([row.get(column.field, "") for column in COLUMNS])
    return buffer.getvalue().encode()


def requests(content: bytes, *, dry_run: bool = False) -> Iterator[survey_pb2.ImportSurveyRequest]:
    options = survey_pb2.SurveyImportOptions(file_name="排查摸底.csv", dry_run=dry_run, progress_every=EVERY)
    yield survey_pb2.ImportSurveyRequest(options=options)
    for offset in range(0, len(content), 64 * 1024):
        yield survey_pb2.ImportSurveyRequest(chunk=content[offset : offset + 64 * 1024])


def import_all(
    stub: survey_pb2_grpc.SurveyServiceStub, metadata: Any, content: bytes, *, dry_run: bool = False
) -> tuple[dict[int, survey_pb2.SurveyRowResult], survey_pb2.SurveyImportSummary]:
    rows: dict[int, survey_pb2.SurveyRowResult] = {}
    summary = survey_pb2.SurveyImportSummary()
    for message in stub.ImportSurvey(requests(content, dry_run=dry_run), metadata=metadata, timeout=600):
        for row in message.rows:
            assert row.row_number not in rows, f"row {row.row_number} reported twice"
            rows[row.row_number] = row
        if message.HasField("summary"):
            summary = message.summary
    return rows, summary


def query(db: ProvisionedDatabase, sql: str, tenant: str = PILOT_TENANT, **params: Any) -> list[Any]:
    """The registry's database read as its owner, with the tenant set as the service sets it."""
    engine = create_engine(db.owner_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})
            return list(connection.execute(text(sql), params).all())
    finally:
        engine.dispose()


def scalar(db: ProvisionedDatabase, sql: str, tenant: str = PILOT_TENANT, **params: Any) -> Any:
    return query(db, sql, tenant, **params)[0][0]


def whole_children(db: ProvisionedDatabase, import_ids: list[str], tenant: str) -> set[str]:
    """The children of the town, all registered by the imports and checked whole: each with its case file,
    'registered' timeline entry, change history, both parents, its survey category, match keys and events,
    and each with the outcome of its row."""
    registered = {
        row[0]
        for row in query(
            db,
            "SELECT child_id FROM survey_import_rows WHERE outcome = 'accepted' AND import_id = ANY(:ids)",
            tenant,
            ids=import_ids,
        )
    }
    per_child = {
        row[0]: tuple(row[1:])
        for row in query(
            db,
            """SELECT c.id,
                 (SELECT count(*) FROM case_files f WHERE f.child_id = c.id),
                 (SELECT count(*) FROM timeline_entries t WHERE t.child_id = c.id AND t.kind = 'registered'),
                 (SELECT count(*) FROM change_history h WHERE h.child_id = c.id AND h.action = 'created'),
                 (SELECT count(*) FROM family_members m WHERE m.child_id = c.id),
                 (SELECT count(*) FROM child_categories k WHERE k.child_id = c.id AND k.source = 'survey'),
                 (SELECT count(*) > 5 FROM child_match_keys k WHERE k.child_id = c.id),
                 (SELECT count(*) FROM outbox o WHERE o.message_key = c.tenant_id || ':' || c.id
                    AND o.event_type = 'minorprot.registry.v1.ChildRegistered'),
                 (SELECT count(*) FROM outbox o WHERE o.message_key = c.tenant_id || ':' || c.id
                    AND o.event_type = 'minorprot.registry.v1.CaseFileOpened')
               FROM children c""",
            tenant,
        )
    }
    assert set(per_child) == registered, "a child without its row's outcome, or an outcome without its child"
    # child created + 2 parents + 1 category created; derived categories may add their own 'derived' entries
    assert all(counts == (1, 1, 4, 2, 1, True, 1, 1) for counts in per_child.values()), per_child
    return registered


# -- one transaction per child, and a stopped import finished ------------------------------------------------------


def test_a_failing_statement_stops_the_import_without_half_a_child_and_importing_again_finishes_it(
    registry: Running, channel: grpc.Channel, secrets: Secrets
) -> None:
    """The mother of row 180 cannot be written (a trigger refuses her, as a failing disk or a broken constraint
    would): her batch (rows 152-201) goes back whole, the batches before it stay whole, and once the fault is
    gone importing the file again records the rest, each row once."""
    db = registry.database
    town = bearer(secrets.token(THIRD_TENANT, Role.CASEWORKER, user="zhou.caseworker"))
    content = survey_csv(7, 300, changes={180: {"mother_name": "毒药蓉"}}, town=THIRD_TENANT)
    owner = create_engine(db.owner_url)
    with owner.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION refuse_member() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " IF NEW.name = '毒药蓉' THEN RAISE EXCEPTION 'the disk is full'; END IF; RETURN NEW; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER refuse_member BEFORE INSERT ON family_members FOR EACH ROW EXECUTE FUNCTION refuse_member()"
            )
        )
    stub = survey_pb2_grpc.SurveyServiceStub(channel)
    seen: dict[int, survey_pb2.SurveyRowResult] = {}
    try:
        with pytest.raises(grpc.RpcError) as failed:
            for message in stub.ImportSurvey(requests(content), metadata=town, timeout=300):
                seen.update({row.row_number: row for row in message.rows})
        assert failed.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
    finally:
        with owner.begin() as connection:
            connection.execute(text("DROP TRIGGER refuse_member ON family_members"))
            connection.execute(text("DROP FUNCTION refuse_member()"))
        owner.dispose()

    assert set(seen) == set(range(2, 152)), "the batches before the failing one, and only those, were reported"
    (first,) = [row[0] for row in query(db, "SELECT id FROM survey_imports", THIRD_TENANT)]
    children = whole_children(db, [first], THIRD_TENANT)
    assert len(children) == sum(1 for row in seen.values() if row.outcome == ACCEPTED) > 100
    assert scalar(db, "SELECT count(*) FROM survey_import_rows WHERE import_id = :i", THIRD_TENANT, i=first) == 150
    poisoned = "SELECT count(*) FROM family_members WHERE name = '毒药蓉'"
    assert scalar(db, poisoned, THIRD_TENANT) == 0
    imports = stub.ListSurveyImports(survey_pb2.ListSurveyImportsRequest(), metadata=town)
    assert [(i.import_id, i.status, i.rows) for i in imports.imports] == [
        (first, survey_pb2.SURVEY_IMPORT_STATUS_STOPPED, 150)
    ]

    rows, summary = import_all(stub, town, content)
    assert set(rows) == set(range(2, 302)) and summary.rows == 300
    again = {n for n, row in rows.items() if row.outcome == UNCHANGED}
    assert again == {n for n, row in seen.items() if row.outcome == ACCEPTED}
    assert {rows[n].child_id for n in again} == children
    assert rows[180].outcome == ACCEPTED and scalar(db, poisoned, THIRD_TENANT) == 1
    everyone = whole_children(db, [first, summary.import_id], THIRD_TENANT)
    assert len(everyone) == summary.accepted + len(children)

    def state() -> tuple[int, ...]:
        counted = [
            "SELECT count(*) FROM children",
            "SELECT count(*) FROM family_members",
            "SELECT count(*) FROM child_categories",
            "SELECT count(*) FROM change_history",
            "SELECT count(*) FROM outbox",
            "SELECT count(*) FROM child_match_keys",
        ]
        return tuple(scalar(db, sql, THIRD_TENANT) for sql in counted)

    before = state()
    _, third = import_all(stub, town, content)
    assert third.accepted == 0 and third.unchanged == summary.accepted + summary.unchanged and state() == before


def test_a_surveyed_child_is_recorded_as_the_api_calls_record_one(
    registry: Running, channel: grpc.Channel, caseworker: Any
) -> None:
    """The same records, change history, timeline and events, in the same order, as RegisterChild, then
    AddFamilyMember for each parent and AddCategory: consumers cannot tell the survey from the API. A child
    under 3 with a local household registration, so a derived category (and its event) comes too."""
    born = date.today() - timedelta(days=400)
    category = DifficultyCategory.POVERTY.value
    surveyed_row = {
        "legal_name": "赵一鸣",
        "sex": "男",
        "birth_date": born.isoformat(),
        "identity_number": make_identity_number("110111", born, 11),
        "household_division_code": PILOT_TENANT,
        "residence_division_code": PILOT_TENANT + "201",
        "school": "",
        "categories": category,
        "father_name": "赵建国",
        "mother_name": "孙丽",
    }
    rows, _ = import_all(survey_pb2_grpc.SurveyServiceStub(channel), caseworker, csv_of([surveyed_row]))
    assert rows[2].outcome == ACCEPTED, rows[2]
    surveyed = rows[2].child_id

    register = registry_pb2_grpc.RegistryServiceStub(channel)
    casework = casework_pb2_grpc.CaseworkServiceStub(channel)
    entered = register.RegisterChild(
        registry_pb2.RegisterChildRequest(
            legal_name="钱一鸣",
            sex=common_pb2.SEX_MALE,
            birth_date=common_pb2.Date(year=born.year, month=born.month, day=born.day),
            identity_number=make_identity_number("110111", born, 13),
            household_division_code=PILOT_TENANT,
            residence_division_code=PILOT_TENANT + "201",
        ),
        metadata=caseworker,
    ).child.child_id
    for relationship, name in (("father", "钱建国"), ("mother", "周丽")):
        casework.AddFamilyMember(
            casework_pb2.AddFamilyMemberRequest(
                child_id=entered, member=registry_pb2.FamilyMember(name=name, relationship=relationship)
            ),
            metadata=caseworker,
        )
    casework.AddCategory(
        casework_pb2.AddCategoryRequest(
            child_id=entered, category=category, source="survey", evidence="排查摸底表 第2行"
        ),
        metadata=caseworker,
    )

    def recorded(child_id: str) -> dict[str, list[Any]]:
        key = f"{PILOT_TENANT}:{child_id}"
        return {
            "events": query(
                registry.database, "SELECT event_type FROM outbox WHERE message_key = :k ORDER BY id", k=key
            ),
            "history": query(
                registry.database,
                "SELECT entity_type, action, role, actor FROM change_history WHERE child_id = :c ORDER BY id",
                c=child_id,
            ),
            "timeline": query(registry.database, "SELECT kind FROM timeline_entries WHERE child_id = :c", c=child_id),
            "family": query(
                registry.database,
                "SELECT relationship, guardian, status FROM family_members WHERE child_id = :c ORDER BY relationship",
                c=child_id,
            ),
            "categories": query(
                registry.database,
                "SELECT source, valid_to IS NULL FROM child_categories WHERE child_id = :c ORDER BY source",
                c=child_id,
            ),
            "case": query(registry.database, "SELECT status FROM case_files WHERE child_id = :c", c=child_id),
        }

    survey_record, api_record = recorded(surveyed), recorded(entered)
    assert survey_record == api_record
    assert [e for (e,) in survey_record["events"]] == [
        "minorprot.registry.v1.ChildCategoriesChanged",  # derived at registration: under 3, local
        "minorprot.registry.v1.ChildRegistered",
        "minorprot.registry.v1.CaseFileOpened",
        "minorprot.registry.v1.ChildCategoriesChanged",  # the survey's category
    ]
    assert [(e, a) for e, a, *_ in survey_record["history"]] == [
        ("child", "created"),
        ("category", "derived"),
        ("family_member", "created"),
        ("family_member", "created"),
        ("category", "created"),
    ]
    keys = "SELECT count(*) FROM child_match_keys WHERE child_id = :c"
    assert scalar(registry.database, keys, c=surveyed) == scalar(registry.database, keys, c=entered) > 5


# -- a crash -------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_import_killed_midway_is_finished_by_importing_again_each_row_once(
    postgres_url: str, kafka: KafkaSettings, secrets: Secrets
) -> None:
    """The registry process is killed (SIGKILL) while it imports: what it committed is whole children with
    their rows' outcomes; a registry started again takes the import over at once and records the rest."""
    db = migrated_database(postgres_url, "registry", APPEND_ONLY_TABLES)
    port = free_port()
    env = service_env(db, kafka, secrets, **isolated_kafka_env(kafka)) | {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GRPC_PORT": str(port),
        "OTEL_TRACES_EXPORTER": "none",
    }
    process = subprocess.Popen([sys.executable, "-m", "services.registry", "serve"], cwd=ROOT, env=env)
    content = survey_csv(11, 3000)
    metadata = bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER))
    seen: dict[int, survey_pb2.SurveyRowResult] = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                onboard(f"127.0.0.1:{port}", secrets, (PILOT_TENANT, "良乡镇"))
                break
            except grpc.RpcError:
                assert process.poll() is None and time.monotonic() < deadline, "the registry did not come up"
                time.sleep(0.3)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stream = survey_pb2_grpc.SurveyServiceStub(channel).ImportSurvey(requests(content), metadata=metadata)
            with pytest.raises(grpc.RpcError):
                for count, message in enumerate(stream, start=1):
                    seen.update({row.row_number: row for row in message.rows})
                    if count == 4:
                        process.send_signal(signal.SIGKILL)
                        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)

    (first,) = [row[0] for row in query(db, "SELECT id FROM survey_imports")]
    kept = scalar(db, "SELECT count(*) FROM survey_import_rows WHERE import_id = :i", i=first)
    assert len(seen) <= kept < 3000, "killed while importing"
    children = whole_children(db, [first], PILOT_TENANT)

    with registry_on(db, kafka, secrets) as restarted, restarted.channel() as channel:
        stub = survey_pb2_grpc.SurveyServiceStub(channel)
        rows, summary = import_all(stub, metadata, content)
        listed = stub.ListSurveyImports(survey_pb2.ListSurveyImportsRequest(), metadata=metadata).imports
    assert set(rows) == set(range(2, 3002))
    before = {n for n, row in rows.items() if row.outcome == UNCHANGED}
    assert len(before) == len(children) and {rows[n].child_id for n in before} == children
    everyone = whole_children(db, [first, summary.import_id], PILOT_TENANT)
    assert len(everyone) == summary.accepted + len(children) == scalar(db, "SELECT count(*) FROM children")
    assert summary.possible_duplicates == 0, "no row taken for a duplicate of its own earlier self"
    assert all("duplicate in this file" in r.problems[0].reason for r in rows.values() if r.problems)
    assert [(i.import_id, i.status) for i in listed] == [
        (summary.import_id, survey_pb2.SURVEY_IMPORT_STATUS_FINISHED),
        (first, survey_pb2.SURVEY_IMPORT_STATUS_STOPPED),
    ]


# -- one import of a file at a time ------------------------------------------------------------------------------


def test_two_imports_of_the_same_file_at_once_one_is_refused(
    registry: Running, channel: grpc.Channel, caseworker: Any, secrets: Secrets
) -> None:
    db = registry.database
    content = survey_csv(23, 1500)
    stub = survey_pb2_grpc.SurveyServiceStub(channel)
    outcomes: dict[str, Any] = {}
    start = threading.Barrier(2)

    def run(name: str, who: Any) -> None:
        start.wait()
        try:
            outcomes[name] = import_all(stub, who, content)
        except grpc.RpcError as refused:
            outcomes[name] = refused

    colleague = bearer(secrets.token(PILOT_TENANT, Role.TOWN_ADMIN, user="wang.admin"))
    threads = [threading.Thread(target=run, args=args) for args in (("li", caseworker), ("wang", colleague))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    refused = [o for o in outcomes.values() if isinstance(o, grpc.RpcError)]
    finished = [o for o in outcomes.values() if not isinstance(o, grpc.RpcError)]
    assert len(refused) == len(finished) == 1, outcomes
    assert refused[0].code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "already being imported" in (refused[0].details() or "")
    rows, summary = finished[0]
    assert summary.rows == 1500 and set(rows) == set(range(2, 1502))

    # While one runs, a dry run of the same file is no import: it goes ahead.
    stream = stub.ImportSurvey(requests(content), metadata=caseworker, timeout=300)
    next(stream)  # the first batch is in: the import is running
    with pytest.raises(grpc.RpcError) as second:
        import_all(stub, colleague, content)
    assert second.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "started" in (second.value.details() or "") and "by li.caseworker" in (second.value.details() or "")
    _, checked = import_all(stub, colleague, content, dry_run=True)
    assert checked.rows == 1500 and checked.dry_run
    *_, last = stream
    assert last.summary.unchanged == summary.accepted + summary.unchanged and last.summary.accepted == 0
    children = {r.child_id for r in rows.values() if r.outcome == ACCEPTED}
    assert children <= {row[0] for row in query(db, "SELECT id FROM children")}
    numbers = query(db, "SELECT identity_number_index, count(*) FROM children GROUP BY 1 HAVING count(*) > 1")
    assert numbers in ([], [(None, numbers[0][1])] if numbers else [])  # no number twice (only the missing ones)


# -- the history ----------------------------------------------------------------------------------------------------


def test_imports_and_their_rows_are_listed_for_the_town_alone(
    registry: Running, channel: grpc.Channel, caseworker: Any, secrets: Secrets
) -> None:
    stub = survey_pb2_grpc.SurveyServiceStub(channel)
    content = survey_csv(31, 120, changes={5: {"birth_date": "2015-02-30"}, 9: {"residence_division_code": "1"}})
    _, older = import_all(stub, caseworker, survey_csv(37, 10), dry_run=True)
    _, checked = import_all(stub, caseworker, content, dry_run=True)
    _, imported = import_all(stub, caseworker, content)

    imports = stub.ListSurveyImports(survey_pb2.ListSurveyImportsRequest(page_size=2), metadata=caseworker)
    newest = imports.imports[0]
    assert [i.import_id for i in imports.imports] == [imported.import_id, checked.import_id]
    assert imports.next_page_token
    assert (newest.file_name, newest.file_sha256, newest.imported_by) == (
        "排查摸底.csv",
        imported.file_sha256,
        "li.caseworker",
    )
    assert (newest.dry_run, newest.status, newest.rows, newest.rejected, newest.accepted) == (
        False,
        survey_pb2.SURVEY_IMPORT_STATUS_FINISHED,
        120,
        2,
        118,
    )
    assert newest.finished_at.seconds >= newest.started_at.seconds > 0
    assert imports.imports[1].dry_run and imports.imports[1].accepted == 118
    rest = stub.ListSurveyImports(
        survey_pb2.ListSurveyImportsRequest(page_size=2, page_token=imports.next_page_token), metadata=caseworker
    )
    assert rest.imports[0].import_id == older.import_id
    assert not {i.import_id for i in rest.imports} & {imported.import_id, checked.import_id}

    for summary in (checked, imported):
        rejected = stub.ListSurveyImportRows(
            survey_pb2.ListSurveyImportRowsRequest(
                import_id=summary.import_id, outcomes=[Outcome.SURVEY_ROW_OUTCOME_REJECTED]
            ),
            metadata=caseworker,
        )
        assert rejected.survey_import.import_id == summary.import_id
        assert [(r.row_number, r.problems[0].column) for r in rejected.rows] == [
            (5, "出生日期"),
            (9, "现居住地区划代码"),
        ]
        assert "not a real date" in rejected.rows[0].problems[0].reason
    page = stub.ListSurveyImportRows(
        survey_pb2.ListSurveyImportRowsRequest(import_id=imported.import_id, page_size=100), metadata=caseworker
    )
    more = stub.ListSurveyImportRows(
        survey_pb2.ListSurveyImportRowsRequest(
            import_id=imported.import_id, page_size=100, page_token=page.next_page_token
        ),
        metadata=caseworker,
    )
    numbers = [r.row_number for r in [*page.rows, *more.rows]]
    assert numbers == list(range(2, 122)) and not more.next_page_token
    assert all(r.child_id for r in page.rows if r.outcome == ACCEPTED)

    # Another town sees none of it; the district reads the town's as it reads its register; the public nothing.
    other = bearer(secrets.token(OTHER_TENANT, Role.CASEWORKER))
    assert not stub.ListSurveyImports(survey_pb2.ListSurveyImportsRequest(), metadata=other).imports
    with pytest.raises(grpc.RpcError) as hidden:
        stub.ListSurveyImportRows(survey_pb2.ListSurveyImportRowsRequest(import_id=imported.import_id), metadata=other)
    assert hidden.value.code() is grpc.StatusCode.NOT_FOUND
    district = bearer(secrets.token(PILOT_TENANT, Role.DISTRICT_OFFICER))
    assert stub.ListSurveyImports(survey_pb2.ListSurveyImportsRequest(), metadata=district).imports
    for role in (Role.PUBLIC, Role.MANDATED_REPORTER, Role.FINANCE_AUDITOR):
        with pytest.raises(grpc.RpcError) as denied:
            stub.ListSurveyImports(
                survey_pb2.ListSurveyImportsRequest(), metadata=bearer(secrets.token(PILOT_TENANT, role))
            )
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as denied:
            stub.ListSurveyImportRows(
                survey_pb2.ListSurveyImportRowsRequest(import_id=imported.import_id),
                metadata=bearer(secrets.token(PILOT_TENANT, role)),
            )
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as unknown:
        stub.ListSurveyImports(survey_pb2.ListSurveyImportsRequest(page_token="nonsense"), metadata=caseworker)
    assert unknown.value.code() is grpc.StatusCode.INVALID_ARGUMENT
