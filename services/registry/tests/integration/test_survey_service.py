"""The survey import on the embedded default (SQLite), as `make up` runs it: one import of a file at a time
there too, an import whose process died is taken over, and the batched matching is MatchChild's own.
"""

from __future__ import annotations

import base64
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database
from platform_runtime.migrations import upgrade
from platform_runtime.pii import BlindIndex, FieldCipher
from platform_runtime.settings import decode_key, decode_keyring
from platform_runtime.tenancy import acting_as
from platform_runtime.vocabulary import china_today
from services.registry.adapters.orm import ChildRecord, FamilyMemberRecord, metadata
from services.registry.adapters.survey_orm import SurveyImportRecord
from services.registry.domain import synthetic
from services.registry.domain.codes import Sex
from services.registry.domain.family import FamilyMember
from services.registry.domain.matching import rank_candidates
from services.registry.service_layer.casework import CaseworkService
from services.registry.service_layer.commands import MatchProbe, RegisterChild
from services.registry.service_layer.matching import CANDIDATE_MIN_SCORE, BatchMatcher, name_count
from services.registry.service_layer.registry import RegistryService
from services.registry.service_layer.scope import Scope
from services.registry.service_layer.survey import SurveyService
from services.registry.service_layer.survey_results import ImportOptions, ImportStatus, RowOutcome, RowResult
from services.registry.service_layer.survey_runs import STALE_AFTER
from services.registry.service_layer.views import Village
from services.registry.tests.integration.test_survey_batches import csv_of, survey_csv
from tests.support.infra import DISTRICT, PILOT_TENANT

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CASEWORKER = Principal(
    user_id="li.caseworker", display_name="li", role=Role.CASEWORKER, tenant=PILOT_TENANT, district=DISTRICT
)
OPTIONS = ImportOptions("排查摸底.csv", progress_every=50)


@dataclass
class Embedded:
    registry: RegistryService
    casework: CaseworkService
    survey: SurveyService
    database: Database
    clock: list[datetime]

    def count(self, model: type[object], *where: object) -> int:
        with self.database.unit_of_work(PILOT_TENANT) as uow:
            return int(uow.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Embedded]:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    upgrade("services.registry", url)
    database = Database.connect(url, metadata)
    blind_index = BlindIndex(decode_key(base64.b64encode(os.urandom(32)).decode()))
    cipher = FieldCipher(decode_keyring("k1:" + base64.b64encode(os.urandom(32)).decode()))
    clock = [T0]
    registry = RegistryService(database, cipher, blind_index)
    casework = CaseworkService(database, blind_index)
    survey = SurveyService(registry, casework, database, blind_index, now=lambda: clock[0])
    with acting_as(
        Principal(user_id="system", display_name="system", role=Role.SYSTEM, tenant=PILOT_TENANT, district=DISTRICT)
    ):
        registry.onboard_tenant(PILOT_TENANT, "良乡镇", DISTRICT)
    yield Embedded(registry, casework, survey, database, clock)
    database.engine.dispose()


def test_one_import_of_a_file_at_a_time_and_one_whose_process_died_is_taken_over(embedded: Embedded) -> None:
    content = survey_csv(41, 200)
    with acting_as(CASEWORKER):
        first = embedded.survey.import_survey(content, OPTIONS)
        done = next(first)  # rows 2-51 recorded: the import runs
        assert len(done.rows) == 50
        with pytest.raises(errors.Conflict, match=r"already being imported .* by li\.caseworker"):
            next(embedded.survey.import_survey(content, OPTIONS))
        embedded.clock[0] = T0 + timedelta(seconds=1)
        *_, checked = embedded.survey.import_survey(content, ImportOptions("排查摸底.csv", dry_run=True))
        assert checked.summary is not None and checked.summary.rows == 200  # a dry run is no import

        # The first import's process died (it is never resumed here): after STALE_AFTER without progress the
        # next import of the file takes it over and finishes it, each row once.
        embedded.clock[0] = T0 + STALE_AFTER + timedelta(seconds=2)
        *_, last = embedded.survey.import_survey(content, OPTIONS)
        assert last.summary is not None
        registered_before = {r.child_id for r in done.rows if r.outcome is RowOutcome.ACCEPTED}
        assert last.summary.unchanged == len(registered_before)
        assert embedded.count(ChildRecord) == len(registered_before) + last.summary.accepted

        # Were it alive after all, its next batch would be refused, and change nothing.
        children = embedded.count(ChildRecord)
        with pytest.raises(errors.Conflict, match="took it over"):
            next(first)
        assert embedded.count(ChildRecord) == children

        views, _ = embedded.survey.list_imports()
    assert [(v.dry_run, v.status, v.rows) for v in views] == [
        (False, ImportStatus.FINISHED, 200),
        (True, ImportStatus.FINISHED, 200),
        (False, ImportStatus.STOPPED, 50),
    ]
    assert embedded.count(SurveyImportRecord, SurveyImportRecord.running_file.is_not(None)) == 0


def test_a_row_whose_family_the_use_cases_refuse_is_rejected_whole(embedded: Embedded) -> None:
    """AddFamilyMember refuses a name of more than 100 characters: the row is rejected with its column, and
    neither the child nor the other parent is recorded (before, the child went in without that parent)."""
    rows = [
        {
            "legal_name": "孙小雨",
            "sex": "女",
            "birth_date": "2016-05-12",
            "residence_division_code": PILOT_TENANT + "201",
            "father_name": "孙" * 101,
            "mother_name": "李梅",
            "categories": "poverty",
        },
        {
            "legal_name": "孙小雪",
            "sex": "女",
            "birth_date": "2017-05-12",
            "residence_division_code": PILOT_TENANT + "201",
            "mother_name": "李梅",
            "categories": "poverty",
            "category_evidence": "证" * 4001,
        },
    ]
    with acting_as(CASEWORKER):
        *_, last = embedded.survey.import_survey(csv_of(rows), OPTIONS)
        (father,) = next(r for r in _rows(embedded) if r.row_number == 2).problems
        (evidence,) = next(r for r in _rows(embedded) if r.row_number == 3).problems
    assert last.summary is not None and last.summary.rejected == 2
    assert (father.column, father.field) == ("父亲姓名", "father_name") and "100" in father.reason
    assert (evidence.column, evidence.field) == ("困境类别依据", "category_evidence")
    assert embedded.count(ChildRecord) == embedded.count(FamilyMemberRecord) == 0


def _rows(embedded: Embedded) -> list[RowResult]:
    (latest, *_), _ = embedded.survey.list_imports()
    return list(embedded.survey.import_rows(latest.import_id)[1])


def test_the_batched_matching_finds_what_match_child_finds(embedded: Embedded) -> None:
    """Candidates, scores and their order as MatchChild gives them, for noisy reports of registered children,
    namesakes and children not in the register: the survey's matcher is MatchChild in fewer queries."""
    rng = random.Random(5)
    as_of = date(2024, 6, 1)
    children = synthetic.generate_children(160, rng=rng, as_of=as_of)
    registered, absent = children[:120], children[120:]
    with acting_as(CASEWORKER):
        for child in registered:
            view = embedded.registry.register_child(
                RegisterChild(
                    legal_name=child.name,
                    sex=child.sex,
                    birth_date=child.birth_date,
                    identity_number=child.identity_number or "",
                    household_division_code=PILOT_TENANT,
                    residence_division_code=PILOT_TENANT + child.residence_code[9:],
                    school=child.school or "",
                )
            )
            for parent in child.parents:
                embedded.casework.add_family_member(view.child_id, FamilyMember(parent.relationship, parent.name))
        probes: dict[int, MatchProbe] = {}
        for number, child in enumerate(registered[:60] + absent, start=2):
            facts, _ = synthetic.make_noisy_report(child, rng, as_of=as_of)
            probes[number] = MatchProbe(
                name=facts.name or "",
                identity_number=(child.identity_number or "") if facts.identity_key else "",
                birth_date=facts.birth_date,
                sex=facts.sex or Sex.UNKNOWN,
                guardian_names=facts.guardian_names,
                division_code=facts.division_code or "",
                school=facts.school or "",
            )
        probes[200] = MatchProbe(name=registered[0].name)  # a name alone
        probes[201] = MatchProbe(name=registered[1].name, guardian_names=(registered[1].parents[0].name,))

        expected = {
            n: [(c.child.child_id, round(c.score, 9)) for c in embedded.registry.match_child(probe, 50)]
            for n, probe in probes.items()
        }
        with embedded.database.unit_of_work(PILOT_TENANT) as uow:
            scope = Scope(uow, CASEWORKER, today=china_today(), now=T0)
            found = BatchMatcher(embedded.registry).candidates(scope, probes)
    batched = {
        n: [
            (r.record_id, round(r.result.score, 9))
            for r in rank_candidates(
                facts, candidates, min_score=CANDIDATE_MIN_SCORE, limit=50, name_count=name_count(counts)
            )
        ]
        for n, (facts, candidates, counts) in found.items()
    }
    assert batched == expected
    assert sum(1 for ranked in expected.values() if ranked) > 40  # most probes have candidates


def test_a_row_at_a_village_the_town_does_not_list_is_refused_as_register_child_refuses_it(
    embedded: Embedded,
) -> None:
    listed, unlisted = PILOT_TENANT + "201", PILOT_TENANT + "202"
    admin = Principal(
        user_id="zhang.admin", display_name="zhang", role=Role.TOWN_ADMIN, tenant=PILOT_TENANT, district=DISTRICT
    )
    with acting_as(admin):
        embedded.registry.set_villages([Village(listed, "黄辛庄村")])
    row = {"legal_name": "孙小雨", "sex": "女", "birth_date": "2016-05-12", "mother_name": "李梅"}
    with acting_as(CASEWORKER):
        with pytest.raises(errors.InvalidInput) as refused:
            embedded.registry.register_child(
                RegisterChild(legal_name="孙小雨", birth_date=date(2016, 5, 12), residence_division_code=unlisted)
            )
        content = csv_of(
            [
                row | {"residence_division_code": listed},
                row | {"residence_division_code": unlisted, "legal_name": "孙小雪"},
            ]
        )
        *_, last = embedded.survey.import_survey(content, OPTIONS)
        outcomes = {r.row_number: r for r in _rows(embedded)}
    assert last.summary is not None and (last.summary.accepted, last.summary.rejected) == (1, 1)
    ((field, reason),) = [(v.field, v.message) for v in refused.value.violations]
    assert [(p.field, p.reason) for p in outcomes[3].problems] == [(field, reason)]
    assert outcomes[3].problems[0].column == "现居住地区划代码"
    assert embedded.count(ChildRecord) == 1
