"""The fault suite's view of the supervised workers beyond the report path: referral's escalation of overdue
referrals, notify's channel workers and crisis escalation, benefits' drafts from poverty referrals, reporting's
hand-over of reporters' receipts to notify (over gRPC, then notify's SMS and e-mail workers).

`DeadlineClock` makes every referral of the run fall due a few seconds after it opens (its limit is hours or
days), so the escalation worker raises both steps while the faults go on. `WorkerWatch` samples each service's
metrics and health throughout, so the suite can say that every worker's failure was visible while a fault
lasted, and that it recovered. `account_workers` checks, report by report, that the work was done exactly once.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from minorprot.referral.v1 import referral_pb2, referral_pb2_grpc

from platform_runtime.local_stack import AGENCY_EDGE_PORT, SERVICES
from tests.faults.conftest import FaultStack
from tests.faults.helpers import rows
from tests.faults.outside import Outside
from tests.support.infra import PILOT_TENANT, ROOT
from tests.support.services import bearer

# A referral's limit, as the clock sets it: step 1 at opened + LIMIT, step 2 at opened + 2 * LIMIT.
LIMIT_SECONDS = 6
ESCALATION_STEPS = 2  # services/referral/domain/lifecycle.py LAST_STEP
POVERTY_RULE = "POVERTY_CIVIL_AFFAIRS"
CRISIS_LEVELS = 4  # services/notify/service_layer/crises.py LEVELS
# What each crisis must have sent, by event type and channel (see tests/faults/outside.py CONTACTS, and no
# duty rota, so the town administrator stands in for the duty officer): the alert to the caseworkers' and the
# town administrator's inboxes, e-mail and phones; step 2 the town administrator, step 3 the district officer,
# step 4 the leading group office's inbox (nobody there has contact details).
CRISIS_DELIVERIES = {
    ("crisis_declared", "in_app"): 2,
    ("crisis_declared", "email"): 2,
    ("crisis_declared", "sms"): 2,
    ("crisis_escalation", "in_app"): 3,
    ("crisis_escalation", "email"): 2,
    ("crisis_escalation", "sms"): 2,
}
# What each referral must have sent: the agency's system hears of it once it is sent and at each escalation
# step; the leading group office's inbox at each step.
REFERRAL_DELIVERIES = {
    ("referral_sent", "webhook"): 1,
    ("referral_escalated", "webhook"): ESCALATION_STEPS,
    ("referral_escalated", "in_app"): ESCALATION_STEPS,
}
# What each report whose reporter asked for the receipt number must have sent (notify's RECEIPT template).
RECEIPT_EVENT = "report_receipt"
# The workers that joined the fault suite, by service: each a fault reaches must be seen failing (metrics, and
# a log line naming it) and well again afterwards. The agency edge is a server, not a loop: only its recovery
# (serving after every restart) is checked.
JOINED = {
    "reporting": ["reporting-receipts"],
    "referral": ["referral-escalations", "referral-consumer-referral"],
    "notify": [
        "notify-deliver-email",
        "notify-deliver-sms",
        "notify-deliver-webhook",
        "notify-crisis-escalation",
        "notify-consumer-notify",
    ],
    "benefits": ["benefits-eligibility", "benefits-reviews", "benefits-consumer-benefits"],
}
ALWAYS_UP = {"referral": ["referral-agency-edge"]}
WORKER_UP = re.compile(r'^minorprot_worker_up\{worker="([^"]+)"\} ([0-9.]+)$', re.MULTILINE)


class DeadlineClock:
    """Moves each new referral of the run's reports to a limit of LIMIT_SECONDS from now (once per referral)."""

    def __init__(self, stack: FaultStack, reports: Callable[[], list[str]]) -> None:
        self._stack = stack
        self._reports = reports
        self.moved: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deadline-clock", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def tick(self) -> None:
        found = rows(
            self._stack.databases["referral"].owner_url,
            # Rows the referral service holds are skipped (moved at a later tick): the clock never waits on the
            # service, so it can never deadlock with it.
            "UPDATE referrals SET deadline_from = now(), due_at = now() + make_interval(secs => :limit) "
            "WHERE id IN (SELECT id FROM referrals WHERE report_id = ANY(:reports) AND NOT (id = ANY(:moved)) "
            "FOR UPDATE SKIP LOCKED) RETURNING id",
            limit=LIMIT_SECONDS,
            reports=self._reports(),
            moved=list(self.moved),
        )
        self.moved.update(row.id for row in found)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.tick()
            except Exception as error:  # PostgreSQL is down: the clock waits like everyone else
                print(f"faults: deadline clock waits: {type(error).__name__}", flush=True)


class AgencyStream:
    """An agency's own system reading its change stream over the agency edge, as the example client does: it
    reconnects after any break (the referral process killed, ...) with the cursor of the last change it got."""

    def __init__(self, stack: FaultStack, agency: str) -> None:
        self._stack = stack
        self.agency = agency
        self.cursors: list[int] = []  # every change received, in order
        self.reconnects = 0
        self._token = ""
        self._call: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"agency-stream-{agency}", daemon=True)

    def start(self) -> None:
        # The district administrator issues the agency's system a credential on the command line.
        issued = subprocess.run(
            [
                *(sys.executable, "-m", "services.referral", "issue-agency-credential"),
                *("--district", PILOT_TENANT[:6], "--agency", self.agency, "--name", "故障测试 fault suite"),
            ],
            cwd=ROOT,
            env=self._stack.env("referral"),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        self._token = issued.stdout.strip()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._call is not None:
            self._call.cancel()
        self._thread.join(30)

    def _run(self) -> None:
        target = f"127.0.0.1:{AGENCY_EDGE_PORT + self._stack.stack.config.port_offset}"
        while not self._stop.is_set():
            after = str(self.cursors[-1]) if self.cursors else ""
            with grpc.insecure_channel(target) as channel:
                self._call = referral_pb2_grpc.AgencyServiceStub(channel).StreamReferralChanges(
                    referral_pb2.StreamReferralChangesRequest(after_cursor=after), metadata=bearer(self._token)
                )
                try:
                    for change in self._call:
                        self.cursors.append(int(change.cursor))
                except grpc.RpcError:
                    pass  # the edge went away (or we cancelled): connect again from the last cursor
            if not self._stop.wait(0.5):
                self.reconnects += 1

    def account(self) -> tuple[str, list[str]]:
        """(a line, the problems): the changes received against the agency's feed in referral's database."""
        feed = [
            row.seq
            for row in rows(
                self._stack.databases["referral"].owner_url,
                "SELECT seq FROM referral_feed WHERE agency_code = :agency ORDER BY seq",
                agency=self.agency,
            )
        ]
        received = Counter(self.cursors)
        problems = [f"{len(set(feed) - set(received))} change(s) of the feed never received"]
        problems += [f"{sum(n - 1 for n in received.values() if n > 1)} change(s) received more than once"]
        problems += [f"{len(set(received) - set(feed))} change(s) received that are not in the feed"]
        if self.cursors != sorted(self.cursors):
            problems.append("changes received out of order")
        problems = [f"agency stream of {self.agency}: {p}" for p in problems if not p.startswith("0 ")]
        line = (
            f"agency stream of {self.agency}: {len(self.cursors)} changes received of {len(feed)} in its feed, "
            f"{self.reconnects} reconnects"
        )
        return line, problems


@dataclass
class Seen:
    """What the watch saw of one worker."""

    down_at: list[str] = field(default_factory=list)  # when its worker_up was 0 (wall clock)
    last_up: float | None = None


@dataclass
class WorkerWatch:
    """Samples every service's `minorprot_worker_up` and gRPC health once a second."""

    stack: FaultStack
    workers: dict[str, dict[str, Seen]] = field(default_factory=lambda: defaultdict(dict))
    not_serving: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="worker-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(30)

    def sample(self) -> None:
        config = self.stack.stack.config
        for service in SERVICES:
            moment = time.strftime("%H:%M:%S")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{config.metrics_port(service)}/metrics", timeout=2
                ) as reply:
                    text = reply.read().decode()
            except OSError:
                continue  # killed and not back yet
            for name, value in WORKER_UP.findall(text):
                seen = self.workers[service].setdefault(name, Seen())
                seen.last_up = float(value)
                if float(value) == 0 and (not seen.down_at or seen.down_at[-1] != moment):
                    seen.down_at.append(moment)
            if self.serving(service) is False:
                self.not_serving[service].append(moment)

    def serving(self, service: str) -> bool | None:
        target = f"127.0.0.1:{self.stack.stack.config.grpc_port(service)}"
        with grpc.insecure_channel(target) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            except grpc.RpcError:
                return None
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.sample()
            except Exception as error:  # a sample lost is not a finding; say so and go on
                print(f"faults: worker watch sample failed: {error}", flush=True)


def visibility(watch: WorkerWatch, logs: Callable[[str], Path]) -> tuple[list[str], list[str]]:
    """(one line per joined worker, the problems): a worker a fault reached is seen failing in metrics and in its
    service's log, and its recovery logged; every joined service NOT_SERVING at some point; all up at the end."""
    lines, problems = [], []
    logs_of = {service: logs(service).read_text(errors="replace") for service in (*JOINED, *ALWAYS_UP)}
    for service, name in [(s, n) for s, names in (*JOINED.items(), *ALWAYS_UP.items()) for n in names]:
        seen = watch.workers[service].get(name)
        if seen is None:
            problems.append(f"{name}: not in {service}'s metrics")
            continue
        failing_lines = [
            line
            for line in logs_of[service].splitlines()
            if re.search(rf"worker {re.escape(name)} (failed|down for)", line)
        ]
        well_again = f"worker {name} is well again" in logs_of[service]
        lines.append(
            f"{name}: down in metrics at {len(seen.down_at)} sample(s) "
            f"({', '.join(seen.down_at[:3])}{'...' if len(seen.down_at) > 3 else ''}), "
            f"failure logged {len(failing_lines)}x, well again logged: {'yes' if well_again else 'no'}, "
            f"worker_up now {seen.last_up}"
        )
        if seen.last_up != 1:
            problems.append(f"{name}: worker_up is {seen.last_up} at the end")
        if name in ALWAYS_UP.get(service, []):
            continue
        if not seen.down_at and not failing_lines:
            # No fault reached it (a consumer with no message while PostgreSQL was away, a broker back before
            # its grace ran out): nothing to show; lost=0 and no group behind say it kept working.
            lines[-1] += " (rode through every fault)"
            continue
        if not seen.down_at:
            problems.append(f"{name}: its failure is in {service}'s log but never in its metrics")
        if not failing_lines:
            problems.append(f"{name}: failing in {service}'s metrics but not in its log")
        if not well_again:
            problems.append(f"{name}: its recovery is not in {service}'s log")
    for service in JOINED:
        if not watch.not_serving[service]:
            problems.append(f"{service}: never reported NOT_SERVING on its health check during the faults")
        if watch.serving(service) is not True:
            problems.append(f"{service}: not SERVING at the end")
        lines.append(f"{service}: NOT_SERVING at {len(watch.not_serving[service])} sample(s)")
    return lines, problems


def account_workers(
    stack: FaultStack, reports: dict[str, str], moved: set[str], outside: Outside, receipts: dict[str, str]
) -> dict[str, Any]:
    """`reports`: report id -> kind (crisis, ordinary, poverty) of every acknowledged report of the run;
    `receipts`: report id -> the channel (sms, email) of those whose reporter asked for the receipt number.
    Returns, per report, what is missing and what is doubled of the joined workers' work, and the counts."""
    db = stack.databases
    ids = list(reports)
    referrals = rows(
        db["referral"].owner_url,
        "SELECT id, report_id, rule_code, escalated_step FROM referrals WHERE report_id = ANY(:ids)",
        ids=ids,
    )
    referral_of = {r.id: r for r in referrals}
    escalations: Counter[str] = Counter()
    for event in rows(
        db["referral"].owner_url,
        "SELECT message_key, published_at FROM outbox WHERE event_type LIKE '%ReferralEscalated'",
    ):
        referral_id = event.message_key.rpartition(":")[2]
        if referral_id in referral_of and event.published_at is not None:
            escalations[referral_id] += 1
    crises = {
        c.report_id: c
        for c in rows(
            db["notify"].owner_url,
            "SELECT c.report_id, count(s.step) AS steps, count(DISTINCT s.step) AS distinct_steps "
            "FROM crises c LEFT JOIN crisis_steps s ON s.crisis_id = c.id "
            "WHERE c.report_id = ANY(:ids) GROUP BY c.report_id",
            ids=ids,
        )
    }
    deliveries: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    unsent: dict[str, list[str]] = defaultdict(list)
    received = outside.received()
    arrivals: dict[str, Counter[int]] = defaultdict(Counter)  # subject -> {times a delivery arrived: how many}
    receipt_arrivals: dict[str, list[int]] = defaultdict(list)  # report -> times each receipt delivery arrived
    for d in rows(
        db["notify"].owner_url,
        "SELECT id, subject_id, event_type, channel, status FROM deliveries WHERE subject_id = ANY(:ids)",
        ids=ids + list(referral_of),
    ):
        deliveries[d.subject_id][(d.event_type, d.channel)] += 1
        if d.status != "sent":
            unsent[d.subject_id].append(f"{d.channel} {d.event_type} {d.id} {d.status}")
        elif d.event_type == RECEIPT_EVENT:
            receipt_arrivals[d.subject_id].append(received.pop(d.id, 0))
        elif d.channel != "in_app":
            arrivals[d.subject_id][received.pop(d.id, 0)] += 1
    drafts: Counter[str] = Counter(
        a.source.removeprefix("referral:")
        for a in rows(db["benefits"].owner_url, "SELECT source FROM applications WHERE source LIKE 'referral:%'")
    )
    by_report: dict[str, list[Any]] = defaultdict(list)
    for referral in referrals:
        by_report[referral.report_id].append(referral)

    result: dict[str, Any] = {
        **dict.fromkeys(("escalated", "chained", "delivered", "drafted", "receipted", "resent"), 0),
        "lost": [],
        "doubled": [],
    }
    for report_id, kind in reports.items():
        check = Check()
        mine = by_report[report_id]
        # Referral's escalation worker: both steps of every referral the clock moved, each once.
        with check.part() as escalation:
            for referral in (r for r in mine if r.id in moved):
                check.compare(f"referral {referral.id} escalation steps", ESCALATION_STEPS, referral.escalated_step)
                check.compare(
                    f"published ReferralEscalated of {referral.id}", ESCALATION_STEPS, escalations[referral.id]
                )
        # Benefits' consumer of referral.referral: one draft per poverty referral.
        with check.part() as drafted:
            for referral in (r for r in mine if r.rule_code == POVERTY_RULE):
                check.compare(f"application drafts from referral {referral.id}", 1, drafts[referral.id])
            if kind == "poverty" and not any(r.rule_code == POVERTY_RULE for r in mine):
                check.missing.append("the poverty referral")
        # Notify's crisis escalation: one chain, each step once.
        with check.part() as chained:
            if kind == "crisis":
                crisis = crises.get(report_id)
                steps, distinct = (crisis.steps, crisis.distinct_steps) if crisis else (0, 0)
                check.compare("crisis chain steps", CRISIS_LEVELS, distinct)
                if steps > distinct:
                    check.extra.append(f"{steps - distinct} crisis steps taken twice")
        # Notify's channel workers: every message expected, each arrived once at its server.
        with check.part() as delivered:
            expected_deliveries = [(r.id, REFERRAL_DELIVERIES) for r in mine if r.id in moved]
            if kind == "crisis":
                expected_deliveries.append((report_id, CRISIS_DELIVERIES))
            for subject, expected in expected_deliveries:
                for (event_type, channel), count in expected.items():
                    found = deliveries[subject][(event_type, channel)]
                    check.compare(f"{channel} {event_type} of {subject}", count, found)
                check.missing.extend(f"not sent: {line}" for line in unsent[subject])
                if arrivals[subject][0]:
                    check.missing.append(f"{arrivals[subject][0]} message(s) of {subject} sent but never arrived")
                # A message sent again after a crash between its send and its record (at least once) carries
                # the same delivery id, which the receiver drops: counted and shown, not a second message.
                result["resent"] += sum(n for times, n in arrivals[subject].items() if times > 1)
        # Reporting's receipt sender, then notify's SMS or e-mail worker: the receipt number sent once.
        with check.part() as receipted:
            if asked := receipts.get(report_id):
                check.compare(f"{asked} receipt of {report_id}", 1, deliveries[report_id][(RECEIPT_EVENT, asked)])
                if 0 in receipt_arrivals[report_id]:
                    check.missing.append(f"the receipt of {report_id} sent but never arrived")
                result["resent"] += sum(1 for times in receipt_arrivals[report_id] if times > 1)
        for name, part in (
            ("escalated", escalation),
            ("drafted", drafted),
            ("chained", chained),
            ("delivered", delivered),
            ("receipted", receipted),
        ):
            result[name] += part.ok
        if check.missing:
            result["lost"].append(f"{kind} {report_id}: missing {'; '.join(check.missing)}")
        if check.extra:
            result["doubled"].append(f"{kind} {report_id}: {'; '.join(check.extra)}")
    # What arrived for deliveries of other subjects (the dead-letter test's): reported, not judged.
    result["other_arrivals"] = sum(received.values())
    return result


@dataclass
class Part:
    ok: bool = True


@dataclass
class Check:
    """What one report is missing and has too much of, part by part (a part is ok when it added neither)."""

    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    def compare(self, what: str, expected: int, found: int) -> None:
        if found < expected:
            self.missing.append(f"{what} ({found} of {expected})")
        elif found > expected:
            self.extra.append(f"{what} ({found}, expected {expected})")

    @contextmanager
    def part(self) -> Iterator[Part]:
        part, before = Part(), len(self.missing) + len(self.extra)
        yield part
        part.ok = len(self.missing) + len(self.extra) == before
