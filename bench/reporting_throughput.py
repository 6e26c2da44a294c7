"""Sustained report submissions through gRPC, and how soon a crisis reaches Kafka, beside bare Kafka.

The platform: the registry and reporting as their own processes (as `make up` runs them: `serve`, relay,
consumers and workers included) on fresh PostgreSQL databases and Kafka topics of their own. The registry
holds BENCH_CHILDREN children. BENCH_REPORTS crisis reports (a child abandoned: CrisisDeclared in the same
transaction as the report) are submitted by BENCH_CLIENTS concurrent caseworkers over gRPC, each one
stored, triaged, written to the outbox, then matched against the registry (MatchChild) and linked to a
child found or registered provisionally (RegisterChild): half name a child of the register.

Figures: submissions per second and SubmitReport latency; the latency from the start of a submission to
its CrisisDeclared arriving at a Kafka consumer (p50/p99). Baseline, in the same run on the same broker:
the same number of messages of the same size, produced one at a time by as many clients with the relay's
producer settings (idempotent, acks=all) and flushed each, and the latency from produce to consume.
"""

from __future__ import annotations

import os
import queue
import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import grpc
from confluent_kafka import Consumer, Producer
from google.protobuf import timestamp_pb2
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc
from minorprot.reporting.v1 import events_pb2, reporting_pb2, reporting_pb2_grpc
from sqlalchemy import create_engine, text

from bench.runner import Figure, print_figures
from platform_runtime.auth import Principal, Role
from platform_runtime.consumer import make_consumer
from platform_runtime.events import unpack
from platform_runtime.local_stack import Stack, StackConfig, dev_token_issuer
from platform_runtime.outbox import make_producer
from platform_runtime.settings import KafkaSettings
from platform_runtime.topics import REPORTING_REPORT
from tests.support.infra import DISTRICT, PILOT_TENANT, isolated_kafka_env, start_kafka, start_postgres
from tests.support.services import migrated_database

REPORTS = int(os.environ.get("BENCH_REPORTS", "200"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
CHILDREN = int(os.environ.get("BENCH_CHILDREN", "100"))
WARMUP = 10
PORT_OFFSET = 300  # clear of `make up` and the end-to-end stacks
SURNAMES, GIVEN = "王李张刘陈杨赵黄周吴", "思雨晓明子涵一诺梓轩欣怡浩然宇航雨桐"
CRISIS = events_pb2.CrisisDeclared.DESCRIPTOR.full_name


@dataclass(frozen=True)
class Run:
    seconds: float  # wall time of all submissions
    call_ms: list[float]  # each call's own latency
    to_kafka_ms: list[float]  # start of the call to the consumer seeing its event


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Arrivals:
    """A consumer thread noting when each awaited key's message arrives (`keyed` picks the key)."""

    def __init__(self, consumer: Consumer, topic: str, keyed: Callable[[bytes], str | None]) -> None:
        self._consumer, self._keyed = consumer, keyed
        self.seen: dict[str, float] = {}
        self.seen_wall: dict[str, datetime] = {}  # the same moments by the wall clock, to set beside commit times
        self.size = 0  # bytes of the last awaited message
        self._stop = threading.Event()
        consumer.subscribe([topic])
        while not consumer.assignment():  # assigned before anything is sent: no rebalance in the figures
            consumer.poll(0.2)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._consumer.poll(0.05)
            if message is not None and not message.error():
                value = message.value() or b""
                key = self._keyed(value)
                if key:
                    self.seen[key] = time.perf_counter()
                    self.seen_wall[key] = datetime.now(UTC)
                    self.size = len(value)

    def wait_for(self, keys: set[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not keys <= self.seen.keys() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join()
        self._consumer.close()
        if not keys <= self.seen.keys():
            raise RuntimeError(f"only {len(keys & self.seen.keys())} of {len(keys)} messages arrived")


def _run_concurrently(count: int, send: Callable[[int], str], arrivals: Arrivals) -> Run:
    started: dict[str, float] = {}
    call_ms: list[float] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        begin = time.perf_counter()
        key = send(i)
        elapsed = (time.perf_counter() - begin) * 1000
        with lock:
            started[key] = begin
            call_ms.append(elapsed)

    begin = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, range(count)))
    seconds = time.perf_counter() - begin
    arrivals.wait_for(set(started))
    return Run(seconds, call_ms, [(arrivals.seen[key] - started[key]) * 1000 for key in started])


# -- the platform --------------------------------------------------------------------------------------------


def _timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, 2))


def _birth(rng: random.Random) -> common_pb2.Date:
    return common_pb2.Date(
        year=datetime.now(UTC).year - rng.randint(3, 14), month=rng.randint(1, 12), day=rng.randint(1, 28)
    )


def _report(child: registry_pb2.RegisterChildRequest) -> reporting_pb2.SubmitReportRequest:
    return reporting_pb2.SubmitReportRequest(
        channel=reporting_pb2.CHANNEL_STAFF_HOTLINE,
        child=reporting_pb2.ChildDescription(name=child.legal_name, sex=child.sex, birth_date=child.birth_date),
        division_code=PILOT_TENANT + "201",
        place_text="村口",
        occurred_at=_timestamp(datetime.now(UTC) - timedelta(hours=1)),
        situation_types=["abandoned_or_uncared"],
        narrative="村民来电:孩子连续三天独自在家,无人照看。",
    )


def _crisis_report_id(value: bytes) -> str | None:
    envelope = common_pb2.EventEnvelope.FromString(value)
    if envelope.event_type != CRISIS:
        return None
    event = unpack(envelope, events_pb2.CrisisDeclared)
    return event.report_id


def _outbox_to_kafka_ms(relay_url: str, arrivals: Arrivals, keys: set[str]) -> list[float]:
    """From each CrisisDeclared's outbox row being written (just before its commit) to a consumer seeing it:
    the relay's share of the latency, without the call's own work before the commit."""
    engine = create_engine(relay_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT envelope, created_at FROM outbox WHERE event_type = :type"), {"type": CRISIS}
        ).all()
    engine.dispose()
    written = {_crisis_report_id(bytes(envelope)): created for envelope, created in rows}
    return [(seen - written[key]).total_seconds() * 1000 for key, seen in arrivals.seen_wall.items() if key in written]


def platform_run(kafka: KafkaSettings, data_dir: Path) -> tuple[Run, int, int, list[float]]:
    """(the run, how many reports were linked at once, bytes of a CrisisDeclared message, outbox row written
    -> on Kafka in ms)."""
    postgres_url = start_postgres()
    databases = {service: migrated_database(postgres_url, service) for service in ("registry", "reporting")}
    isolated = isolated_kafka_env(kafka)
    config = StackConfig(
        data_dir=data_dir,
        kafka_bootstrap=kafka.bootstrap_servers,
        port_offset=PORT_OFFSET,
        database_urls={
            service: {
                "DATABASE_URL": db.app_url,
                "MIGRATION_DATABASE_URL": db.owner_url,
                "OUTBOX_DATABASE_URL": db.relay_url,
            }
            for service, db in databases.items()
        },
        extra_env=isolated | {"LOG_LEVEL": "WARNING"},
    )
    stack = Stack(config)
    stack.run_once("registry", "onboard-tenant", "--code", PILOT_TENANT, "--name", "良乡镇", "--district", DISTRICT)
    stack.start(["registry", "reporting"])
    try:
        stack.wait_healthy()
        issuer = dev_token_issuer(data_dir, lifetime_seconds=3600)
        caseworker = Principal("bench-caseworker", "bench", Role.CASEWORKER, PILOT_TENANT, DISTRICT)
        metadata = (("authorization", f"Bearer {issuer.issue(caseworker, 'reporting')}"),)
        rng = random.Random(2014)
        with grpc.insecure_channel(f"127.0.0.1:{config.grpc_port('registry')}") as channel:
            registry = registry_pb2_grpc.RegistryServiceStub(channel)
            children = [
                registry_pb2.RegisterChildRequest(
                    legal_name=_name(rng), sex=common_pb2.SEX_FEMALE, birth_date=_birth(rng)
                )
                for _ in range(CHILDREN)
            ]
            for child in children:
                registry.RegisterChild(child, metadata=metadata)
        # Half the reports name a child of the register, half a child new to it.
        reports = [
            _report(
                rng.choice(children)
                if i % 2
                else registry_pb2.RegisterChildRequest(
                    legal_name=_name(rng), sex=common_pb2.SEX_MALE, birth_date=_birth(rng)
                )
            )
            for i in range(WARMUP + REPORTS)
        ]
        with grpc.insecure_channel(f"127.0.0.1:{config.grpc_port('reporting')}") as channel:
            reporting = reporting_pb2_grpc.ReportingServiceStub(channel)
            for request in reports[:WARMUP]:
                reporting.SubmitReport(request, metadata=metadata)
            arrivals = Arrivals(
                make_consumer(kafka.client_config(), f"bench-{uuid.uuid4().hex}"),
                isolated["KAFKA_TOPIC_PREFIX"] + REPORTING_REPORT,
                _crisis_report_id,
            )
            replies: list[reporting_pb2.Report] = []

            def submit(i: int) -> str:
                reply = reporting.SubmitReport(reports[WARMUP + i], metadata=metadata)
                replies.append(reply.report)
                return str(reply.report.report_id)

            run = _run_concurrently(REPORTS, submit, arrivals)
        relay_ms = _outbox_to_kafka_ms(
            databases["reporting"].relay_url, arrivals, {report.report_id for report in replies}
        )
        return run, sum(1 for report in replies if report.child_id), arrivals.size, relay_ms
    finally:
        stack.stop()


# -- the baseline: bare Kafka --------------------------------------------------------------------------------


def bare_run(kafka: KafkaSettings, size: int) -> Run:
    topic = isolated_kafka_env(kafka)["KAFKA_TOPIC_PREFIX"] + REPORTING_REPORT
    # One producer per client, connected and warmed up (metadata fetched) before anything is timed.
    producers: queue.Queue[Producer] = queue.Queue()
    for _ in range(CLIENTS):
        producer = make_producer(kafka, "bench-bare")
        producer.produce(topic, key=b"warm-up", value=b"warm-up")
        producer.flush(30)
        producers.put(producer)
    arrivals = Arrivals(
        make_consumer(kafka.client_config(), f"bench-{uuid.uuid4().hex}"), topic, lambda value: value[:32].decode()
    )

    def send(_i: int) -> str:
        producer, key = producers.get(), uuid.uuid4().hex
        producer.produce(topic, key=key.encode(), value=key.encode() + os.urandom(max(size - 32, 0)))
        producer.flush(30)
        producers.put(producer)
        return key

    return _run_concurrently(REPORTS, send, arrivals)


def run() -> list[Figure]:
    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    kafka = start_kafka()
    with TemporaryDirectory(prefix="bench-reporting-") as data_dir:
        platform, linked, size, relay_ms = platform_run(kafka, Path(data_dir))
    bare = bare_run(kafka, size)
    print(f"\n{linked} of {REPORTS} reports linked to a child at once (the rest wait for a person to confirm)")
    clients = f"{CLIENTS} clients"
    return [
        Figure(
            "report submissions per second",
            REPORTS / platform.seconds,
            f"bare produce+flush per second ({clients})",
            REPORTS / bare.seconds,
            "per s",
            True,
        ),
        Figure(
            "SubmitReport p50 latency",
            statistics.median(platform.call_ms),
            "bare produce+flush p50",
            statistics.median(bare.call_ms),
            "ms",
        ),
        Figure(
            "SubmitReport p99 latency",
            percentile(platform.call_ms, 0.99),
            "bare produce+flush p99",
            percentile(bare.call_ms, 0.99),
            "ms",
        ),
        Figure(
            "submission -> CrisisDeclared on Kafka p50",
            statistics.median(platform.to_kafka_ms),
            "bare produce -> consume p50",
            statistics.median(bare.to_kafka_ms),
            "ms",
        ),
        Figure(
            "submission -> CrisisDeclared on Kafka p99",
            percentile(platform.to_kafka_ms, 0.99),
            "bare produce -> consume p99",
            percentile(bare.to_kafka_ms, 0.99),
            "ms",
        ),
        Figure(
            "outbox row written -> on Kafka p50 (the relay)",
            statistics.median(relay_ms),
            "bare produce -> consume p50",
            statistics.median(bare.to_kafka_ms),
            "ms",
        ),
        Figure(
            "outbox row written -> on Kafka p99 (the relay)",
            percentile(relay_ms, 0.99),
            "bare produce -> consume p99",
            percentile(bare.to_kafka_ms, 0.99),
            "ms",
        ),
    ]


def main() -> None:
    figures = run()
    print_figures(f"reporting: {REPORTS} crisis reports, {CLIENTS} concurrent clients, register of {CHILDREN}", figures)


if __name__ == "__main__":
    main()
