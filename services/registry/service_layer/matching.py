"""MatchChild: the register's children a report may be about, ranked. Candidate choice (which records are
scored) is here, for MatchChild and the survey's batches alike.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from sqlalchemy import Select, String, and_, any_, bindparam, func, null, or_, select
from sqlalchemy import case as case_when
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Row
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from platform_runtime.tenancy import require_role
from services.registry.adapters.orm import (
    ChildMatchKey,
    ChildRecord,
    FamilyMemberRecord,
)
from services.registry.adapters.survey_orm import SurveyImportRowRecord
from services.registry.domain import matching
from services.registry.domain.identity import normalize_identity_number
from services.registry.domain.matching import RankedCandidate
from services.registry.service_layer.child_views import child_views
from services.registry.service_layer.match_keys import (
    PARENT_RELATIONSHIPS,
    RECORD_FACT_COLUMNS,
    match_key_digest,
    record_facts,
)
from services.registry.service_layer.scope import (
    IDENTITY_FIELD,
    INTAKE_ROLES,
    RegistryUseCases,
    Scope,
)
from services.registry.service_layer.views import (
    Candidate,
    MatchProbe,
)

AUTO_MATCH_LIMIT = 10
CANDIDATE_MIN_SCORE = 0.3  # below this a record is not worth showing a person
MAX_CANDIDATES_SCORED = 200  # the records sharing the most blocking keys with the probe are scored
SELECTIVE_KEY_PREFIXES = ("id:", "gd:")


@functools.cache
def _candidates_statement(with_guardians: bool) -> Select[Any]:
    """MatchChild's one statement, built once (parameters: tenant, keys, selective_keys, sound_key).

    Records sharing a selective key (identity number, a guardian's name) come first, then those sharing the
    most keys, so a common name's many records never push the true candidate out of the
    MAX_CANDIDATES_SCORED scored. Guardians' names are joined only when the report names some: otherwise
    they cannot count."""
    tenant = bindparam("tenant", type_=String)
    shared = func.count()
    by_selective_key = func.max(
        case_when((ChildMatchKey.match_key.in_(bindparam("selective_keys", expanding=True)), 1), else_=0)
    )
    ranked = (
        select(ChildMatchKey.child_id)
        .where(ChildMatchKey.tenant_id == tenant, ChildMatchKey.match_key.in_(bindparam("keys", expanding=True)))
        .group_by(ChildMatchKey.child_id)
        .order_by(by_selective_key.desc(), shared.desc(), ChildMatchKey.child_id)
        .limit(MAX_CANDIDATES_SCORED)
        .cte("ranked")
    )
    sharing_the_name = (
        select(func.count())
        .where(ChildMatchKey.tenant_id == tenant, ChildMatchKey.match_key == bindparam("sound_key"))
        .scalar_subquery()
    )
    guardian_name = FamilyMemberRecord.name if with_guardians else null()
    statement = (
        select(*RECORD_FACT_COLUMNS, guardian_name.label("guardian_name"), sharing_the_name.label("sharing_the_name"))
        .join(ranked, ranked.c.child_id == ChildRecord.id)
        .where(ChildRecord.tenant_id == tenant, ChildRecord.merged_into.is_(None))
    )
    if with_guardians:
        statement = statement.outerjoin(
            FamilyMemberRecord,
            and_(
                FamilyMemberRecord.tenant_id == tenant,
                FamilyMemberRecord.child_id == ChildRecord.id,
                or_(FamilyMemberRecord.guardian, FamilyMemberRecord.relationship.in_(PARENT_RELATIONSHIPS)),
            ),
        )
    return statement


class MatchUseCases(RegistryUseCases):
    def match_child(self, probe: MatchProbe, limit: int = AUTO_MATCH_LIMIT) -> list[Candidate]:
        """Ranked candidates: blocking keys (the identity number's blind index among them) find a few
        records through an index, then each is scored on names, pinyin, dates, place and guardians."""
        caller = require_role(*INTAKE_ROLES)
        limit = min(max(limit or AUTO_MATCH_LIMIT, 1), 50)
        facts = self._probe_facts(probe)
        keys = matching.lookup_keys(facts)
        if not keys:
            return []
        with self._database.unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            candidates, name_counts = self._candidates(scope, facts, keys)
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
            return [Candidate(views[r.record_id], r.result.score, r.result.reasons) for r in ranked]

    def _candidates(
        self, scope: Scope, facts: matching.ChildFacts, keys: frozenset[str]
    ) -> tuple[list[tuple[str, matching.ChildFacts]], dict[str, int]]:
        """The records sharing a blocking key with the probe, as the facts scoring needs, and how many records
        share the probe's name sound key (how common the name is: `matching.NameCount`), in one statement."""
        digests = {self._key_digest(k): k for k in keys}
        (name, *_) = facts.names or ("",)  # a report gives one name
        parameters = {
            "tenant": scope.tenant,
            "keys": list(digests),
            "selective_keys": [d for d, k in digests.items() if k.startswith(SELECTIVE_KEY_PREFIXES)],
            "sound_key": self._key_digest(matching.name_sound_key(name)) if name else "",
        }
        rows: dict[str, tuple[Row[Any], list[str]]] = {}
        sharing_the_name = 0
        for row in scope.session.execute(_candidates_statement(bool(facts.guardian_names)), parameters):
            entry = rows.get(row.id)
            if entry is None:
                entry = rows[row.id] = (row, [])
                sharing_the_name = row.sharing_the_name
            if row.guardian_name:
                entry[1].append(row.guardian_name)
        candidates = [(child_id, record_facts(columns, tuple(names))) for child_id, (columns, names) in rows.items()]
        # A name agreeing in sound has the same sound key (sorted syllables): the probe's is the one counted.
        return candidates, ({matching.name_sound_key(name): sharing_the_name} if name else {})

    def _key_digest(self, key: str) -> str:
        return match_key_digest(self._blind_index, key)

    def _probe_facts(self, probe: MatchProbe) -> matching.ChildFacts:
        number = normalize_identity_number(probe.identity_number) if probe.identity_number.strip() else ""
        return matching.ChildFacts(
            name=probe.name.strip() or None,
            identity_key=self._blind_index.digest(number, field=IDENTITY_FIELD) if number else None,
            birth_date=probe.birth_date,
            approximate_age=probe.approximate_age or None,
            age_observed_on=self._today() if probe.approximate_age else None,
            sex=probe.sex if probe.sex.is_known else None,
            guardian_names=probe.guardian_names,
            division_code=probe.division_code or None,
            school=probe.school or None,
        )


class BatchMatcher:
    """MatchChild (RegistryService.match_child) for a batch of rows at once: the same blocking keys, the
    same candidates (RegistryService._candidates: the records sharing a selective key first, then those
    sharing the most keys, at most MAX_CANDIDATES_SCORED), name counts and scores, in four queries a
    batch instead of a statement a row (test_survey_service checks it against MatchChild itself).

    `leaving_out` selects children the register is taken without (candidates and name counts alike):
    the survey leaves out the children its file registered, so that a dry run, an import and an import
    finished after an interruption see the same register."""

    def __init__(self, registry: MatchUseCases, *, leaving_out: Select[tuple[str]] | None = None) -> None:
        self._registry = registry
        self._leaving_out = leaving_out
        self._digests: dict[str, str] = {}

    def _kept(self, child_id: InstrumentedAttribute[str]) -> list[ColumnElement[bool]]:
        if self._leaving_out is None:
            return []
        return [~self._leaving_out.where(SurveyImportRowRecord.child_id == child_id).exists()]

    def _digest(self, key: str) -> str:
        if (found := self._digests.get(key)) is None:
            found = self._digests[key] = self._registry._key_digest(key)
        return found

    def candidates(
        self, scope: Scope, probes: Mapping[int, MatchProbe]
    ) -> dict[int, tuple[matching.ChildFacts, list[tuple[str, matching.ChildFacts]], dict[str, int]]]:
        """For each probe: its facts, its candidates (as _candidates gives them) and its name counts."""
        facts = {n: self._registry._probe_facts(probe) for n, probe in probes.items()}
        keys = {n: matching.lookup_keys(found) for n, found in facts.items()}
        sound_keys = {n: sorted({matching.name_sound_key(name) for name in found.names}) for n, found in facts.items()}
        postings: dict[str, list[str]] = {}
        for part in _parts({self._digest(k) for found in keys.values() for k in found}):
            for key, child_id in scope.session.execute(
                select(ChildMatchKey.match_key, ChildMatchKey.child_id).where(
                    ChildMatchKey.tenant_id == scope.tenant,
                    _among(scope, ChildMatchKey.match_key, part),
                    *self._kept(ChildMatchKey.child_id),
                )
            ):
                postings.setdefault(key, []).append(child_id)
        chosen: dict[int, list[str]] = {}
        for n, found in keys.items():
            shared: Counter[str] = Counter()
            selective: set[str] = set()
            for key in found:
                for child_id in postings.get(self._digest(key), ()):
                    shared[child_id] += 1
                    if key.startswith(SELECTIVE_KEY_PREFIXES):
                        selective.add(child_id)
            ordered = sorted(shared, key=lambda c: (c not in selective, -shared[c], c))
            chosen[n] = ordered[:MAX_CANDIDATES_SCORED]
        records: dict[str, Any] = {}
        for part in _parts({c for ids in chosen.values() for c in ids}):
            for record in scope.session.execute(
                select(*RECORD_FACT_COLUMNS).where(
                    ChildRecord.tenant_id == scope.tenant,
                    _among(scope, ChildRecord.id, part),
                    ChildRecord.merged_into.is_(None),
                )
            ):
                records[record.id] = record
        guardians: dict[str, list[str]] = {}
        for part in _parts({c for n, ids in chosen.items() if facts[n].guardian_names for c in ids}):
            for child_id, name in scope.session.execute(
                select(FamilyMemberRecord.child_id, FamilyMemberRecord.name).where(
                    FamilyMemberRecord.tenant_id == scope.tenant,
                    _among(scope, FamilyMemberRecord.child_id, part),
                    or_(FamilyMemberRecord.guardian, FamilyMemberRecord.relationship.in_(PARENT_RELATIONSHIPS)),
                )
            ):
                if name:
                    guardians.setdefault(child_id, []).append(name)
        counts: dict[str, int] = {}
        for part in _parts({self._digest(k) for found in sound_keys.values() for k in found}):
            for key, count in scope.session.execute(
                select(ChildMatchKey.match_key, func.count())
                .where(
                    ChildMatchKey.tenant_id == scope.tenant,
                    _among(scope, ChildMatchKey.match_key, part),
                    *self._kept(ChildMatchKey.child_id),
                )
                .group_by(ChildMatchKey.match_key)
            ):
                counts[key] = int(count)
        found_for: dict[int, tuple[matching.ChildFacts, list[tuple[str, matching.ChildFacts]], dict[str, int]]] = {}
        for n, probe_facts in facts.items():
            with_guardians = bool(probe_facts.guardian_names)
            candidates = [
                (c, record_facts(records[c], tuple(guardians.get(c, ())) if with_guardians else ()))
                for c in chosen[n]
                if c in records
            ]
            found_for[n] = (probe_facts, candidates, {k: counts.get(self._digest(k), 0) for k in sound_keys[n]})
        return found_for

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


def _among(scope: Scope, column: InstrumentedAttribute[str], values: list[str]) -> ColumnElement[bool]:
    """column IN values; on PostgreSQL = ANY(one array), cheaper to send than thousands of parameters."""
    if scope.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(String)))
    return column.in_(values)


def _parts(values: Collection[str], size: int = 2000) -> Iterator[list[str]]:
    """Values for IN lists, a few thousand at a time (SQLite and drivers limit the parameters of a statement)."""
    ordered = sorted(values)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]
