"""A child the survey records in bulk (its rows written a table at a time: adapters/bulk_rows.py) is the
child RegisterChild, AddFamilyMember and AddCategory record one call at a time: the same rows in every
table, the same events, on PostgreSQL (INSERT from arrays) and on SQLite (multi-row insert) alike.

The same child goes into two fresh registers with the same keys and clocks, once by each path; then every
table of the two is compared, ids replaced by the table they belong to and the encrypted identity number by
what it decrypts to.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database
from platform_runtime.migrations import upgrade
from platform_runtime.pii import BlindIndex, FieldCipher
from platform_runtime.settings import decode_key, decode_keyring
from platform_runtime.tenancy import acting_as
from services.registry.adapters.orm import APPEND_ONLY_TABLES, metadata
from services.registry.domain.codes import DifficultyCategory, Relationship, Sex
from services.registry.domain.family import FamilyMember
from services.registry.domain.identity import make_identity_number
from services.registry.service_layer.casework import CaseworkService
from services.registry.service_layer.commands import NewCategory, RegisterChild
from services.registry.service_layer.registry import RegistryService
from services.registry.service_layer.survey import SurveyService
from services.registry.service_layer.survey_results import ImportOptions
from services.registry.tests.integration.test_survey_batches import csv_of
from tests.support.infra import DISTRICT, PILOT_TENANT
from tests.support.services import migrated_database

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TODAY = NOW.date()
BORN = TODAY - timedelta(days=400)  # under 3 with a local household: a derived category comes too
CASEWORKER = Principal(
    user_id="li.caseworker", display_name="li", role=Role.CASEWORKER, tenant=PILOT_TENANT, district=DISTRICT
)
SYSTEM = Principal(user_id="system", display_name="system", role=Role.SYSTEM, tenant=PILOT_TENANT, district=DISTRICT)
FILE_NAME = "排查摸底.csv"
CHILD = RegisterChild(
    legal_name="赵一鸣",
    sex=Sex.MALE,
    birth_date=BORN,
    identity_number=make_identity_number("110111", BORN, 11),
    household_division_code=PILOT_TENANT,
    residence_division_code=PILOT_TENANT + "201",
    school="良乡小学",
)
PARENTS = (FamilyMember(Relationship.FATHER, "赵建国"), FamilyMember(Relationship.MOTHER, "孙丽"))
CATEGORY = DifficultyCategory.POVERTY.value
SKIPPED = {"survey_imports", "survey_import_rows"}  # the import's own record: the API path has none


class Register:
    def __init__(self, database: Database, keys: tuple[str, str]) -> None:
        self.database = database
        self.blind_index = BlindIndex(decode_key(keys[0]))
        self.cipher = FieldCipher(decode_keyring("k1:" + keys[1]))
        clocks: dict[str, Any] = {"today": lambda: TODAY, "now": lambda: NOW}
        self.registry = RegistryService(database, self.cipher, self.blind_index, **clocks)
        self.casework = CaseworkService(database, self.blind_index, **clocks)
        self.survey = SurveyService(self.registry, self.casework, database, self.blind_index, **clocks)
        with acting_as(SYSTEM):
            self.registry.onboard_tenant(PILOT_TENANT, "良乡镇", DISTRICT)

    def tables(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every table's rows, ids as the table they belong to, the identity number decrypted, sorted."""
        with self.database.unit_of_work(PILOT_TENANT) as uow:
            found = {
                table.name: [dict(row._mapping) for row in uow.session.execute(select(table))]
                for table in metadata.sorted_tables
                if table.name not in SKIPPED
            }
        ids = {
            row["id"]: f"<{name}>"
            for name, rows in found.items()
            for row in rows
            if isinstance(row.get("id"), str) and name != "tenants"
        }
        shown: dict[str, list[tuple[Any, ...]]] = {}
        for name, rows in found.items():
            shown[name] = sorted(
                (
                    tuple((column, self._shown(name, column, value, ids)) for column, value in row.items())
                    for row in rows
                ),
                key=repr,
            )
        return shown

    def _shown(self, table: str, column: str, value: Any, ids: dict[str, str]) -> Any:
        if column == "identity_number_cipher" and value:
            return self.cipher.decrypt(value, tenant=PILOT_TENANT, field="identity_number")
        if table == "outbox" and column in ("id", "event_id", "envelope", "created_at", "trace_headers"):
            return "<varies>"  # made by the outbox for each event (the envelope holds the event id)
        if table in ("change_history", "timeline_entries", "audit_log") and column == "id":
            return "<serial>"
        if isinstance(value, str):
            for child_id, label in ids.items():
                value = value.replace(child_id, label)
        return value


def _keys() -> tuple[str, str]:
    return base64.b64encode(os.urandom(32)).decode(), base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(params=["sqlite", "postgresql"])
def two_registers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Register, Register]]:
    keys = _keys()
    databases = []
    for name in ("surveyed", "registered"):
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / name}.db"
            upgrade("services.registry", url)
        else:
            url = migrated_database(request.getfixturevalue("postgres_url"), "registry", APPEND_ONLY_TABLES).app_url
        databases.append(Database.connect(url, metadata))
    yield Register(databases[0], keys), Register(databases[1], keys)
    for database in databases:
        database.dispose()


def test_a_child_recorded_in_bulk_is_the_child_the_api_calls_record(two_registers: tuple[Register, Register]) -> None:
    surveyed, registered = two_registers
    row = {
        "legal_name": CHILD.legal_name,
        "sex": CHILD.sex.label,
        "birth_date": BORN.isoformat(),
        "identity_number": CHILD.identity_number,
        "household_division_code": CHILD.household_division_code,
        "residence_division_code": CHILD.residence_division_code,
        "school": CHILD.school,
        "categories": CATEGORY,
        "father_name": PARENTS[0].name,
        "mother_name": PARENTS[1].name,
    }
    with acting_as(CASEWORKER):
        *_, last = surveyed.survey.import_survey(csv_of([row]), ImportOptions(FILE_NAME))
        view = registered.registry.register_child(CHILD)
        for parent in PARENTS:
            registered.casework.add_family_member(view.child_id, parent)
        evidence = f"排查摸底表 {FILE_NAME} 第2行"  # what the survey writes when the row gives none
        registered.casework.add_category(NewCategory(view.child_id, CATEGORY, "survey", evidence=evidence))
    assert last.summary is not None and last.summary.accepted == 1, last

    by_survey, by_api = surveyed.tables(), registered.tables()
    assert by_survey == by_api
    assert len(by_survey["children"]) == len(by_survey["case_files"]) == 1
    assert len(by_survey["family_members"]) == 2 and len(by_survey["child_categories"]) == 2  # typed and derived
    events = [dict(r)["event_type"] for r in by_survey["outbox"]]
    assert sorted(events) == sorted(
        [
            "minorprot.registry.v1.TenantOnboarded",
            "minorprot.registry.v1.ChildCategoriesChanged",
            "minorprot.registry.v1.ChildRegistered",
            "minorprot.registry.v1.CaseFileOpened",
            "minorprot.registry.v1.ChildCategoriesChanged",
        ]
    ), events
    assert len(by_survey["child_match_keys"]) > 5 and len(by_survey["change_history"]) == 5
