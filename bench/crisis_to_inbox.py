"""Crisis reports through the gateway's REST API at a steady rate, to the caseworker's inbox.

The platform as `make up` runs it (registry, reporting, notify and the gateway as their own processes, on
fresh PostgreSQL databases and Kafka topics of their own). BENCH_CLIENTS (8) clients of the demo caseworker
POST /api/v1/reports at BENCH_RATE (200) reports per second in all for BENCH_SECONDS (60), each report a
crisis (a child left without care: CrisisDeclared with the report), half of them about a child of the
register. A report reaches the inbox when notify commits its notification for the town's caseworkers
(notifications.created_at, read from notify's database afterwards; the inbox lists it from then on).

Figures: reports per second reached, POST p50/p99, submission -> notification p50/p99, errors; beside the
bare produce -> consume of the same number of messages at the same rate by as many clients.
Smoke run: BENCH_RATE=20 BENCH_SECONDS=5.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from sqlalchemy import create_engine, make_url, text

from bench.reporting_throughput import Arrivals, percentile
from bench.runner import Figure, print_figures
from gateway import second_factor
from platform_runtime.consumer import make_consumer
from platform_runtime.local_stack import Stack, StackConfig, dev_secrets
from platform_runtime.outbox import make_producer
from platform_runtime.settings import KafkaSettings
from platform_runtime.topics import REPORTING_REPORT
from tests.support.infra import DISTRICT, PILOT_TENANT, isolated_kafka_env, start_kafka, start_postgres
from tests.support.services import migrated_database

RATE = float(os.environ.get("BENCH_RATE", "200"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
PORT_OFFSET = 540  # clear of `make up`, the test stacks (100-460, the fault suite 400) and the other benches
SERVICES = ("registry", "reporting", "notify")
NAMES = "王李张刘陈杨赵黄周吴", "思雨晓明子涵一诺梓轩欣怡浩然宇航雨桐"


def paced(count: int, send: Callable[[int], str]) -> tuple[float, dict[str, float], list[float], int]:
    """Report n is due at start + n / RATE; CLIENTS threads take the next one due. Returns (seconds, each
    key's start time, each call's latency in ms, errors)."""
    started: dict[str, float] = {}
    call_ms: list[float] = []
    errors = 0
    lock = threading.Lock()
    next_due = iter(range(count))
    begin = time.perf_counter() + 0.5

    def client() -> None:
        nonlocal errors
        while True:
            with lock:
                n = next(next_due, None)
            if n is None:
                return
            time.sleep(max(0.0, begin + n / RATE - time.perf_counter()))
            sent = time.perf_counter()
            try:
                key = send(n)
            except Exception as error:  # counted and shown: a benchmark that hides errors proves nothing
                with lock:
                    errors += 1
                if errors <= 3:
                    print(f"error: {error}")
                continue
            with lock:
                started[key] = sent
                call_ms.append((time.perf_counter() - sent) * 1000)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - begin, started, call_ms, errors


class Client:
    """One keep-alive HTTP connection per thread."""

    def __init__(self, port: int, token: str) -> None:
        self._port, self._token = port, token
        self._local = threading.local()

    def post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=30)
        connection.request(
            "POST",
            path,
            json.dumps(body),
            {"Content-Type": "application/json", "Authorization": f"Bearer {self._token}"},
        )
        reply = connection.getresponse()
        payload = json.loads(reply.read() or b"null")
        if reply.status != 201:
            raise RuntimeError(f"{reply.status}: {payload}")
        return dict(payload)


def _login(port: int, password: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(
        "POST",
        "/api/v1/token",
        json.dumps(
            {
                "username": "caseworker",
                "password": password,
                # The demo users' second factor (seed-demo derives it from the password).
                "code": second_factor.code_at(second_factor.demo_secret(password), time.time()),
            }
        ),
        {"Content-Type": "application/json"},
    )
    reply = connection.getresponse()
    body = json.loads(reply.read())
    if reply.status != 200:
        raise RuntimeError(f"login failed: {reply.status} {body}")
    return str(body["access_token"])


def _report(rng: random.Random, children: list[tuple[str, str]]) -> dict[str, object]:
    name, birth = (
        rng.choice(children)
        if children and rng.random() < 0.5
        else (
            rng.choice(NAMES[0]) + "".join(rng.sample(NAMES[1], 2)),
            f"{datetime.now(UTC).year - rng.randint(3, 14)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        )
    )
    return {
        "channel": "staff_hotline",
        "child": {"name": name, "sex": "female", "birth_date": birth},
        "place": {"division_code": PILOT_TENANT + "201", "text": "村口"},
        "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="minutes"),
        "situation_types": ["abandoned_or_uncared"],
        "narrative": "村民来电:孩子连续三天独自在家,无人照看。",
    }


def platform_run(
    postgres_url: str, kafka: KafkaSettings, data_dir: Path
) -> tuple[float, list[float], list[float], int]:
    """(seconds, POST latencies, submission -> notification latencies, errors)."""
    databases = {service: migrated_database(postgres_url, service) for service in SERVICES}
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
        extra_env=isolated_kafka_env(kafka) | {"LOG_LEVEL": "WARNING", "OTEL_TRACES_EXPORTER": "none"},
    )
    stack = Stack(config)
    stack.migrate(["gateway"])
    stack.run_once("registry", "onboard-tenant", "--code", PILOT_TENANT, "--name", "良乡镇", "--district", DISTRICT)
    password = dev_secrets(data_dir)["DEMO_PASSWORD"]
    stack.run_once("gateway", "seed-demo", "--tenant", PILOT_TENANT, extra_env={"DEMO_PASSWORD": password})
    stack.start([*SERVICES, "gateway"])
    try:
        stack.wait_healthy(timeout=120)
        client = Client(config.gateway_port, _login(config.gateway_port, password))
        rng = random.Random(2014)
        # The register: the children of the first 100 reports (registered provisionally when reported).
        children: list[tuple[str, str]] = []
        for _ in range(100):
            body = _report(rng, [])
            client.post("/api/v1/reports", body)
            child = body["child"]
            assert isinstance(child, dict)
            children.append((str(child["name"]), str(child["birth_date"])))
        count = int(RATE * SECONDS)
        bodies = [_report(rng, children) for _ in range(count)]
        wall_at_begin, perf_at_begin = datetime.now(UTC), time.perf_counter()
        seconds, started, call_ms, errors = paced(
            count, lambda n: str(client.post("/api/v1/reports", bodies[n])["report_id"])
        )
        to_inbox = _notification_latencies(
            postgres_url, databases["notify"].owner_url, started, wall_at_begin, perf_at_begin
        )
        return seconds, call_ms, to_inbox, errors + (len(started) - len(to_inbox))
    finally:
        stack.stop()


def _notification_latencies(
    superuser_url: str, notify_url: str, started: dict[str, float], wall: datetime, perf: float, timeout: float = 120
) -> list[float]:
    """Submission -> the first notification about the report committed in notify's database (read as the
    superuser: row-level security shows the owner nothing without a town)."""
    url = make_url(superuser_url).set(database=make_url(notify_url).database)
    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    created: dict[str, datetime] = {}
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT subject_id, min(created_at) FROM notifications GROUP BY subject_id")
            ).all()
        created = {subject: at for subject, at in rows if subject in started}
        if len(created) == len(started):
            break
        time.sleep(1)
    engine.dispose()
    missing = len(started) - len(created)
    if missing:
        print(f"{missing} of {len(started)} reports had no notification after {timeout:.0f} s")
    return [((at - wall).total_seconds() - (started[key] - perf)) * 1000 for key, at in created.items()]


def bare_run(kafka: KafkaSettings) -> tuple[float, list[float], list[float], int]:
    """The same count at the same rate from as many clients: produce+flush, then a consumer's arrival."""
    topic = isolated_kafka_env(kafka)["KAFKA_TOPIC_PREFIX"] + REPORTING_REPORT
    producers = [make_producer(kafka, "bench-bare") for _ in range(CLIENTS)]
    for producer in producers:
        producer.produce(topic, key=b"warm-up", value=b"warm-up")
        producer.flush(30)
    arrivals = Arrivals(
        make_consumer(kafka.client_config(), f"bench-{uuid.uuid4().hex}"), topic, lambda value: value[:32].decode()
    )
    local = threading.local()
    pool = iter(producers)
    pool_lock = threading.Lock()

    def send(_n: int) -> str:
        producer = getattr(local, "producer", None)
        if producer is None:
            with pool_lock:
                producer = local.producer = next(pool)
        key = uuid.uuid4().hex
        producer.produce(topic, key=key.encode(), value=key.encode() + os.urandom(400))
        producer.flush(30)
        return key

    seconds, started, call_ms, errors = paced(int(RATE * SECONDS), send)
    arrivals.wait_for(set(started))
    return seconds, call_ms, [(arrivals.seen[key] - started[key]) * 1000 for key in started], errors


def run() -> list[Figure]:
    postgres_url, kafka = start_postgres(), start_kafka()
    with TemporaryDirectory(prefix="bench-inbox-") as data_dir:
        seconds, call_ms, to_inbox, errors = platform_run(postgres_url, kafka, Path(data_dir))
    bare_seconds, bare_ms, bare_arrival, bare_errors = bare_run(kafka)
    count = int(RATE * SECONDS)
    print(f"\n{errors} errors or reports without a notification (bare Kafka: {bare_errors})")
    if errors or bare_errors:
        raise SystemExit(f"{errors + bare_errors} errors")  # a smoke run fails on errors, never on timing
    return [
        Figure(
            "reports per second reached", count / seconds, "bare produce+flush", count / bare_seconds, "per s", True
        ),
        Figure(
            "POST /api/v1/reports p50",
            statistics.median(call_ms),
            "bare produce+flush p50",
            statistics.median(bare_ms),
            "ms",
        ),
        Figure(
            "POST /api/v1/reports p99",
            percentile(call_ms, 0.99),
            "bare produce+flush p99",
            percentile(bare_ms, 0.99),
            "ms",
        ),
        Figure(
            "submission -> caseworker's inbox p50",
            statistics.median(to_inbox),
            "bare produce -> consume p50",
            statistics.median(bare_arrival),
            "ms",
        ),
        Figure(
            "submission -> caseworker's inbox p99",
            percentile(to_inbox, 0.99),
            "bare produce -> consume p99",
            percentile(bare_arrival, 0.99),
            "ms",
        ),
    ]


def main() -> None:
    figures = run()
    print_figures(f"crisis reports to the inbox: {RATE:.0f}/s for {SECONDS:.0f} s from {CLIENTS} REST clients", figures)


if __name__ == "__main__":
    main()
