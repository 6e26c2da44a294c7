"""MatchChild at register scale, and how well it finds planted duplicates.

The register: BENCH_CHILDREN synthetic children (default 100,000; BENCH_CHILDREN=1000000 for the issue's
size) with both parents, in a fresh registry database. They live in the district's 28 towns as synthetic.py
spreads them, each town a tenant, and each report is matched by a caseworker of the child's town (MatchChild
is scoped to the caller's town). BENCH_ONE_TOWN=1 puts every child in the pilot town instead: the worst case,
far beyond any real town. The 1,000,000 run takes about 20 minutes on this 2-core machine (2 minutes to
generate, 13 to load, 3 for the probes). Loading goes around the API on
purpose: RegisterChild records a child in about 20 ms (case file, timeline, change history, derived
categories, events), so a million would take most of a day. The loader uses the service layer's own
functions for everything matching depends on (FieldCipher, BlindIndex and mask_identity_number for the
identity number; match_keys.record_facts, matching.index_keys and match_keys.match_key_digest for the blocking
keys, as store_match_keys does) and writes children, family_members and child_match_keys with COPY in
batches of BENCH_BATCH, as the database superuser (COPY FROM does not run under row-level security).
Case files, timelines and events, which MatchChild never reads, are not written. The tables are then
VACUUM ANALYZEd, as autovacuum leaves a table in service.

Probes: BENCH_PROBES noisy reports of register children (synthetic.make_noisy_report: homophones,
swapped, mistyped or dropped name characters, shifted birth dates, an age for a date, another village,
guardians missing or another carer named, the identity number in three reports of ten) and as many
reports of children who are not in the register (siblings of register children among them), sent one
after the other over gRPC, each probe once (the caches of names' pinyin start cold, as in service).

Figures: MatchChild p50/p99 beside the floor, the bare blind-index lookup (one SELECT on
child_match_keys by the identity number's key, bare psycopg); precision and recall of the top candidate
at or above matching.DEFAULT_THRESHOLD beside the identity-number-only matcher on the same probes.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

import psycopg
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc
from sqlalchemy import make_url

from bench.runner import Figure, Latencies, measure, print_figures
from platform_runtime.auth import Role
from platform_runtime.db import new_id, utcnow
from platform_runtime.pii import BlindIndex, FieldCipher, mask_identity_number
from platform_runtime.settings import decode_key, decode_keyring
from platform_runtime.telemetry import setup_tracing
from services.registry.adapters.orm import ChildRecord
from services.registry.domain import matching, synthetic
from services.registry.domain.codes import Relationship, Sex
from services.registry.service_layer.inputs import IDENTITY_FIELD
from services.registry.service_layer.match_keys import match_key_digest, record_facts
from tests.support.infra import DISTRICT, PILOT_TENANT, Secrets, start_kafka, start_postgres
from tests.support.services import bearer, running_registry

CHILDREN = int(os.environ.get("BENCH_CHILDREN", "100000"))
ONE_TOWN = os.environ.get("BENCH_ONE_TOWN", "") not in ("", "0")
PROBES = int(os.environ.get("BENCH_PROBES", "1000"))
BATCH = int(os.environ.get("BENCH_BATCH", "10000"))
SEED = 2014

_SEX = {Sex.MALE: common_pb2.SEX_MALE, Sex.FEMALE: common_pb2.SEX_FEMALE}
_CHILD_COLUMNS = (
    "id, tenant_id, legal_name, other_names, sex, birth_date, identity_number_cipher, identity_number_index, "
    "identity_number_masked, ethnicity_code, household_division_code, household_address, residence_division_code, "
    "residence_address, school, grade, description, provisional, created_at, created_by"
)
_MEMBER_COLUMNS = (
    "id, tenant_id, child_id, name, relationship, guardian, status, evidence, evidence_document, "
    "disability_type, disability_grade, seriously_ill, created_at"
)


@dataclass(frozen=True)
class Probe:
    tenant: str  # the town whose caseworker asks
    request: registry_pb2.MatchChildRequest
    true_child_id: str | None  # None: the child is not in the register


@dataclass(frozen=True)
class Quality:
    precision: float
    recall: float


def superuser_dsn(superuser_url: str, database: str) -> str:
    url = make_url(superuser_url).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


def load_register(dsn: str, secrets: Secrets, children: Sequence[synthetic.SyntheticChild]) -> dict[str, str]:
    """Write the children with the service layer's own encryption and keys; synthetic id -> register id."""
    cipher = FieldCipher(decode_keyring(secrets.pii_keys))
    blind_index = BlindIndex(decode_key(secrets.blind_index_key))
    ids: dict[str, str] = {}
    with psycopg.connect(dsn) as connection:
        for start in range(0, len(children), BATCH):
            batch = children[start : start + BATCH]
            rows, members, keys = [], [], []
            now = utcnow()
            for child in batch:
                child_id = ids[child.record_id] = new_id()
                number = child.identity_number or ""
                record = ChildRecord(
                    id=child_id,
                    tenant_id=child.residence_code[:9],
                    legal_name=child.name,
                    sex=child.sex.value,
                    birth_date=child.birth_date,
                    identity_number_index=blind_index.digest(number, field=IDENTITY_FIELD) if number else None,
                    household_division_code=child.household_registration_code,
                    residence_division_code=child.residence_code,
                    school=child.school or "",
                )
                rows.append(_child_row(record, number, cipher, now))
                members += [_member_row(record, parent.name, parent.relationship, now) for parent in child.parents]
                # Parents count as guardians for matching (family_facts.guardian_names), as store_match_keys reads them.
                facts = record_facts(record, child.guardian_names)
                keys += [
                    (record.tenant_id, key, child_id)
                    for key in {match_key_digest(blind_index, k) for k in matching.index_keys(facts)}
                ]
            with connection.cursor() as cursor:
                _copy(cursor, f"COPY children ({_CHILD_COLUMNS}) FROM STDIN", rows)
                _copy(cursor, f"COPY family_members ({_MEMBER_COLUMNS}) FROM STDIN", members)
                _copy(cursor, "COPY child_match_keys (tenant_id, match_key, child_id) FROM STDIN", keys)
            connection.commit()
    # What autovacuum does to a table in service: statistics, and a visibility map for index-only scans.
    with psycopg.connect(dsn, autocommit=True) as connection:
        for table in ("children", "child_match_keys", "family_members"):
            connection.execute(f"VACUUM ANALYZE {table}")
    return ids


def _child_row(record: ChildRecord, number: str, cipher: FieldCipher, now: datetime) -> tuple[object, ...]:
    return (
        record.id,
        record.tenant_id,
        record.legal_name,
        "[]",
        record.sex,
        record.birth_date,
        cipher.encrypt(number, tenant=record.tenant_id, field=IDENTITY_FIELD) if number else None,
        record.identity_number_index,
        mask_identity_number(number) if number else "",
        "01",
        record.household_division_code,
        "",
        record.residence_division_code,
        "",
        record.school,
        "",
        "",
        False,
        now,
        "bench",
    )


def _member_row(child: ChildRecord, name: str, relationship: Relationship, now: datetime) -> tuple[object, ...]:
    return (new_id(), child.tenant_id, child.id, name, relationship.value, False, "normal", "", "", "", "", False, now)


def _copy(cursor: psycopg.Cursor[object], statement: str, rows: Sequence[tuple[object, ...]]) -> None:
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def make_probes(
    register: Sequence[synthetic.SyntheticChild],
    outsiders: Sequence[synthetic.SyntheticChild],
    ids: dict[str, str],
    rng: random.Random,
    today: date,
) -> list[Probe]:
    """Noisy reports of register children and of children not in it, shuffled."""
    reported: list[tuple[synthetic.SyntheticChild, str | None]]
    reported = [(child, ids[child.record_id]) for child in rng.sample(list(register), PROBES)]
    reported += [(child, None) for child in outsiders]
    probes = []
    for child, true_id in reported:
        facts, _noises = synthetic.make_noisy_report(child, rng, as_of=today)
        birth = facts.birth_date
        probes.append(
            Probe(
                child.residence_code[:9],
                registry_pb2.MatchChildRequest(
                    name=facts.name or "",
                    # The report knows the number where the noisy facts kept its blind key.
                    identity_number=(child.identity_number or "") if facts.identity_key else "",
                    birth_date=common_pb2.Date(year=birth.year, month=birth.month, day=birth.day)
                    if birth
                    else common_pb2.Date(),
                    approximate_age=facts.approximate_age or 0,
                    sex=_SEX.get(facts.sex, common_pb2.SEX_UNSPECIFIED) if facts.sex else common_pb2.SEX_UNSPECIFIED,
                    guardian_names=list(facts.guardian_names),
                    division_code=facts.division_code or "",
                    school=facts.school or "",
                ),
                true_id,
            )
        )
    rng.shuffle(probes)
    return probes


def quality(called: Sequence[str | None], probes: Sequence[Probe]) -> Quality:
    outcome = Counter(
        "tp" if c is not None and c == p.true_child_id else ("fp" if c is not None else "")
        for c, p in zip(called, probes, strict=True)
    )
    planted = sum(1 for p in probes if p.true_child_id is not None)
    precision = outcome["tp"] / (outcome["tp"] + outcome["fp"]) if outcome["tp"] + outcome["fp"] else 1.0
    return Quality(precision, outcome["tp"] / planted if planted else 1.0)


def run() -> list[Figure]:
    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    setup_tracing("bench")
    postgres_url = start_postgres()
    kafka = start_kafka()
    secrets = Secrets.generate().for_audience("registry")
    today = date.today()
    rng = random.Random(SEED)
    started = time.perf_counter()
    everyone = synthetic.generate_children(CHILDREN + PROBES, rng=rng, as_of=today)
    if ONE_TOWN:  # every child in one of the pilot town's villages
        everyone = [replace(c, residence_code=PILOT_TENANT + c.residence_code[9:]) for c in everyone]
    held_out = set(rng.sample(range(len(everyone)), PROBES))
    register = [c for i, c in enumerate(everyone) if i not in held_out]
    outsiders = [everyone[i] for i in sorted(held_out)]
    generated = time.perf_counter() - started

    with running_registry(postgres_url, kafka, secrets) as registry:
        directory = registry_pb2_grpc.TenantDirectoryServiceStub(registry.channel())
        for code, name in synthetic.FANGSHAN_TOWNS.items():
            directory.OnboardTenant(
                registry_pb2.OnboardTenantRequest(code=code, name=name, district_code=DISTRICT),
                metadata=bearer(secrets.token(code, Role.SYSTEM)),
            )
        dsn = superuser_dsn(postgres_url, registry.database.name)
        started = time.perf_counter()
        ids = load_register(dsn, secrets, register)
        loaded = time.perf_counter() - started
        probes = make_probes(register, outsiders, ids, rng, today)

        stub = registry_pb2_grpc.RegistryServiceStub(registry.channel())
        caseworkers = {code: bearer(secrets.token(code, Role.CASEWORKER)) for code in synthetic.FANGSHAN_TOWNS}
        replies: dict[int, registry_pb2.MatchChildResponse] = {}

        def match(i: int) -> None:
            probe = probes[i % len(probes)]
            reply = stub.MatchChild(probe.request, metadata=caseworkers[probe.tenant])
            if i >= 0:
                replies[i] = reply

        full = measure(match, len(probes))
        called = [_called(replies[i]) for i in range(len(probes))]

        blind_index = BlindIndex(decode_key(secrets.blind_index_key))
        towns = {c.identity_number: c.residence_code[:9] for c in register if c.identity_number}
        with psycopg.connect(dsn, autocommit=True) as connection:

            def lookup(tenant: str, number: str) -> str | None:
                key = match_key_digest(blind_index, "id:" + blind_index.digest(number, field=IDENTITY_FIELD))
                row = connection.execute(
                    "SELECT child_id FROM child_match_keys WHERE tenant_id = %s AND match_key = %s", (tenant, key)
                ).fetchone()
                return str(row[0]) if row else None

            numbers = rng.sample(sorted(towns), min(len(probes), len(towns)))
            bare = measure(lambda i: lookup(towns[numbers[i % len(numbers)]], numbers[i % len(numbers)]), len(numbers))
            identity_only = [
                lookup(p.tenant, p.request.identity_number) if p.request.identity_number else None for p in probes
            ]
    drop_database(postgres_url, registry.database.name)

    ours, floor = quality(called, probes), quality(identity_only, probes)
    print(
        f"\n{CHILDREN:,} children generated in {generated:.0f} s, loaded (COPY, {BATCH:,} per batch) in {loaded:.0f} s"
        f" ({CHILDREN / loaded:,.0f} children/s) {'into the pilot town alone' if ONE_TOWN else 'over the 28 towns'};"
        f" {len(probes):,} probes, {PROBES:,} of them planted duplicates"
    )
    print("aims: p99 < 20 ms, precision >= 0.99, recall >= 0.95")
    return _figures(full, bare, ours, floor)


def _called(reply: registry_pb2.MatchChildResponse) -> str | None:
    best = reply.candidates[0] if reply.candidates else None
    return best.child.child_id if best is not None and best.score >= matching.DEFAULT_THRESHOLD else None


def drop_database(postgres_url: str, database: str) -> None:
    """A bench database is large: it goes once its server has stopped."""
    with psycopg.connect(superuser_dsn(postgres_url, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _figures(full: Latencies, bare: Latencies, ours: Quality, floor: Quality) -> list[Figure]:
    baseline = "bare blind-index SELECT (psycopg)"
    identity_only = "identity number only (blind index)"
    return [
        Figure(f"MatchChild p50 latency ({CHILDREN:,} children)", full.p50, baseline, bare.p50, "ms"),
        Figure(f"MatchChild p99 latency ({CHILDREN:,} children)", full.p99, baseline, bare.p99, "ms"),
        Figure("MatchChild precision (noisy reports)", ours.precision, identity_only, floor.precision, "ratio", True),
        Figure("MatchChild recall (noisy reports)", ours.recall, identity_only, floor.recall, "ratio", True),
    ]


def main() -> None:
    where = "in one town" if ONE_TOWN else "in 28 towns"
    print_figures(f"child matching at register scale ({CHILDREN:,} children {where}, {2 * PROBES:,} probes)", run())


if __name__ == "__main__":
    main()
