"""Each district's agency directory and routing rule versions: kept by the district administrator, read by routing.

District data lives in tables keyed by the district's code in `tenant_id` (the same row-level security as the
towns' tables), read and written in a unit of work of the district. A district that has saved nothing routes by
the plan (`PLAN_RULES`, `AGENCIES`, version 0). A rule set is never changed: a change is a new version in effect
from a day not before today, so a report received on a day is always routed by what was in effect that day.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, UnitOfWork, utcnow
from platform_runtime.tenancy import require_role
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from services.referral.adapters import messages
from services.referral.adapters.orm import DirectoryAgencyRecord, ReferralRecord, RuleSetRecord
from services.referral.domain import events
from services.referral.domain.agencies import AGENCIES, Agency, Contacts, Level
from services.referral.domain.lifecycle import clean_text
from services.referral.domain.routing import (
    PLAN_RULES,
    Preview,
    ReportFacts,
    RoutingRule,
    explain,
    rule_from_dict,
    rule_to_dict,
    rules_from_list,
)

CACHE_SECONDS = 30.0
CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True)
class RuleSetView:
    version: int  # 0: the plan's built-in rules
    effective_from: date
    rules: tuple[RoutingRule, ...]
    note: str = ""
    created_by: str = ""
    in_use: bool = False


@dataclass
class _Cached:
    loaded: float
    directory: dict[str, Agency]
    rule_sets: list[RuleSetView]


class RoutingConfig:
    def __init__(self, database: Database, *, now: Callable[[], datetime] = utcnow) -> None:
        self._database = database
        self._now = now
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    # -- what routing reads (cached; a saved change is seen here at once, by other replicas within 30 s) -----

    def directory(self, district: str) -> Mapping[str, Agency]:
        return self._load(district).directory

    def rules_for(self, district: str, day: date) -> RuleSetView:
        """The newest version in effect on `day`, or the plan's rules if none is."""
        for rule_set in self._load(district).rule_sets:  # newest first
            if rule_set.effective_from <= day:
                return rule_set
        return RuleSetView(0, PLAN_RULES[0].effective_from, PLAN_RULES)

    def _load(self, district: str) -> _Cached:
        with self._lock:
            cached = self._cache.get(district)
            if cached is not None and time.monotonic() - cached.loaded < CACHE_SECONDS:
                return cached
        with self._database.unit_of_work(district, district=district) as uow:
            directory = _directory(uow, district)
            rule_sets = _rule_sets(uow, district, directory)
        cached = _Cached(time.monotonic(), directory, rule_sets)
        with self._lock:
            self._cache[district] = cached
        return cached

    def _forget(self, district: str) -> None:
        with self._lock:
            self._cache.pop(district, None)

    # -- the district administrator ------------------------------------------------------------------------

    def list_agencies(self) -> list[Agency]:
        """The district's directory: for everyone who sends, moves or oversees referrals."""
        caller = require_role(
            Role.DISTRICT_ADMIN,
            Role.LEADING_GROUP_OFFICE,
            Role.CASEWORKER,
            Role.TOWN_ADMIN,
            Role.DISTRICT_OFFICER,
            Role.AGENCY_OFFICER,
        )
        return sorted(self.directory(caller.district).values(), key=lambda agency: (not agency.member, agency.code))

    def save_agency(self, agency: Agency) -> Agency:
        """Add a unit to the district's directory or change one (the first change copies the plan's directory
        into the district, so it is edited on top of what routing already used)."""
        caller = _admin()
        agency = _valid_agency(agency)
        district = caller.district
        with self._database.unit_of_work(district, district=district) as uow:
            rows = {row.code: row for row in uow.session.scalars(_directory_query(district))}
            if not rows:
                for seed in AGENCIES:
                    rows[seed.code] = _agency_row(district, seed, caller.user_id, self._now())
                    uow.session.add(rows[seed.code])
            existing = rows.get(agency.code)
            if agency.supervisor and agency.supervisor not in rows and agency.supervisor != agency.code:
                raise errors.InvalidInput.single("supervisor", "is not a unit of the district's directory")
            if existing is None:
                uow.session.add(_agency_row(district, agency, caller.user_id, self._now()))
            else:
                fresh = _agency_row(district, agency, caller.user_id, self._now())
                for column in ("name_zh", "name_en", "kind", "level", "duties", "contacts", "supervisor", "member"):
                    setattr(existing, column, getattr(fresh, column))
                existing.updated_at, existing.updated_by = fresh.updated_at, fresh.updated_by
            # Notify tells agencies on the district's contact points (announced under the district's code).
            uow.publish(messages.pending(district, _saved(agency)))
            uow.commit()
        self._forget(district)
        return self.directory(district)[agency.code]

    def list_rule_sets(self) -> list[RuleSetView]:
        caller = _reader()
        self._forget(caller.district)  # the administrator sees what is stored now, not what routing cached
        stored = self._load(caller.district).rule_sets
        return [*stored, RuleSetView(0, PLAN_RULES[0].effective_from, PLAN_RULES, "the pilot plan's rules")]

    def rule_set(self, version: int) -> RuleSetView:
        for rule_set in self.list_rule_sets():
            if rule_set.version == version:
                return rule_set
        raise errors.NotFound("no such rule set version in this district")

    def add_rule_set(self, rules: Sequence[Mapping[str, Any]], effective_from: date, note: str = "") -> RuleSetView:
        """A new version of the district's rules, in effect from `effective_from` (today or later)."""
        caller = _admin()
        district = caller.district
        today = self._now().astimezone(CHINA_STANDARD_TIME).date()
        if effective_from < today:
            raise errors.InvalidInput.single("effective_from", "must be today or later: reports already routed stay so")
        note = clean_text(note, "note", 1000, required=False)
        directory = self.directory(district)
        parsed = rules_from_list(rules, effective_from, directory)
        with self._database.unit_of_work(district, district=district) as uow:
            latest = uow.session.scalar(
                select(func.max(RuleSetRecord.version)).where(RuleSetRecord.tenant_id == district)
            )
            record = RuleSetRecord(
                tenant_id=district,
                version=(latest or 0) + 1,
                effective_from=effective_from,
                rules=[rule_to_dict(rule) for rule in parsed],
                note=note,
                created_at=self._now(),
                created_by=caller.user_id,
            )
            uow.session.add(record)
            uow.commit()  # two saves at once: the second's primary key collides and it fails (no overwrite)
        self._forget(district)
        return self.rule_set(record.version)

    def preview(
        self,
        facts: ReportFacts,
        day: date,
        *,
        version: int | None = None,
        rules: Sequence[Mapping[str, Any]] | None = None,
    ) -> tuple[int, Preview]:
        """What a case would be routed to on `day` and why: by the version in effect (or the one named), or by
        draft rules not saved yet (each rule can be tried alone this way)."""
        caller = _reader()
        directory = self.directory(caller.district)
        if rules is not None:
            chosen = RuleSetView(-1, day, rules_from_list(rules, day, directory))
        elif version is not None:
            chosen = self.rule_set(version)
        else:
            chosen = self.rules_for(caller.district, day)
        effective = tuple(replace(rule, effective_from=min(rule.effective_from, day)) for rule in chosen.rules)
        return chosen.version, explain(facts, day, effective, directory)


def _reader() -> Principal:
    return require_role(Role.DISTRICT_ADMIN, Role.LEADING_GROUP_OFFICE)


def _admin() -> Principal:
    return require_role(Role.DISTRICT_ADMIN)


def _directory_query(district: str) -> Any:
    return select(DirectoryAgencyRecord).where(DirectoryAgencyRecord.tenant_id == district)


def _directory(uow: UnitOfWork, district: str) -> dict[str, Agency]:
    rows = list(uow.session.scalars(_directory_query(district)))
    if not rows:
        return {agency.code: agency for agency in AGENCIES}
    return {row.code: _agency(row) for row in rows}


def _rule_sets(uow: UnitOfWork, district: str, directory: Mapping[str, Agency]) -> list[RuleSetView]:
    rows = uow.session.scalars(
        select(RuleSetRecord)
        .where(RuleSetRecord.tenant_id == district)
        .order_by(RuleSetRecord.effective_from.desc(), RuleSetRecord.version.desc())
    )
    used = set(
        uow.session.scalars(
            select(ReferralRecord.rule_set_version)
            .where(ReferralRecord.tenant_id.startswith(district, autoescape=True))
            .distinct()
        )
    )
    return [
        RuleSetView(
            row.version,
            row.effective_from,
            tuple(rule_from_dict(rule, row.effective_from, directory) for rule in row.rules),
            row.note,
            row.created_by,
            row.version in used,
        )
        for row in rows
    ]


def _agency(row: DirectoryAgencyRecord) -> Agency:
    contacts = row.contacts or {}
    return Agency(
        row.code,
        row.name_zh,
        row.name_en,
        tuple(row.duties or ()),
        kind=row.kind,
        level=Level(row.level),
        contacts=Contacts(
            tuple(str(user) for user in contacts.get("user_ids", []) or []),  # type: ignore[attr-defined]
            str(contacts.get("duty_phone", "")),
            str(contacts.get("email", "")),
            str(contacts.get("webhook", "")),
        ),
        supervisor=row.supervisor,
        member=row.member,
    )


def _agency_row(district: str, agency: Agency, by: str, at: datetime) -> DirectoryAgencyRecord:
    return DirectoryAgencyRecord(
        tenant_id=district,
        code=agency.code,
        name_zh=agency.name_zh,
        name_en=agency.name_en,
        kind=agency.kind or agency.code,
        level=agency.level.value,
        duties=list(agency.duties),
        contacts={
            "user_ids": list(agency.contacts.user_ids),
            "duty_phone": agency.contacts.duty_phone,
            "email": agency.contacts.email,
            "webhook": agency.contacts.webhook,
        },
        supervisor=agency.supervisor,
        member=agency.member,
        updated_at=at,
        updated_by=by,
    )


def _valid_agency(agency: Agency) -> Agency:
    problems = []
    if not agency.code or len(agency.code) > 40 or not set(agency.code) <= CODE_CHARS:
        problems.append(errors.FieldViolation("code", "must be 1 to 40 lower-case letters, digits or underscores"))
    if not agency.name_zh.strip() or len(agency.name_zh) > 100:
        problems.append(errors.FieldViolation("name_zh", "is required (at most 100 characters)"))
    if len(agency.name_en) > 200:
        problems.append(errors.FieldViolation("name_en", "must be at most 200 characters"))
    if not agency.duties:
        problems.append(errors.FieldViolation("duties", "name at least one duty the unit accepts"))
    webhook = agency.contacts.webhook
    if webhook and not webhook.startswith("https://"):
        problems.append(errors.FieldViolation("contacts.webhook", "must be an https:// address"))
    email = agency.contacts.email
    if email and ("@" not in email or len(email) > 200):
        problems.append(errors.FieldViolation("contacts.email", "is not an e-mail address"))
    if problems:
        raise errors.InvalidInput(problems)
    return replace(agency, name_zh=agency.name_zh.strip(), name_en=agency.name_en.strip())


def _saved(agency: Agency) -> events.DirectoryAgencySaved:
    """The unit's contact points (its district's towns share the directory)."""
    contacts = agency.contacts
    return events.DirectoryAgencySaved(
        agency_code=agency.code,
        duty_phone=contacts.duty_phone,
        email=contacts.email,
        webhook=contacts.webhook,
        contact_user_ids=tuple(contacts.user_ids),
    )
