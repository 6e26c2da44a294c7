"""The monthly disbursement run on PostgreSQL: every step, maker/checker, the bank's files, the ledger, and a
crash injected at every step boundary and chunk (≥ 50 points) followed by a resume that pays once."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from minorprot.benefits.v1 import events_pb2 as benefits_events
from sqlalchemy import func, select, text
from sqlalchemy.exc import ProgrammingError

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database
from platform_runtime.tenancy import acting_as
from services.benefits.adapters.orm import DisbursementLineRecord, LedgerEntryRecord, PaymentInstructionRecord
from services.benefits.domain.policy import add_months, sample_policy
from services.benefits.service_layer import eligibility
from services.benefits.service_layer.catalogue import Catalogue
from services.benefits.service_layer.disbursement import Disbursements
from services.benefits.service_layer.run_state import RunView
from tests.support.events import events_of
from tests.support.infra import DISTRICT, OTHER_TENANT, PILOT_TENANT

pytestmark = pytest.mark.integration

MAY = date(2024, 5, 1)


def person(user: str, role: Role = Role.DISTRICT_OFFICER, district: str = DISTRICT) -> Principal:
    return Principal(user_id=user, display_name=user, role=role, tenant=district, district=district)


MAKER, CHECKER, APPROVER = person("maker"), person("checker"), person("approver")
ADMIN = person("admin", Role.DISTRICT_ADMIN)


def seed_policy(database: Database) -> None:
    with acting_as(ADMIN):
        Catalogue(database).save(replace(sample_policy(DISTRICT), version=0))


def child(database: Database, town: str, child_id: str, born: date, *grants: tuple[str, date]) -> None:
    now = datetime.now(UTC)  # facts recorded after a run are looked back on by the next one
    with database.unit_of_work(town) as uow:
        eligibility.record_child(
            uow, child_id, birth_date=born, household_division_code=town + "001", at=now, account_ref=f"acct-{child_id}"
        )
        for code, starts in grants:
            eligibility.start(uow, child_id, code, starts, "approved application", at=now)
        uow.commit()


def as_(who: Principal, call: Callable[[], object]) -> object:
    with acting_as(who):
        return call()


def drive(runs: Disbursements, period: date, bank: Callable[[bytes], bytes]) -> RunView:
    """Every step to closed; each step is simply called again after a crash."""
    with acting_as(MAKER):
        run = runs.open_run(period)
        runs.compute(run.run_id)
    with acting_as(CHECKER):
        runs.check(run.run_id)
    with acting_as(APPROVER):
        runs.approve(run.run_id)
        runs.pay(run.run_id)
        runs.reconcile(run.run_id, bank(runs.payment_file(run.run_id).content))
        return runs.close(run.run_id)


def all_paid(content: bytes) -> bytes:
    rows = [row for row in csv.reader(io.StringIO(content.decode())) if row[0] == "D"]
    return "".join(f"{row[1]},PAID,\n" for row in rows).encode()


@pytest.fixture
def runs(database: Database) -> Disbursements:
    seed_policy(database)
    return Disbursements(database, chunk_size=2)


def test_a_run_goes_through_every_step_with_control_totals_and_reconciliation(database, runs):
    child(database, PILOT_TENANT, "orphan", date(2015, 1, 1), ("BLA_ORPHAN", date(2024, 1, 1)))
    # disabled from 17 May: 15/31 days -> base 58065, nursing 14516, nutrition 20000 × 15/31 = 9677.4 -> 9677
    child(
        database,
        PILOT_TENANT,
        "disabled",
        date(2016, 2, 2),
        ("BLA_DISABLED", date(2024, 5, 17)),
        ("NURSING", date(2024, 5, 17)),
        ("NUTRITION", date(2024, 5, 17)),
    )
    child(database, OTHER_TENANT, "poor", date(2012, 7, 7), ("BLA_POOR", date(2024, 5, 1)), ("BLA_ORPHAN", MAY))
    # the orphan from January: arrears Jan–Apr on this first run (4 × 144000) plus May
    with acting_as(MAKER):
        run = runs.open_run(MAY)
        assert runs.open_run(MAY).run_id == run.run_id  # opening again is the same run
        computed = runs.compute(run.run_id)
    assert computed.status == "computed"
    assert computed.line_count == 9
    assert computed.total_fen == 5 * 144_000 + (58_065 + 14_516 + 9_677) + 144_000
    assert (computed.done, computed.total) == (3, 3)

    with acting_as(MAKER), pytest.raises(errors.PermissionDenied):
        runs.check(run.run_id)
    with acting_as(CHECKER):
        assert runs.check(run.run_id).status == "checked"
    for who in (MAKER, CHECKER):
        with acting_as(who), pytest.raises(errors.PermissionDenied):
            runs.approve(run.run_id)
    with acting_as(APPROVER):
        runs.approve(run.run_id)
        with pytest.raises(errors.NotFound):
            runs.payment_file(run.run_id)  # no file before payment
        paid = runs.pay(run.run_id)
        assert runs.pay(run.run_id) == paid  # paying again issues nothing more
        file = runs.payment_file(run.run_id)

    rows = list(csv.reader(io.StringIO(file.content.decode())))
    header, details, trailer = rows[0], rows[1:-1], rows[-1]
    assert header[:3] == ["H", DISTRICT, "202405"] and header[5:] == ["9", str(computed.total_fen)]
    assert trailer == ["T", "9", str(computed.total_fen)]
    assert sum(int(row[3]) for row in details) == computed.total_fen
    assert len({row[1] for row in details}) == 9  # a unique reference per instruction

    failed_ref = next(row[1] for row in details if row[2] == "acct-poor")
    bank = "reference,result,reason\n" + "".join(
        f"{row[1]},{'FAILED,account closed' if row[1] == failed_ref else 'PAID,'}\n" for row in details
    )
    with acting_as(APPROVER):
        outcome = runs.reconcile(run.run_id, bank.encode())
        assert (outcome.paid, outcome.failed, outcome.outstanding) == (8, 1, 0)
        assert runs.reconcile(run.run_id, bank.encode()).unchanged == 9  # the same file again changes nothing
        assert runs.run(run.run_id).status == "reconciled"
        (failure,) = runs.lines(run.run_id, status="failed")[0]
        assert (failure.child_id, failure.benefit_code, failure.amount_fen) == ("poor", "BLA_ORPHAN", 144_000)
        assert "the higher standard, instead of BLA_POOR" in failure.explanation

        with pytest.raises(errors.InvalidInput):
            runs.reissue(run.run_id, {details[0][1]: "acct-new"})  # not a failed payment
        assert runs.reissue(run.run_id, {failed_ref: "acct-poor-2"}) == 2
        second = runs.payment_file(run.run_id, 2)
        (again,) = [row for row in csv.reader(io.StringIO(second.content.decode())) if row[0] == "D"]
        assert again[2:] == ["acct-poor-2", "144000"] and again[1] != failed_ref
        with pytest.raises(errors.InvalidInput):
            runs.reissue(run.run_id, {failed_ref: "acct-poor-3"})  # re-issued once already
        runs.reconcile(run.run_id, f"{again[1]},PAID,\n".encode())
        assert runs.close(run.run_id).status == "closed"
        balances = runs.balances(MAY)

    by_kind: Counter[str] = Counter()
    for balance in balances:
        by_kind[balance.kind] += balance.amount_fen
    assert by_kind == {
        "entitlement": computed.total_fen,
        "payment": computed.total_fen + 144_000,
        "failure": -144_000,
    }
    other_town = {(b.town, b.fund, b.kind): b.amount_fen for b in balances if b.town == OTHER_TENANT}
    assert other_town[(OTHER_TENANT, "basic_living", "payment")] == 2 * 144_000

    statuses = [event.status for event in events_of(database, DISTRICT, benefits_events.DisbursementRunChanged)]
    assert statuses == [
        "draft",
        "computed",
        "checked",
        "approved",
        "paid",
        "reconciled",
        "paid",
        "reconciled",
        "closed",
    ]
    (failed_event,) = events_of(database, DISTRICT, benefits_events.PaymentFailed)
    assert (failed_event.reference, failed_event.reason) == (failed_ref, "account closed")


def test_steps_out_of_order_and_a_bad_return_file_are_refused(database, runs):
    child(database, PILOT_TENANT, "orphan", date(2015, 1, 1), ("BLA_ORPHAN", MAY))
    with acting_as(MAKER):
        run = runs.open_run(MAY)
        with pytest.raises(errors.Conflict):
            runs.pay(run.run_id)
        with pytest.raises(errors.InvalidInput):
            runs.open_run(date(2024, 5, 2))
        runs.compute(run.run_id)
    with acting_as(CHECKER):
        with pytest.raises(errors.Conflict):
            runs.approve(run.run_id)
        runs.check(run.run_id)
    with acting_as(APPROVER):
        runs.approve(run.run_id)
        runs.pay(run.run_id)
        for bad in (b"nope,PAID,\n", b"x,MAYBE,\n", b"", "\u00ff".encode("latin-1")):
            with pytest.raises(errors.InvalidInput):
                runs.reconcile(run.run_id, bad)
        (line,) = runs.lines(run.run_id)[0]
        with pytest.raises(errors.InvalidInput):  # one good row and one bad: nothing is applied
            runs.reconcile(run.run_id, f"{line.reference},PAID,\nnope,PAID,\n".encode())
        assert runs.lines(run.run_id)[0][0].payment_status == "issued"
        with pytest.raises(errors.Conflict):
            runs.close(run.run_id)


def test_a_payable_line_without_a_payee_account_stops_the_check(database, runs):
    child(database, PILOT_TENANT, "orphan", date(2015, 1, 1), ("BLA_ORPHAN", MAY))
    with database.unit_of_work(PILOT_TENANT) as uow:
        eligibility.record_child(
            uow, "no-account", birth_date=date(2015, 1, 1), household_division_code="110111008001", at=datetime.now(UTC)
        )
        eligibility.start(uow, "no-account", "BLA_POOR", MAY, "approved", at=datetime.now(UTC))
        uow.commit()
    with acting_as(MAKER):
        run = runs.compute(runs.open_run(MAY).run_id)
    with acting_as(CHECKER), pytest.raises(errors.Conflict, match="1 payable lines have no payee account"):
        runs.check(run.run_id)


def test_another_district_and_other_roles_see_and_do_nothing(database, runs):
    child(database, PILOT_TENANT, "orphan", date(2015, 1, 1), ("BLA_ORPHAN", MAY))
    with acting_as(MAKER):
        run = runs.open_run(MAY)
    stranger = person("stranger", district="110112")
    with acting_as(stranger):
        assert runs.runs()[0] == []
        with pytest.raises(errors.NotFound):
            runs.run(run.run_id)
        with pytest.raises(errors.NotFound):
            runs.compute(run.run_id)
    for role in (Role.CASEWORKER, Role.TOWN_ADMIN, Role.FINANCE_AUDITOR, Role.AGENCY_OFFICER, Role.PUBLIC):
        with acting_as(person("x", role)), pytest.raises(errors.PermissionDenied):
            runs.compute(run.run_id)
    with acting_as(person("auditor", Role.FINANCE_AUDITOR)):
        assert [r.run_id for r in runs.runs()[0]] == [run.run_id]  # the auditor reads


def test_a_retroactive_approval_brings_arrears_and_a_correction_an_adjustment(database, runs):
    child(database, PILOT_TENANT, "a", date(2015, 1, 1), ("BLA_ORPHAN", date(2024, 4, 1)))
    april = drive(runs, date(2024, 4, 1), all_paid)
    assert april.total_fen == 144_000
    # approved in May, from 15 February (a leap year: 15/29 days -> 74483), for a child already paid in April
    child(database, PILOT_TENANT, "b", date(2014, 3, 3), ("BLA_POOR", date(2024, 2, 15)))
    # and child a's entitlement ended on 15 April, found out in May: April is corrected down to 15/30 days
    with database.unit_of_work(PILOT_TENANT) as uow:
        (record,) = eligibility.entitlements(uow, "a")
        eligibility.stop(uow, record, date(2024, 4, 15), eligibility.ENDED, "moved out", at=datetime.now(UTC))
        uow.commit()
    may = drive(runs, MAY, all_paid)
    with acting_as(APPROVER):
        lines = {
            (line.child_id, line.service_month.month, line.kind): line.amount_fen for line in runs.lines(may.run_id)[0]
        }
    assert lines == {
        ("b", 2, "arrears"): 41_379,  # 80000 × 15/29 = 41379.31
        ("b", 3, "arrears"): 80_000,
        ("b", 4, "arrears"): 80_000,
        ("b", 5, "due"): 80_000,
        ("a", 4, "adjustment"): -72_000,  # 144000 × 15/30 = 72000 due, 144000 held
    }
    assert may.total_fen == 41_379 + 3 * 80_000 - 72_000


class InjectedCrash(Exception):
    pass


class Crasher:
    """Counts the run's crash points; raises inside the transaction at the chosen one."""

    def __init__(self) -> None:
        self.crash_at = 0
        self.seen = 0
        self.crashed: list[str] = []

    def __call__(self, point: str) -> None:
        self.seen += 1
        if self.seen == self.crash_at:
            self.crashed.append(point)
            raise InjectedCrash(point)


def resuming(step: Callable[[], object]) -> None:
    try:
        step()
    except InjectedCrash:
        step()  # the resume: the same call again


def test_a_crash_at_every_point_then_a_resume_pays_every_beneficiary_exactly_once(database):
    seed_policy(database)
    crasher = Crasher()
    runs = Disbursements(database, chunk_size=1, crash_hook=crasher)
    children = [f"c{n:02d}" for n in range(24)]
    for n, child_id in enumerate(children):
        town = PILOT_TENANT if n % 2 else OTHER_TENANT
        grants = [("BLA_ORPHAN", date(2024, 12, 1))]
        if n % 3 == 0:
            grants += [("BLA_DISABLED", date(2024, 12, 1)), ("NURSING", date(2024, 12, 1))]
        child(database, town, child_id, date(2015, 1, 1), *grants)

    def one_run(period: date) -> RunView:
        with acting_as(MAKER):
            run = runs.open_run(period)
            resuming(lambda: runs.compute(run.run_id))
        with acting_as(CHECKER):
            resuming(lambda: runs.check(run.run_id))
        with acting_as(APPROVER):
            resuming(lambda: runs.approve(run.run_id))
            resuming(lambda: runs.pay(run.run_id))
            file = runs.payment_file(run.run_id).content
            resuming(lambda: runs.reconcile(run.run_id, all_paid(file)))
            resuming(lambda: runs.close(run.run_id))
            return runs.run(run.run_id)

    first = one_run(date(2025, 1, 1))  # no crash (December is paid as arrears on this first run)
    crasher.seen = 0
    one_run(date(2025, 2, 1))  # no crash: counts the points of a month's run
    points = crasher.seen
    assert points >= 50
    periods = [add_months(date(2025, 3, 1), n) for n in range(points)]
    for crash_at, period in enumerate(periods, start=1):
        crasher.seen, crasher.crash_at = 0, crash_at
        assert one_run(period).status == "closed"
    assert len(crasher.crashed) == points  # every point crashed once
    assert {point.split(":")[0] for point in crasher.crashed} == {
        "compute",
        "check",
        "approve",
        "pay",
        "reconcile",
        "close",
    }

    with database.unit_of_work(DISTRICT, district=DISTRICT) as uow:
        session = uow.session
        payments = Counter(
            session.execute(
                select(
                    LedgerEntryRecord.service_month, LedgerEntryRecord.child_id, LedgerEntryRecord.benefit_code
                ).where(LedgerEntryRecord.kind == "payment")
            ).all()
        )
        lines = session.execute(
            select(DisbursementLineRecord.service_month, DisbursementLineRecord.child_id, func.count()).group_by(
                DisbursementLineRecord.service_month, DisbursementLineRecord.child_id
            )
        ).all()
        instructions = session.scalar(select(func.count()).select_from(PaymentInstructionRecord))
    every_month = [date(2024, 12, 1), *[add_months(date(2025, 1, 1), n) for n in range(points + 2)]]
    expected = {
        (month, child_id, code): 1
        for month in every_month
        for n, child_id in enumerate(children)
        for code in (["BLA_ORPHAN", "NURSING"] if n % 3 == 0 else ["BLA_ORPHAN"])
    }
    assert dict(payments) == expected  # every beneficiary, every month, every benefit: paid exactly once
    assert instructions == len(expected)
    assert {count for _, _, count in lines} == {1, 2}
    assert first.line_count == 2 * (24 + 8)
    statuses = Counter(e.status for e in events_of(database, DISTRICT, benefits_events.DisbursementRunChanged))
    assert set(statuses.values()) == {points + 2}  # one event per step per run, none from rolled-back work


def test_the_ledger_is_append_only_for_the_service(database, runs):
    child(database, PILOT_TENANT, "orphan", date(2015, 1, 1), ("BLA_ORPHAN", MAY))
    with acting_as(MAKER):
        runs.compute(runs.open_run(MAY).run_id)
    for statement in ("UPDATE ledger_entries SET amount_fen = 0", "DELETE FROM ledger_entries"):
        with database.unit_of_work(DISTRICT, district=DISTRICT) as uow, pytest.raises(ProgrammingError):
            uow.session.execute(text(statement))


def test_a_policy_used_in_a_run_is_never_edited_in_place(database, runs):
    child(database, PILOT_TENANT, "orphan", date(2015, 1, 1), ("BLA_ORPHAN", MAY))
    catalogue = Catalogue(database)
    with acting_as(ADMIN):
        (v1,) = catalogue.versions()
        assert v1.policy.sample and not v1.frozen
        catalogue.save(replace(v1.policy, arrears_months=6))  # unused: edited in place
    with acting_as(MAKER):
        runs.compute(runs.open_run(MAY).run_id)
    with acting_as(ADMIN):
        (v1,) = catalogue.versions()
        assert v1.frozen and v1.policy.arrears_months == 6
        with pytest.raises(errors.Conflict):
            catalogue.save(replace(v1.policy, arrears_months=3))
        v2 = catalogue.save(replace(v1.policy, version=0, effective_from=date(2024, 6, 1), sample=False))
        assert v2.policy.version == 2
    with acting_as(person("other-admin", Role.DISTRICT_ADMIN, "110112")), pytest.raises(errors.PermissionDenied):
        catalogue.save(v1.policy)
    with acting_as(MAKER), pytest.raises(errors.PermissionDenied):
        catalogue.save(replace(v1.policy, version=0))
