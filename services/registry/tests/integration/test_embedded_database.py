"""The register on the embedded default (SQLite), as `make up` runs it: the same use cases, the same SQL."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database
from platform_runtime.migrations import upgrade
from platform_runtime.pii import BlindIndex, FieldCipher
from platform_runtime.settings import decode_key, decode_keyring
from platform_runtime.tenancy import acting_as
from services.registry.adapters.orm import AuditRecord, ChangeRecord, TimelineRecord, metadata
from services.registry.domain.casefile import CaseStaff
from services.registry.domain.codes import Relationship, Sex
from services.registry.domain.family import FamilyMember
from services.registry.domain.identity import make_identity_number
from services.registry.service_layer.casework import CaseworkService
from services.registry.service_layer.commands import MatchProbe, NewVisit, RegisterChild
from services.registry.service_layer.registry import RegistryService
from tests.support.infra import DISTRICT, PILOT_TENANT

pytestmark = pytest.mark.integration


def _principal(role: Role, user: str) -> Principal:
    return Principal(user_id=user, display_name=user, role=role, tenant=PILOT_TENANT, district=DISTRICT)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[RegistryService, CaseworkService, Database]]:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    upgrade("services.registry", url)
    database = Database.connect(url, metadata)
    blind_index = BlindIndex(decode_key(base64.b64encode(os.urandom(32)).decode()))
    cipher = FieldCipher(decode_keyring("k1:" + base64.b64encode(os.urandom(32)).decode()))
    registry = RegistryService(database, cipher, blind_index)
    with acting_as(_principal(Role.SYSTEM, "system")):
        registry.onboard_tenant(PILOT_TENANT, "良乡镇", DISTRICT)
    yield registry, CaseworkService(database, blind_index), database
    database.engine.dispose()


def test_matching_and_audited_reads_work_on_sqlite(
    services: tuple[RegistryService, CaseworkService, Database],
) -> None:
    registry, casework, database = services
    with acting_as(_principal(Role.CASEWORKER, "zhao.cw")):
        child = registry.register_child(
            RegisterChild(
                legal_name="张浩然",
                sex=Sex.MALE,
                birth_date=date(2015, 3, 8),
                identity_number=make_identity_number("110111", date(2015, 3, 8), 31),
                household_division_code=PILOT_TENANT,
                residence_division_code=PILOT_TENANT + "201",
            )
        )
        casework.add_family_member(child.child_id, FamilyMember(Relationship.FATHER, name="张建国"))
        # A homophone, an age instead of the date, the father named: found through the guardian's key.
        candidates = registry.match_child(MatchProbe(name="章浩然", approximate_age=11, guardian_names=("张建国",)))
        assert [c.child.child_id for c in candidates] == [child.child_id]
        assert "a guardian name matches" in candidates[0].reasons
        registry.get_child(child.child_id)

    with database.unit_of_work(PILOT_TENANT) as uow:
        audit = uow.session.execute(select(AuditRecord.actor, AuditRecord.action, AuditRecord.subject_id)).all()
    assert sorted(audit) == [("zhao.cw", "match_child", child.child_id), ("zhao.cw", "read_child", child.child_id)]


def test_case_work_on_the_registry_unit_of_work_keeps_history_timeline_and_events_on_sqlite(
    services: tuple[RegistryService, CaseworkService, Database],
) -> None:
    """The SQL registry unit of work (ADR 0018): what the fakes stand for, on the real tables."""
    registry, casework, database = services
    with acting_as(_principal(Role.CASEWORKER, "zhao.cw")):
        child = registry.register_child(
            RegisterChild(legal_name="李想", sex=Sex.FEMALE, birth_date=date(2016, 5, 1), provisional=True)
        )
        _, _, version = casework.assign_case(child.child_id, CaseStaff(responsible_person="赵专人"))
        view = casework.change_case_status(child.child_id, "assessing", "", expected_version=version)
        casework.record_visit(NewVisit(child.child_id, "", "上门了解情况"))

    assert view.version == version + 1
    with database.unit_of_work(PILOT_TENANT) as uow:
        history = uow.session.execute(
            select(ChangeRecord.entity_type, ChangeRecord.action, ChangeRecord.actor).order_by(ChangeRecord.id)
        ).all()
        timeline = uow.session.scalars(
            select(TimelineRecord.kind).where(TimelineRecord.child_id == child.child_id).order_by(TimelineRecord.id)
        ).all()
        events = uow.session.scalars(select(database.outbox.c.event_type).order_by(database.outbox.c.id)).all()
    assert [tuple(row) for row in history] == [
        ("child", "created", "zhao.cw"),
        ("case_file", "updated", "zhao.cw"),
        ("case_file", "updated", "zhao.cw"),
        ("visit", "created", "zhao.cw"),
    ]
    assert timeline == ["registered", "case_status", "visit"]
    assert [e.rsplit(".", 1)[-1] for e in events][-2:] == ["CaseAssigned", "CaseStatusChanged"]
