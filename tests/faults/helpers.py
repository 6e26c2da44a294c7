"""Reading the services' own databases and Kafka topics, and submitting reports, for the fault suite."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Consumer, Message
from sqlalchemy import create_engine, pool, text

from platform_runtime.events import PendingEvent, to_envelope
from platform_runtime.outbox import make_producer
from platform_runtime.settings import KafkaSettings
from tests.e2e import test_walking_skeleton as walking_skeleton
from tests.support.infra import PILOT_TENANT, ROOT


def rows(url: str, sql: str, tenant: str = PILOT_TENANT, **params: Any) -> list[Any]:
    """A service's own database read as its owner, with the tenant set as the service does (RLS is forced)."""
    return walking_skeleton.rows(url, tenant, sql, **params)


def execute(url: str, sql: str) -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(text(sql))
    finally:
        engine.dispose()


def publish(kafka: KafkaSettings, prefix: str, event: PendingEvent, event_id: str) -> None:
    """Publish `event` exactly as a service's relay would (envelope, key, headers)."""
    producer = make_producer(kafka, "fault-suite")
    producer.produce(
        prefix + event.topic,
        key=event.key.encode(),
        value=to_envelope(event, event_id).SerializeToString(),
        headers=[
            ("tenant", event.tenant.encode()),
            ("event_type", event.event_type.encode()),
            ("event_id", event_id.encode()),
        ],
    )
    assert producer.flush(30) == 0, f"could not publish to {prefix + event.topic}"


def read_topic(
    kafka: KafkaSettings, topic: str, until: Callable[[list[Message]], bool], timeout: float = 60
) -> list[Message]:
    """Every message of `topic` from the beginning, until `until(messages)` holds (or the time is up)."""
    consumer = Consumer(
        kafka.client_config()
        | {
            "group.id": f"fault-suite-reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(found):
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                found.append(message)
    finally:
        consumer.close()
    return found


def header(message: Message, name: str) -> str:
    raw: Any = message.headers() or []
    for key, value in raw:
        if key == name:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
    return ""


def dead_letters_tool(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m platform_runtime.dead_letters ...` with the stack's Kafka settings (topic prefix included)."""
    return subprocess.run(
        [sys.executable, "-m", "platform_runtime.dead_letters", *args],
        cwd=ROOT,
        env={**os.environ, **{k: env[k] for k in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC_PREFIX")}},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# The three kinds of report the suite submits, with their situation and what the caller says.
SITUATIONS = {
    "crisis": ("abandoned_or_uncared", "邻居来电：孩子被独自留在家中多日，无人照料。"),
    "ordinary": ("wandering", "村民来电：一名孩子在村口徘徊。"),
    "poverty": ("poverty_dropout_risk", "村委会来电：家庭困难，孩子可能辍学。"),
}


def report_body(tag: str, kind: str, name: str) -> dict[str, Any]:
    """A caseworker's hotline report. Crisis: a child abandoned (CRISIS_ABANDONMENT; a mandatory-reporting
    situation); ordinary: a child seen wandering (no facts, so not the crisis rule CRISIS_WANDERING_ALONE);
    poverty: a poor family's child at risk of dropping out (referral's family-poverty route)."""
    situation, narrative = SITUATIONS[kind]
    return {
        "channel": "staff_hotline",
        "child": {
            "name": name,
            "sex": "female" if kind == "crisis" else "male",
            "approximate_age": "9",
            "description": tag,
        },
        "place": {"division_code": PILOT_TENANT + "201", "text": "良乡镇某村"},
        "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="minutes"),
        "situation_types": [situation],
        "narrative": f"{narrative} {tag}",
    }


# What routing (services/referral/domain/routing.py) makes of the kinds of report above:
# a crisis with a mandatory-reporting situation goes to the relief station (CRISIS_RELIEF_STATION) and the police
# (MANDATORY_REPORT_POLICE); a child wandering goes to civil affairs (WANDERING_CIVIL_AFFAIRS), as the walking
# skeleton asserts; family poverty to civil affairs (POVERTY_CIVIL_AFFAIRS, which asks benefits for an
# application) and to education (SCHOOLING_EDUCATION). Notify tells the township's caseworkers of each referral,
# and of a crisis (CrisisDeclared).
EXPECTED_AGENCIES = {
    "crisis": frozenset({"civil_affairs", "police"}),
    "ordinary": frozenset({"civil_affairs"}),
    "poverty": frozenset({"civil_affairs", "education"}),
}
