"""MatchChild: the register's children a report may be about, ranked. Candidate choice (which records are
scored) is here, for MatchChild and the survey's batches alike.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

from sqlalchemy import Integer, Select, String, and_, bindparam, cast, func, null, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement

from platform_runtime.tenancy import require_role
from services.registry.adapters.orm import ChildMatchKey, ChildRecord, FamilyMemberRecord
from services.registry.domain import matching
from services.registry.domain.identity import is_valid_identity_number, normalize_identity_number
from services.registry.domain.matching import RankedCandidate
from services.registry.service_layer.access import READER_ROLES
from services.registry.service_layer.child_views import child_views
from services.registry.service_layer.commands import MatchProbe
from services.registry.service_layer.inputs import IDENTITY_FIELD
from services.registry.service_layer.match_keys import (
    PARENT_RELATIONSHIPS,
    RECORD_FACT_COLUMNS,
    match_key_digest,
    record_facts,
)
from services.registry.service_layer.scope import Scope
from services.registry.service_layer.use_cases import RegistryUseCases
from services.registry.service_layer.views import Candidate

AUTO_MATCH_LIMIT = 10
CANDIDATE_MIN_SCORE = 0.3  # below this a record is not worth showing a person
MAX_CANDIDATES_SCORED = 200  # the records sharing the most blocking keys with the probe are scored
SELECTIVE_KEY_PREFIXES = ("id:", "gd:")
KEYS_PER_STATEMENT = 2000  # a batch's probe keys in one statement at most (drivers limit its parameters)


Found = tuple[matching.ChildFacts, list[tuple[str, matching.ChildFacts]], dict[str, int]]


def choose_candidates(
    scope: Scope,
    digest: Callable[[str], str],
    probes: Mapping[int, matching.ChildFacts],
    *,
    leaving_out: Select[tuple[str]] | None = None,
) -> dict[int, Found]:
    """Candidate choice, for MatchChild (one probe) and the survey's batches (many) alike: for each probe,
    its facts, the records sharing a blocking key with it as the facts scoring needs, and how many records
    share its name's sound key (how common the name is: `matching.NameCount`).

    Records sharing a selective key (identity number, a guardian's name) come first, then those sharing the
    most keys, so a common name's many records never push the true candidate out of the
    MAX_CANDIDATES_SCORED scored. Guardians' names are joined only for probes naming some: otherwise they
    cannot count. One statement for a probe, one for each KEYS_PER_STATEMENT keys of a batch. `leaving_out`
    selects children the register is taken without (candidates and name counts alike)."""
    found: dict[int, Found] = {}
    keyed: dict[int, tuple[dict[str, str], str, str]] = {}  # probe -> ({digest: key}, sound key, its digest)
    for n, facts in probes.items():
        (name, *_) = facts.names or ("",)  # a report gives one name
        sound_key = matching.name_sound_key(name) if name else ""
        found[n] = (facts, [], {sound_key: 0} if name else {})
        keys = {digest(k): k for k in matching.lookup_keys(facts)}
        if keys:
            keyed[n] = (keys, sound_key, digest(sound_key) if name else "")
    chunk: list[int] = []
    size = 0
    for n, (keys, _, _) in keyed.items():
        chunk.append(n)
        size += len(keys)
        if size >= KEYS_PER_STATEMENT or n == next(reversed(keyed)):
            with_guardians = {m for m in chunk if probes[m].guardian_names}
            dialect = scope.session.get_bind().dialect.name
            statement = (
                _cached_statement(dialect, bool(with_guardians))
                if leaving_out is None
                else _candidates_statement(dialect, bool(with_guardians), leaving_out)
            )
            parameters = _statement_parameters(dialect, scope.tenant, {m: keyed[m] for m in chunk}, with_guardians)
            rows: dict[tuple[int, str], tuple[Row[Any], list[str]]] = {}
            for row in scope.session.execute(statement, parameters):
                entry = rows.get((row.probe, row.id))
                if entry is None:
                    entry = rows[row.probe, row.id] = (row, [])
                if row.guardian_name:
                    entry[1].append(row.guardian_name)
            for (m, child_id), (columns, names) in rows.items():
                _, candidates, name_counts = found[m]
                candidates.append((child_id, record_facts(columns, tuple(names))))
                if name_counts:
                    name_counts[keyed[m][1]] = columns.sharing_the_name
            chunk, size = [], 0
    return found


def _statement_parameters(
    dialect: str, tenant: str, keyed: Mapping[int, tuple[dict[str, str], str, str]], with_guardians: Collection[int]
) -> dict[str, object]:
    """The probes' keys and name sound keys as the statement's few parameters (whatever their number)."""
    key_rows = [
        (n, key_digest, int(key.startswith(SELECTIVE_KEY_PREFIXES)))
        for n, (keys, _, _) in keyed.items()
        for key_digest, key in keys.items()
    ]
    name_rows = [(n, sound_digest, int(n in with_guardians)) for n, (_, _, sound_digest) in keyed.items()]
    if dialect == "postgresql":
        return {
            "tenant": tenant,
            **{
                f"key_{name}": list(c)
                for name, c in zip(("probe", "match_key", "selective"), zip(*key_rows, strict=True), strict=True)
            },
            **{
                f"name_{name}": list(c)
                for name, c in zip(("probe", "sound_key", "with_guardians"), zip(*name_rows, strict=True), strict=True)
            },
        }
    return {"tenant": tenant, "key_rows": json.dumps(key_rows), "name_rows": json.dumps(name_rows)}


def _rows_parameter(dialect: str, kind: str, columns: tuple[tuple[str, Any], ...]) -> Select[Any]:
    """A parameter of rows as a table: on PostgreSQL one array a column (unnest), elsewhere JSON (json_each)."""
    if dialect == "postgresql":
        return select(
            *(
                func.unnest(bindparam(f"{kind}_{name}", type_=postgresql.ARRAY(type_))).label(name)
                for name, type_ in columns
            )
        )
    rows = func.json_each(bindparam(f"{kind}_rows", type_=String)).table_valued("value")
    return select(
        *(
            cast(func.json_extract(rows.c.value, f"$[{i}]"), type_).label(name)
            for i, (name, type_) in enumerate(columns)
        )
    )


@functools.cache
def _cached_statement(dialect: str, with_guardians: bool) -> Select[Any]:
    return _candidates_statement(dialect, with_guardians, None)


def _candidates_statement(dialect: str, with_guardians: bool, leaving_out: Select[tuple[str]] | None) -> Select[Any]:
    """choose_candidates' statement (parameters: _statement_parameters): each probe's records ranked
    (row_number over the probe), the first MAX_CANDIDATES_SCORED kept, with the probe's name count."""
    tenant = bindparam("tenant", type_=String)
    probe_keys = _rows_parameter(
        dialect, "key", (("probe", Integer()), ("match_key", String()), ("selective", Integer()))
    ).cte("probe_keys")
    probe_names = _rows_parameter(
        dialect, "name", (("probe", Integer()), ("sound_key", String()), ("with_guardians", Integer()))
    ).cte("probe_names")
    kept: list[ColumnElement[bool]] = []
    if leaving_out is not None:
        kept.append(~leaving_out.where(leaving_out.selected_columns[0] == ChildMatchKey.child_id).exists())
    shared = func.count()
    by_selective_key = func.max(probe_keys.c.selective)
    ranked = (
        select(
            probe_keys.c.probe,
            ChildMatchKey.child_id,
            func.row_number()
            .over(
                partition_by=probe_keys.c.probe,
                order_by=(by_selective_key.desc(), shared.desc(), ChildMatchKey.child_id),
            )
            .label("place"),
        )
        .join_from(probe_keys, ChildMatchKey, ChildMatchKey.match_key == probe_keys.c.match_key)
        .where(ChildMatchKey.tenant_id == tenant, *kept)
        .group_by(probe_keys.c.probe, ChildMatchKey.child_id)
        .cte("ranked")
    )
    name_counts = (
        select(
            probe_names.c.probe,
            probe_names.c.with_guardians,
            func.count(ChildMatchKey.child_id).label("sharing_the_name"),
        )
        .join_from(
            probe_names,
            ChildMatchKey,
            and_(ChildMatchKey.tenant_id == tenant, ChildMatchKey.match_key == probe_names.c.sound_key, *kept),
            isouter=True,
        )
        .group_by(probe_names.c.probe, probe_names.c.with_guardians)
        .cte("name_counts")
    )
    guardian_name = FamilyMemberRecord.name if with_guardians else null()
    statement = (
        select(
            ranked.c.probe,
            *RECORD_FACT_COLUMNS,
            guardian_name.label("guardian_name"),
            name_counts.c.sharing_the_name,
        )
        .join_from(ranked, ChildRecord, ChildRecord.id == ranked.c.child_id)
        .join(name_counts, name_counts.c.probe == ranked.c.probe)
        .where(
            ranked.c.place <= MAX_CANDIDATES_SCORED,
            ChildRecord.tenant_id == tenant,
            ChildRecord.merged_into.is_(None),
        )
    )
    if with_guardians:
        statement = statement.outerjoin(
            FamilyMemberRecord,
            and_(
                name_counts.c.with_guardians == 1,
                FamilyMemberRecord.tenant_id == tenant,
                FamilyMemberRecord.child_id == ChildRecord.id,
                or_(FamilyMemberRecord.guardian, FamilyMemberRecord.relationship.in_(PARENT_RELATIONSHIPS)),
            ),
        )
    # In each probe's rank order: scoring keeps the order of candidates scoring the same.
    return statement.order_by(ranked.c.probe, ranked.c.place)


class MatchUseCases(RegistryUseCases):
    def match_child(self, probe: MatchProbe, limit: int = AUTO_MATCH_LIMIT) -> list[Candidate]:
        """Ranked candidates: blocking keys (the identity number's blind index among them) find a few
        records through an index, then each is scored on names, pinyin, dates, place and guardians."""
        caller = require_role(*READER_ROLES)  # reporters and agencies never search the register
        limit = min(max(limit or AUTO_MATCH_LIMIT, 1), 50)
        facts = self._probe_facts(probe)
        keys = matching.lookup_keys(facts)
        if not keys:
            return []
        with self._database.unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            _, candidates, name_counts = choose_candidates(scope, self._key_digest, {0: facts})[0]
            ranked = matching.rank_candidates(
                facts,
                candidates,
                min_score=CANDIDATE_MIN_SCORE,
                limit=limit,
                name_count=lambda sound_key: name_counts.get(sound_key, 0),
            )
            if not ranked:
                return []
            records = {
                row.id: row
                for row in uow.session.scalars(
                    select(ChildRecord).where(
                        ChildRecord.tenant_id == caller.tenant, ChildRecord.id.in_([r.record_id for r in ranked])
                    )
                )
            }
            views = {v.child_id: v for v in child_views(scope, [records[r.record_id] for r in ranked])}
            scope.audit_reads("match_child", "child", [r.record_id for r in ranked])
            uow.commit()
            found = [Candidate(views[r.record_id], r.result.score, r.result.reasons) for r in ranked]
            return found

    def _key_digest(self, key: str) -> str:
        return match_key_digest(self._blind_index, key)

    def _near_keys(self, number: str) -> frozenset[str]:
        """The blind indexes of the numbers one digit away, for a number that fails its check: a valid number
        is never one digit away from another valid one, so it is right or wrong in more than one digit."""
        if not number or is_valid_identity_number(number):
            return frozenset()
        return frozenset(self._blind_index.digest(n, field=IDENTITY_FIELD) for n in matching.one_digit_away(number))

    def _probe_facts(self, probe: MatchProbe) -> matching.ChildFacts:
        number = normalize_identity_number(probe.identity_number) if probe.identity_number.strip() else ""
        return matching.ChildFacts(
            name=probe.name.strip() or None,
            identity_key=self._blind_index.digest(number, field=IDENTITY_FIELD) if number else None,
            identity_near_keys=self._near_keys(number),
            birth_date=probe.birth_date,
            approximate_age=probe.approximate_age or None,
            age_observed_on=self._today() if probe.approximate_age else None,
            sex=probe.sex if probe.sex.is_known else None,
            guardian_names=probe.guardian_names,
            division_code=probe.division_code or None,
            school=probe.school or None,
        )


class BatchMatcher:
    """MatchChild (RegistryService.match_child) for a batch of rows at once: the same probe facts, the same
    candidate choice (choose_candidates), name counts and scores, in one statement a batch (a few for a large
    one) instead of a statement a row.

    `leaving_out` selects children the register is taken without (candidates and name counts alike):
    the survey leaves out the children its file registered, so that a dry run, an import and an import
    finished after an interruption see the same register."""

    def __init__(self, registry: MatchUseCases, *, leaving_out: Select[tuple[str]] | None = None) -> None:
        self._registry = registry
        self._leaving_out = leaving_out
        self._digests: dict[str, str] = {}

    def _digest(self, key: str) -> str:
        if (found := self._digests.get(key)) is None:
            found = self._digests[key] = self._registry._key_digest(key)
        return found

    def candidates(self, scope: Scope, probes: Mapping[int, MatchProbe]) -> dict[int, Found]:
        """For each probe: its facts, its candidates and its name counts (choose_candidates)."""
        facts = {n: self._registry._probe_facts(probe) for n, probe in probes.items()}
        return choose_candidates(scope, self._digest, facts, leaving_out=self._leaving_out)

    def best(self, scope: Scope, probes: Mapping[int, MatchProbe]) -> dict[int, RankedCandidate[str] | None]:
        """Each probe's best candidate, if it scores at least CANDIDATE_MIN_SCORE (MatchChild's first)."""
        best: dict[int, RankedCandidate[str] | None] = {}
        for n, (facts, candidates, name_counts) in self.candidates(scope, probes).items():
            ranked = matching.rank_candidates(
                facts,
                candidates,
                min_score=CANDIDATE_MIN_SCORE,
                limit=1,
                name_count=name_count(name_counts),
            )
            best[n] = ranked[0] if ranked else None
        return best


def name_count(counts: Mapping[str, int]) -> matching.NameCount:
    return lambda sound_key: counts.get(sound_key, 0)
