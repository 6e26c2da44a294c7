"""The survey over real gRPC on real PostgreSQL: template, dry run, import, re-import, export.

A generated 1,000-row spreadsheet with planted errors of each kind must come back with exactly those
rows reported, and importing it twice must change nothing.
"""

from __future__ import annotations

import io
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import grpc
import pytest
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc, survey_pb2, survey_pb2_grpc
from openpyxl import load_workbook
from sqlalchemy import create_engine, text

from platform_runtime.auth import Role
from platform_runtime.service import build
from platform_runtime.settings import EnvReader, KafkaSettings
from services.registry import bootstrap
from services.registry.adapters.orm import APPEND_ONLY_TABLES
from services.registry.domain import synthetic
from services.registry.domain.codes import DifficultyCategory
from services.registry.domain.identity import make_identity_number
from services.registry.service_layer.survey_rows import COLUMNS, DATA_SHEET
from services.registry.settings import load_settings
from tests.support.infra import DISTRICT, PILOT_TENANT, Secrets, isolated_kafka_env
from tests.support.services import Running, bearer, migrated_database, service_env

pytestmark = pytest.mark.integration

ROWS = 1000
PLANTED = 40  # rows of each kind of error
FUZZY = 20  # rows resembling a child registered without an identity number
CHUNK = 64 * 1024
Outcome = survey_pb2.SurveyRowOutcome


@contextmanager
def running_registry_with_survey(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Running]:
    """The registry as tests/support runs it, on topics of its own: a thousand ChildRegistered events are
    nobody else's business."""
    db = migrated_database(postgres_url, "registry", APPEND_ONLY_TABLES)
    settings = load_settings(EnvReader(service_env(db, kafka, secrets, **isolated_kafka_env(kafka))))
    server = build(bootstrap.definition(settings, periodic_work=False))
    server.start()
    try:
        yield Running(server, db)
    finally:
        server.stop(grace=1)


@pytest.fixture(scope="module")
def registry(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Running]:
    with running_registry_with_survey(postgres_url, kafka, secrets) as running:
        registry_pb2_grpc.TenantDirectoryServiceStub(running.channel()).OnboardTenant(
            registry_pb2.OnboardTenantRequest(code=PILOT_TENANT, name="良乡镇", district_code=DISTRICT),
            metadata=bearer(secrets.token(PILOT_TENANT, Role.SYSTEM)),
        )
        yield running


@pytest.fixture(scope="module")
def survey(registry: Running) -> Iterator[survey_pb2_grpc.SurveyServiceStub]:
    with registry.channel() as channel:
        yield survey_pb2_grpc.SurveyServiceStub(channel)


@pytest.fixture(scope="module")
def caseworker(secrets: Secrets) -> tuple[tuple[str, str], ...]:
    return bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER, user="li.caseworker"))


# -- the planted file ---------------------------------------------------------------------------------------


@dataclass
class Planted:
    content: bytes
    kinds: dict[str, set[int]]  # kind of error -> row numbers


def cells(child: synthetic.SyntheticChild, rng: random.Random) -> dict[str, object]:
    village = PILOT_TENANT + child.residence_code[9:]
    typed_in = [c.value for c in DifficultyCategory if not c.is_derived]
    return {
        "legal_name": child.name,
        "sex": child.sex.label,
        "birth_date": child.birth_date.isoformat(),
        "identity_number": child.identity_number or "",
        "ethnicity_code": child.ethnicity.value,
        "household_division_code": PILOT_TENANT,
        "residence_division_code": village,
        "residence_address": f"良乡镇{village[-3:]}村",
        "school": child.school or "",
        "categories": rng.choice(typed_in),
        "father_name": child.parents[0].name,
        "mother_name": child.parents[1].name,
    }


def register_request(row: dict[str, object], *, with_number: bool) -> registry_pb2.RegisterChildRequest:
    born = date.fromisoformat(str(row["birth_date"]))
    return registry_pb2.RegisterChildRequest(
        legal_name=str(row["legal_name"]),
        sex=common_pb2.SEX_MALE if row["sex"] == "男性" else common_pb2.SEX_FEMALE,
        birth_date=common_pb2.Date(year=born.year, month=born.month, day=born.day),
        identity_number=str(row["identity_number"]) if with_number else "",
        residence_division_code=str(row["residence_division_code"]),
        school=str(row["school"]),
    )


@pytest.fixture(scope="module")
def planted(
    survey: survey_pb2_grpc.SurveyServiceStub,
    registry: Running,
    caseworker: tuple[tuple[str, str], ...],
) -> Planted:
    """1,000 rows of synthetic children in the template, with 40 rows of each kind of error and 20 rows of
    children registered from reports without their number; the children behind the duplicate-against-the-
    register rows are registered first, over RegisterChild. A fixed seed and day: the same file every run."""
    rng = random.Random(2014)
    born_by = date(2024, 6, 1)
    children = [c for c in synthetic.generate_children(2 * ROWS, rng=rng, as_of=born_by) if c.identity_number]
    rows = [cells(child, rng) for child in children[:ROWS]]
    numbers = rng.sample(range(ROWS), 6 * PLANTED + FUZZY)  # rows of the file, 0-based; row number = index + 2
    kinds = {
        name: {n + 2 for n in numbers[i * PLANTED : (i + 1) * PLANTED]}
        for i, name in enumerate(("checksum", "date", "division", "missing", "in_file", "in_register"))
    }
    kinds["possible_duplicate"] = {n + 2 for n in numbers[6 * PLANTED :]}
    stub = registry_pb2_grpc.RegistryServiceStub(registry.channel())
    clean = sorted(set(range(2, ROWS + 2)) - {n for found in kinds.values() for n in found})
    for number in kinds["checksum"]:
        valid = str(rows[number - 2]["identity_number"])
        rows[number - 2]["identity_number"] = valid[:-1] + ("0" if valid[-1] != "0" else "1")
    for number in kinds["date"]:
        rows[number - 2]["birth_date"] = rng.choice(("2015-02-30", "2016-04-31", "2017-13-01", "2014-06-00"))
    for number in kinds["division"]:
        rows[number - 2]["residence_division_code"] = rng.choice(("110111009201", "110112008201", PILOT_TENANT + "999"))
    for number in kinds["missing"]:
        rows[number - 2]["legal_name"] = ""
    for number in kinds["in_file"]:  # a copy of a clean row earlier in the file
        rows[number - 2] = dict(rows[rng.choice([n for n in clean if n < number]) - 2])
    for number in kinds["in_register"]:
        stub.RegisterChild(register_request(rows[number - 2], with_number=True), metadata=caseworker)
    for number in kinds["possible_duplicate"]:  # registered from a report, before anyone had the number
        stub.RegisterChild(register_request(rows[number - 2], with_number=False), metadata=caseworker)
        rows[number - 2]["identity_number"] = ""

    template = survey.GetSurveyTemplate(survey_pb2.GetSurveyTemplateRequest(), metadata=caseworker)
    workbook = load_workbook(io.BytesIO(template.content))
    sheet = workbook[DATA_SHEET]
    for row in rows:
        sheet.append([row.get(column.field, "") for column in COLUMNS])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return Planted(buffer.getvalue(), kinds)


@dataclass
class Report:
    rows: dict[int, survey_pb2.SurveyRowResult]
    summary: survey_pb2.SurveyImportSummary
    messages: int

    def numbers(self, outcome: int, words: str = "") -> set[int]:
        return {
            n
            for n, r in self.rows.items()
            if r.outcome == outcome and (words in r.note or any(words in p.reason for p in r.problems))
        }


def import_file(
    survey: survey_pb2_grpc.SurveyServiceStub,
    metadata: tuple[tuple[str, str], ...],
    content: bytes,
    *,
    dry_run: bool,
    name: str = "良乡镇排查摸底.xlsx",
) -> Report:
    def requests() -> Iterator[survey_pb2.ImportSurveyRequest]:
        options = survey_pb2.SurveyImportOptions(file_name=name, dry_run=dry_run, progress_every=100)
        yield survey_pb2.ImportSurveyRequest(options=options)
        for offset in range(0, len(content), CHUNK):
            yield survey_pb2.ImportSurveyRequest(chunk=content[offset : offset + CHUNK])

    rows: dict[int, survey_pb2.SurveyRowResult] = {}
    messages = list(survey.ImportSurvey(requests(), metadata=metadata, timeout=600))
    for message in messages:
        for row in message.rows:
            assert row.row_number not in rows, f"row {row.row_number} reported twice"
            rows[row.row_number] = row
    assert messages[-1].HasField("summary")
    return Report(rows, messages[-1].summary, len(messages))


def expected_outcomes(planted: Planted, report: Report) -> None:
    """Exactly the planted rows reported, each for its reason; every other row accepted."""
    rejected = Outcome.SURVEY_ROW_OUTCOME_REJECTED
    found = {
        "checksum": report.numbers(rejected, "check character"),
        "date": report.numbers(rejected, "not a real date"),
        "division": report.numbers(rejected, "unknown division code"),
        "missing": report.numbers(rejected, "is required"),
        "in_file": report.numbers(rejected, "duplicate in this file"),
        "in_register": report.numbers(Outcome.SURVEY_ROW_OUTCOME_UNCHANGED),
        "possible_duplicate": report.numbers(Outcome.SURVEY_ROW_OUTCOME_POSSIBLE_DUPLICATE),
    }
    for kind, numbers in planted.kinds.items():
        assert found[kind] == numbers, kind
    reported = {n for n, r in report.rows.items() if r.outcome != Outcome.SURVEY_ROW_OUTCOME_ACCEPTED}
    assert reported == set().union(*planted.kinds.values())
    assert set(report.rows) == set(range(2, ROWS + 2))
    assert report.summary.rows == ROWS
    assert report.summary.accepted == ROWS - len(reported)
    for n in planted.kinds["checksum"] | planted.kinds["date"]:
        (problem,) = report.rows[n].problems  # one problem, in the column to fix
        assert problem.column in ("公民身份号码", "出生日期")


def count(registry: Running, sql: str) -> int:
    engine = create_engine(registry.database.owner_url)
    with engine.begin() as connection:
        connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
        found = int(connection.execute(text(sql)).scalar_one())
    engine.dispose()
    return found


def tables(registry: Running) -> list[int]:
    """Rows in every table an import writes to, but its own record."""
    return [
        count(registry, "SELECT count(*) FROM children"),
        count(registry, "SELECT count(*) FROM family_members"),
        count(registry, "SELECT count(*) FROM child_categories"),
        count(registry, "SELECT count(*) FROM change_history"),
        count(registry, "SELECT count(*) FROM outbox"),
    ]


# -- the tests ------------------------------------------------------------------------------------------------


def test_the_template_lists_the_columns_and_the_codes(
    survey: survey_pb2_grpc.SurveyServiceStub, caseworker: tuple[tuple[str, str], ...]
) -> None:
    reply = survey.GetSurveyTemplate(survey_pb2.GetSurveyTemplateRequest(), metadata=caseworker)
    workbook = load_workbook(io.BytesIO(reply.content))
    assert reply.file_name.endswith(".xlsx")
    assert [c.value for c in workbook[DATA_SHEET][1]] == [column.header for column in COLUMNS]
    listed = {(row[0], row[1]) for row in workbook["填写说明"].iter_rows(min_row=2, values_only=True)}
    assert ("*性别(sex)", "1") in listed and ("民族(ethnicity_code)", "01") in listed
    assert ("困境类别(categories)", "poverty") in listed
    assert ("困境类别(categories)", "de_facto_unattended_mca_2019") not in listed  # derived: never typed in
    assert ("*现居住地区划代码(residence_division_code)", PILOT_TENANT) in listed


def test_a_dry_run_reports_exactly_the_planted_rows_and_changes_nothing(
    survey: survey_pb2_grpc.SurveyServiceStub,
    caseworker: tuple[tuple[str, str], ...],
    planted: Planted,
    registry: Running,
) -> None:
    children = count(registry, "SELECT count(*) FROM children")
    report = import_file(survey, caseworker, planted.content, dry_run=True)
    expected_outcomes(planted, report)
    assert report.messages == ROWS // 100 + 1  # progress every 100 rows, then the summary
    assert count(registry, "SELECT count(*) FROM children") == children
    # Kept only as the history of checks (ListSurveyImports): a dry run is no import.
    assert report.summary.dry_run and report.summary.import_id
    assert count(registry, "SELECT count(*) FROM survey_imports WHERE NOT dry_run") == 0


def test_the_import_registers_the_good_rows_and_importing_again_changes_nothing(
    survey: survey_pb2_grpc.SurveyServiceStub,
    caseworker: tuple[tuple[str, str], ...],
    planted: Planted,
    registry: Running,
) -> None:
    children = count(registry, "SELECT count(*) FROM children")
    first = import_file(survey, caseworker, planted.content, dry_run=False)
    expected_outcomes(planted, first)
    accepted = first.numbers(Outcome.SURVEY_ROW_OUTCOME_ACCEPTED)
    assert all(first.rows[n].child_id and not first.rows[n].note for n in accepted), "family or category missed"
    assert count(registry, "SELECT count(*) FROM children") == children + len(accepted)
    # Parents and categories went through the casework use cases with the child.
    assert count(registry, "SELECT count(*) FROM family_members") == 2 * len(accepted)
    assert count(registry, "SELECT count(*) FROM child_categories WHERE source = 'survey'") == len(accepted)
    real_import_rows = "SELECT count(*) FROM survey_import_rows r JOIN survey_imports i ON i.id = r.import_id"
    assert count(registry, real_import_rows + " WHERE NOT i.dry_run") == ROWS

    state = tables(registry)
    again = import_file(survey, caseworker, planted.content, dry_run=False)
    assert again.numbers(Outcome.SURVEY_ROW_OUTCOME_UNCHANGED) == accepted | planted.kinds["in_register"]
    assert {n: r.child_id for n, r in again.rows.items() if n in accepted} == {
        n: first.rows[n].child_id for n in accepted
    }
    assert again.numbers(Outcome.SURVEY_ROW_OUTCOME_REJECTED) == first.numbers(Outcome.SURVEY_ROW_OUTCOME_REJECTED)
    assert again.numbers(Outcome.SURVEY_ROW_OUTCOME_POSSIBLE_DUPLICATE) == planted.kinds["possible_duplicate"]
    assert again.summary.accepted == 0 and again.summary.file_sha256 == first.summary.file_sha256
    assert tables(registry) == state


def test_the_export_masks_identity_numbers_and_is_audited(
    survey: survey_pb2_grpc.SurveyServiceStub,
    caseworker: tuple[tuple[str, str], ...],
    planted: Planted,
    registry: Running,
) -> None:
    import_file(survey, caseworker, planted.content, dry_run=False)  # no-op when the import test ran first
    village = PILOT_TENANT + "201"
    chunks = list(
        survey.ExportRegister(
            survey_pb2.ExportRegisterRequest(purpose="季度分类台账报送", village_codes=[village]), metadata=caseworker
        )
    )
    assert chunks[0].file_name.endswith(".xlsx")
    workbook = load_workbook(io.BytesIO(b"".join(c.content for c in chunks)), read_only=True)
    rows = list(workbook["分类台账"].iter_rows(values_only=True))
    assert rows[0][:3] == ("困境类别", "村(居)代码", "姓名") and len(rows) > 1
    assert {row[1] for row in rows[1:]} == {village}
    masked = [str(row[5]) for row in rows[1:] if row[5]]
    assert masked and all(re.fullmatch(r"\*{17}[\dX]", m) for m in masked)  # the last character only
    children = {row[16] for row in rows[1:]}
    summary = list(workbook["汇总"].iter_rows(values_only=True))
    assert summary[-1][0] == "合计" and summary[-1][-1] == len(children)

    audited = count(
        registry,
        "SELECT count(*) FROM audit_log WHERE action = 'export_register' AND subject_type = 'child'"
        " AND purpose = '季度分类台账报送' AND actor = 'li.caseworker'",
    )
    assert audited == len(children)


def test_the_export_selects_by_category(
    survey: survey_pb2_grpc.SurveyServiceStub, caseworker: tuple[tuple[str, str], ...], planted: Planted
) -> None:
    import_file(survey, caseworker, planted.content, dry_run=False)  # no-op when the import test ran first

    def exported(*categories: str) -> list[tuple[object, ...]]:
        request = survey_pb2.ExportRegisterRequest(purpose="分类台账核对", categories=list(categories))
        content = b"".join(c.content for c in survey.ExportRegister(request, metadata=caseworker))
        return list(load_workbook(io.BytesIO(content), read_only=True)["分类台账"].iter_rows(values_only=True))[1:]

    everyone = exported()
    by_label = {c.label: c.value for c in DifficultyCategory}
    present = sorted({by_label[str(row[0])] for row in everyone if str(row[0]) in by_label})
    assert len(present) >= 2, "the planted survey records several categories"
    chosen = present[0]
    selected = exported(chosen)
    # Only that category's section, holding every child the whole register lists under it.
    assert selected and {row[0] for row in selected} == {DifficultyCategory(chosen).label}
    assert sorted(map(str, selected)) == sorted(
        str(row) for row in everyone if row[0] == DifficultyCategory(chosen).label
    )
    with pytest.raises(grpc.RpcError) as unknown:
        exported("no_such_category")
    assert unknown.value.code() is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (survey_pb2.ExportRegisterRequest(purpose=""), grpc.StatusCode.INVALID_ARGUMENT),
        (
            survey_pb2.ExportRegisterRequest(purpose="核对", village_codes=["110111009201"]),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ],
)
def test_the_export_needs_a_purpose_and_the_towns_villages(
    survey: survey_pb2_grpc.SurveyServiceStub,
    caseworker: tuple[tuple[str, str], ...],
    request_: survey_pb2.ExportRegisterRequest,
    code: grpc.StatusCode,
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        list(survey.ExportRegister(request_, metadata=caseworker))
    assert refused.value.code() is code


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED),
        (("role", Role.PUBLIC), grpc.StatusCode.PERMISSION_DENIED),
        (("role", Role.FINANCE_AUDITOR), grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_streaming_calls_are_guarded_like_unary_ones(
    survey: survey_pb2_grpc.SurveyServiceStub, secrets: Secrets, metadata: tuple[str, Role], code: grpc.StatusCode
) -> None:
    token = bearer(secrets.token(PILOT_TENANT, metadata[1])) if metadata else ()
    with pytest.raises(grpc.RpcError) as refused:
        list(survey.ExportRegister(survey_pb2.ExportRegisterRequest(purpose="看看有谁"), metadata=token))
    assert refused.value.code() is code
    options = survey_pb2.ImportSurveyRequest(options=survey_pb2.SurveyImportOptions(file_name="x.csv", dry_run=True))
    with pytest.raises(grpc.RpcError) as refused:
        list(survey.ImportSurvey(iter([options, survey_pb2.ImportSurveyRequest(chunk=b"a,b\n")]), metadata=token))
    assert refused.value.code() is code


def test_a_file_without_the_required_columns_is_refused_whole(
    survey: survey_pb2_grpc.SurveyServiceStub, caseworker: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        import_file(survey, caseworker, "姓名,性别\n王小明,男\n".encode(), dry_run=True, name="survey.csv")
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "现居住地区划代码" in (refused.value.details() or "")


def test_a_csv_survey_as_excel_saves_it_on_chinese_windows(
    survey: survey_pb2_grpc.SurveyServiceStub, caseworker: tuple[tuple[str, str], ...]
) -> None:
    """GB18030, Chinese headers without the codes, labels for codes, and an empty birth date and sex
    read from the identity number."""
    number = make_identity_number("110111", date(2016, 5, 12), 123)
    content = (
        "姓名,性别,出生日期,公民身份号码,现居住地区划代码,民族,困境类别\r\n"
        f"赵小川,,,{number},{PILOT_TENANT}205,汉,有流浪经历\r\n"
        f"钱小红,女,2013-02-29,,{PILOT_TENANT}205,回族,\r\n"
    ).encode("gb18030")
    report = import_file(survey, caseworker, content, dry_run=True, name="排查摸底.csv")
    assert report.rows[2].outcome == Outcome.SURVEY_ROW_OUTCOME_ACCEPTED, report.rows[2]
    (problem,) = report.rows[3].problems
    assert (problem.column, problem.field) == ("出生日期", "birth_date") and "not a real date" in problem.reason


def test_a_file_of_100000_rows_streams_through(
    survey: survey_pb2_grpc.SurveyServiceStub, caseworker: tuple[tuple[str, str], ...]
) -> None:
    """Beyond gRPC's 4 MiB message limit: the file goes up in chunks and every row comes back. The rows
    name another town, so they are rejected without a match: this is about the transport, not the register."""
    header = "姓名,性别,出生日期,现居住地区划代码,现居住地址"
    lines = [header] + [f"儿童{i:06d},男,2015-03-01,110111009201,周口店某村{i % 90}号" for i in range(100_000)]
    content = "\n".join(lines).encode()
    assert len(content) > 4 * 1024 * 1024
    report = import_file(survey, caseworker, content, dry_run=True, name="large.csv")
    assert report.summary.rows == report.summary.rejected == 100_000
    assert set(report.rows) == set(range(2, 100_002))
