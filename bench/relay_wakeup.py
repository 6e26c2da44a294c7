"""Commit -> on Kafka through the outbox relay: woken by the commit (ADR 0019) vs. the poll it had before.

One reporting database on PostgreSQL, one relay as `serve` runs it (its own engine as the relay role, an
advisory lock, a supervisor), one consumer noting arrivals. BENCH_RELAY_EVENTS events are committed one at
a time at BENCH_RELAY_RATE per second, each in its own unit of work as a use case writes them, in blocks
that alternate between the relay as it is (LISTEN/NOTIFY, the poll only as the fallback) and the relay as
it was (the same code waiting out its 0.2 s poll), so both see the same load on a shared machine.
Baseline: a bare produce+flush -> consume of as many messages of the same size at the same rate.

Figures: commit -> consumed p50/p99 for the woken relay, beside the polling relay, beside bare Kafka.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable

from google.protobuf import wrappers_pb2

from bench.reporting_throughput import Arrivals, percentile
from bench.runner import Figure, print_figures
from platform_runtime.consumer import make_consumer
from platform_runtime.db import Database, make_engine
from platform_runtime.events import PendingEvent, unpack
from platform_runtime.outbox import OutboxRelay, make_producer
from platform_runtime.supervisor import Supervisor, Worker
from platform_runtime.topics import REPORTING_REPORT
from services.reporting.adapters.orm import metadata
from tests.support.infra import PILOT_TENANT, isolated_kafka_env, start_kafka, start_postgres
from tests.support.services import migrated_database

EVENTS = int(os.environ.get("BENCH_RELAY_EVENTS", "300"))
RATE = float(os.environ.get("BENCH_RELAY_RATE", "50"))
BLOCK = 25


def _value(raw: bytes) -> str | None:
    from minorprot.common.v1 import common_pb2

    try:
        return unpack(common_pb2.EventEnvelope.FromString(raw), wrappers_pb2.StringValue).value
    except Exception:
        return None


def run() -> list[Figure]:
    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    kafka = start_kafka()
    db = migrated_database(start_postgres(), "reporting")
    prefix = isolated_kafka_env(kafka)["KAFKA_TOPIC_PREFIX"]
    database = Database.connect(db.app_url, metadata)
    relay_engine = make_engine(db.relay_url, pool_size=2)
    relay = OutboxRelay(
        relay_engine,
        metadata.tables["outbox"],
        make_producer(kafka, "bench-relay", retry_until_acknowledged=True),
        topic_prefix=prefix,
    )
    woken_wait = relay._wait_for_commit
    polling = threading.Event()

    def wait(connection: object, seen: int, stop: threading.Event) -> None:
        if polling.is_set():
            stop.wait(relay._poll_interval)  # the relay before ADR 0019: sleep out the poll
        else:
            woken_wait(connection, seen, stop)  # type: ignore[arg-type]

    relay._wait_for_commit = wait  # type: ignore[method-assign]
    supervisor = Supervisor([Worker("relay", relay.run)], down_after=120)
    arrivals = Arrivals(
        make_consumer(kafka.client_config(), f"bench-{uuid.uuid4().hex}"), prefix + REPORTING_REPORT, _value
    )
    supervisor.start()
    started: dict[str, float] = {}
    modes: dict[str, list[str]] = {"woken": [], "polling": []}
    try:
        for block in range(0, EVENTS * 2, BLOCK):
            mode = "polling" if (block // BLOCK) % 2 else "woken"
            (polling.set if mode == "polling" else polling.clear)()
            time.sleep(0.3)  # the relay is in its wait of the new mode
            for n in range(block, min(block + BLOCK, EVENTS * 2)):
                key = f"{mode}-{n}-{uuid.uuid4().hex[:8]}"
                with database.unit_of_work(PILOT_TENANT) as uow:
                    uow.publish(
                        PendingEvent(REPORTING_REPORT, PILOT_TENANT, "bench", "k", wrappers_pb2.StringValue(value=key))
                    )
                    started[key] = time.perf_counter()
                    uow.commit()
                modes[mode].append(key)
                time.sleep(max(0.0, 1 / RATE - (time.perf_counter() - started[key])))
        arrivals.wait_for(set(started))
    finally:
        supervisor.stop(15)
        database.dispose()
        relay_engine.dispose()
    latency = {mode: [(arrivals.seen[k] - started[k]) * 1000 for k in keys] for mode, keys in modes.items()}
    bare = _bare(kafka, prefix + REPORTING_REPORT, arrivals.size)
    return [
        Figure(
            "commit -> consumed p50, relay woken by the commit",
            statistics.median(latency["woken"]),
            "bare produce -> consume",
            statistics.median(bare),
            "ms",
        ),
        Figure(
            "commit -> consumed p99, relay woken by the commit",
            percentile(latency["woken"], 0.99),
            "bare produce -> consume",
            percentile(bare, 0.99),
            "ms",
        ),
        Figure(
            "commit -> consumed p50, relay woken",
            statistics.median(latency["woken"]),
            "polling relay (before), same run",
            statistics.median(latency["polling"]),
            "ms",
        ),
        Figure(
            "commit -> consumed p99, relay woken",
            percentile(latency["woken"], 0.99),
            "polling relay (before), same run",
            percentile(latency["polling"], 0.99),
            "ms",
        ),
    ]


def _bare(kafka: object, topic: str, size: int) -> list[float]:
    from platform_runtime.settings import KafkaSettings

    assert isinstance(kafka, KafkaSettings)
    producer = make_producer(kafka, "bench-bare")
    producer.produce(topic, key=b"warm-up", value=b"warm-up")
    producer.flush(30)
    arrivals = Arrivals(make_consumer(kafka.client_config(), f"bench-{uuid.uuid4().hex}"), topic, _bare_key)
    started: dict[str, float] = {}
    for _ in range(EVENTS):
        key = uuid.uuid4().hex
        started[key] = time.perf_counter()
        producer.produce(topic, key=b"k", value=b"bare" + key.encode() + b"\0" * max(size - 36, 0))
        producer.flush(30)
        time.sleep(max(0.0, 1 / RATE - (time.perf_counter() - started[key])))
    arrivals.wait_for(set(started))
    return [(arrivals.seen[k] - started[k]) * 1000 for k in started]


_bare_key: Callable[[bytes], str | None] = lambda raw: raw[4:36].decode() if raw.startswith(b"bare") else None  # noqa: E731


def main() -> None:
    print_figures(f"relay wake-up: {EVENTS} commits each way at {RATE:.0f}/s, interleaved in blocks of {BLOCK}", run())


if __name__ == "__main__":
    main()
