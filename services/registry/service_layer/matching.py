"""MatchChild: the register's children a report may be about, ranked. Candidate choice (which records are
scored) is here, for MatchChild and the survey's batches alike.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Select, String, and_, bindparam, func, null, or_, select
from sqlalchemy import case as case_when
from sqlalchemy.engine import Row

from platform_runtime.tenancy import require_role
from services.registry.adapters.orm import (
    ChildMatchKey,
    ChildRecord,
    FamilyMemberRecord,
)
from services.registry.domain import matching
from services.registry.domain.identity import normalize_identity_number
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
