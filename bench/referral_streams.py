"""Agency streams under load: 16 agencies' systems follow their referrals on the agency edge while reports arrive
at a steady rate; the latency from each report's event on reporting.report to its referral on the agency's
stream (p50/p99), beside a bare gRPC stream of the same messages to 16 clients at the same rate.

The platform: referral as its own process (as `make up` runs it: `serve`, the consumers, the relay, the agency
edge, plaintext here) on a fresh PostgreSQL database and Kafka topics of its own. The district saves a rule set
of 16 rules (one situation code per agency), so every report opens one referral for one of the 16 agencies;
each agency's system holds a credential the district administrator issued and streams from the start.

BENCH_REFERRALS reports (the issue's figure is 10,000: `BENCH_REFERRALS=10000`) at BENCH_RATE per second.
Baseline, same run: a bare gRPC server streaming the same Referral messages, put on 16 clients' queues at the
same rate (no database, no Kafka, no auth).
"""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import grpc
from confluent_kafka import Producer
from google.protobuf import timestamp_pb2
from minorprot.referral.v1 import referral_pb2, referral_pb2_grpc, routing_pb2, routing_pb2_grpc
from minorprot.reporting.v1 import events_pb2 as reporting_events
from minorprot.reporting.v1 import reporting_pb2

from bench.runner import Figure, Latencies, print_figures
from platform_runtime.auth import Principal, Role
from platform_runtime.events import PendingEvent, to_envelope
from platform_runtime.local_stack import AGENCY_EDGE_PORT, Stack, StackConfig, dev_token_issuer
from platform_runtime.outbox import make_producer
from platform_runtime.settings import KafkaSettings
from platform_runtime.topics import REPORTING_REPORT
from tests.support.infra import PILOT_TENANT, isolated_kafka_env, start_kafka, start_postgres
from tests.support.services import migrated_database

REFERRALS = int(os.environ.get("BENCH_REFERRALS", "2000"))
RATE = float(os.environ.get("BENCH_RATE", "100"))
PORT_OFFSET = 380  # clear of `make up`, the browser and e2e stacks, the other benches (300, 340) and faults (400)
AGENCIES = (
    "civil_affairs",
    "town_government",
    "governance_office",
    "publicity",
    "social_work_committee",
    "police",
    "urban_management",
    "education",
    "youth_league",
    "womens_federation",
    "justice",
    "human_resources",
    "health",
    "finance",
    "disabled_persons_federation",
    "court",
)


def _report(report_id: str, agency: str) -> PendingEvent:
    received = timestamp_pb2.Timestamp()
    received.FromDatetime(datetime.now(UTC))
    report = reporting_pb2.Report(
        report_id=report_id,
        tenant=PILOT_TENANT,
        status="triaged",
        urgency=reporting_pb2.URGENCY_NORMAL,
        division_code=PILOT_TENANT + "001",
        received_at=received,
        situation_types=[f"bench_{agency}"],
    )
    return PendingEvent(
        REPORTING_REPORT, PILOT_TENANT, "report", report_id, reporting_events.ReportSubmitted(report=report)
    )


def _paced(count: int) -> Iterator[int]:
    started = time.monotonic()
    for number in range(count):
        delay = started + number / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield number


def platform_latencies(kafka: KafkaSettings) -> Latencies:
    database = migrated_database(start_postgres(), "referral")
    isolated = isolated_kafka_env(kafka)
    producer = make_producer(kafka, "bench-referral")
    with TemporaryDirectory(prefix="bench-referral-") as data_dir:
        config = StackConfig(
            data_dir=Path(data_dir),
            kafka_bootstrap=kafka.bootstrap_servers,
            port_offset=PORT_OFFSET,
            database_urls={
                "referral": {
                    "DATABASE_URL": database.app_url,
                    "MIGRATION_DATABASE_URL": database.owner_url,
                    "OUTBOX_DATABASE_URL": database.relay_url,
                }
            },
            extra_env=isolated | {"LOG_LEVEL": "WARNING"},
        )
        stack = Stack(config)
        stack.start(["referral"])
        try:
            stack.wait_healthy()
            issuer = dev_token_issuer(Path(data_dir), lifetime_seconds=3600)
            admin = Principal("bench-admin", "bench", Role.DISTRICT_ADMIN, PILOT_TENANT, PILOT_TENANT[:6])
            metadata = (("authorization", f"Bearer {issuer.issue(admin, 'referral')}"),)
            internal = grpc.insecure_channel(f"127.0.0.1:{config.grpc_port('referral')}")
            rules = [
                routing_pb2.RoutingRuleSpec(
                    code=f"BENCH_{agency.upper()}",
                    agency_code=agency,
                    reason="bench",
                    due_in_minutes=60 * 24 * 5,
                    any_of_situations=[f"bench_{agency}"],
                )
                for agency in AGENCIES
            ]
            routing_pb2_grpc.RoutingAdminServiceStub(internal).AddRuleSet(
                routing_pb2.AddRuleSetRequest(rules=rules, note="bench"), metadata=metadata
            )
            credentials = referral_pb2_grpc.AgencyCredentialServiceStub(internal)
            tokens = {
                agency: credentials.IssueCredential(
                    referral_pb2.IssueCredentialRequest(agency_code=agency, name="bench"), metadata=metadata
                ).token
                for agency in AGENCIES
            }
            edge = f"127.0.0.1:{AGENCY_EDGE_PORT + PORT_OFFSET}"
            return _measure(edge, tokens, producer, isolated["KAFKA_TOPIC_PREFIX"])
        finally:
            stack.stop()


def _measure(edge: str, tokens: dict[str, str], producer: Producer, prefix: str) -> Latencies:
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    lock = threading.Lock()
    streams = []

    def follow(agency: str) -> None:
        channel = grpc.insecure_channel(edge)
        stream = referral_pb2_grpc.AgencyServiceStub(channel).StreamReferralChanges(
            referral_pb2.StreamReferralChangesRequest(), metadata=(("authorization", f"Bearer {tokens[agency]}"),)
        )
        streams.append(stream)
        try:
            for change in stream:
                if change.referral.status == "sent":
                    with lock:
                        arrived.setdefault(change.referral.report_id, time.monotonic())
        except grpc.RpcError:
            pass  # cancelled at the end

    def produce(event: PendingEvent) -> None:
        envelope = to_envelope(event, uuid.uuid4().hex)
        producer.produce(
            prefix + event.topic,
            key=event.key.encode(),
            value=envelope.SerializeToString(),
            headers=[("event_id", envelope.event_id.encode()), ("tenant", event.tenant.encode())],
        )
        producer.poll(0)

    threads = [threading.Thread(target=follow, args=(agency,), daemon=True) for agency in AGENCIES]
    for thread in threads:
        thread.start()
    # Warm-up, not measured: the consumer has joined its group and every stream is open.
    warm_up = [f"warm-{agency}" for agency in AGENCIES]
    for report_id, agency in zip(warm_up, AGENCIES, strict=True):
        produce(_report(report_id, agency))
    producer.flush(30)
    deadline = time.monotonic() + 120
    while not set(warm_up) <= set(arrived) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not set(warm_up) <= set(arrived):
        raise RuntimeError("the warm-up referrals never reached the streams")
    for number in _paced(REFERRALS):
        agency = AGENCIES[number % len(AGENCIES)]
        event = _report(f"bench-{number}-{uuid.uuid4().hex[:6]}", agency)
        sent[event.aggregate_id] = time.monotonic()
        produce(event)
    producer.flush(30)
    deadline = time.monotonic() + 600
    while not set(sent) <= set(arrived) and time.monotonic() < deadline:
        time.sleep(0.1)
    for stream in streams:
        stream.cancel()
    missing = len(set(sent) - set(arrived))
    if missing:
        raise RuntimeError(f"{missing} of {REFERRALS} referrals never reached their agency's stream")
    return Latencies([(arrived[report] - sent[report]) * 1000.0 for report in sent])


class _Bare(referral_pb2_grpc.AgencyServiceServicer):
    def __init__(self) -> None:
        self.queues: dict[str, queue.Queue[referral_pb2.StreamReferralChangesResponse | None]] = {
            agency: queue.Queue() for agency in AGENCIES
        }

    def StreamReferralChanges(
        self, request: referral_pb2.StreamReferralChangesRequest, context: grpc.ServicerContext
    ) -> Iterator[referral_pb2.StreamReferralChangesResponse]:
        agency = dict(context.invocation_metadata()).get("agency", "")
        while (item := self.queues[str(agency)].get()) is not None:
            yield item


def bare_latencies() -> Latencies:
    servicer = _Bare()  # type: ignore[abstract]  # only the stream is served
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=len(AGENCIES) + 4))
    referral_pb2_grpc.add_AgencyServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    lock = threading.Lock()

    def follow(agency: str) -> None:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stream = referral_pb2_grpc.AgencyServiceStub(channel).StreamReferralChanges(
            referral_pb2.StreamReferralChangesRequest(), metadata=(("agency", agency),)
        )
        for change in stream:
            with lock:
                arrived.setdefault(change.referral.report_id, time.monotonic())

    threads = [threading.Thread(target=follow, args=(agency,), daemon=True) for agency in AGENCIES]
    for thread in threads:
        thread.start()
    time.sleep(1)
    for number in _paced(REFERRALS):
        agency = AGENCIES[number % len(AGENCIES)]
        report_id = f"bare-{number}"
        referral = referral_pb2.Referral(
            referral_id=uuid.uuid4().hex, tenant=PILOT_TENANT, report_id=report_id, agency_code=agency, status="sent"
        )
        sent[report_id] = time.monotonic()
        servicer.queues[agency].put(referral_pb2.StreamReferralChangesResponse(cursor=str(number), referral=referral))
    deadline = time.monotonic() + 120
    while len(arrived) < REFERRALS and time.monotonic() < deadline:
        time.sleep(0.05)
    for agency in AGENCIES:
        servicer.queues[agency].put(None)
    server.stop(1)
    return Latencies([(arrived[report] - sent[report]) * 1000.0 for report in sent if report in arrived])


def run() -> list[Figure]:
    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    kafka = start_kafka()
    bare = bare_latencies()
    platform = platform_latencies(kafka)
    return [
        Figure("report event -> agency stream p50", platform.p50, "bare gRPC stream p50", bare.p50, "ms"),
        Figure("report event -> agency stream p99", platform.p99, "bare gRPC stream p99", bare.p99, "ms"),
    ]


def main() -> None:
    print_figures(
        f"referral streams: {REFERRALS} referrals at {RATE:.0f}/s to {len(AGENCIES)} agencies' streams", run()
    )


if __name__ == "__main__":
    main()
