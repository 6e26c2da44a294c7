"""The outbox survives a relay that dies: every committed event reaches Kafka, and takes effect once.

Two deaths: between the database commit and the Kafka send (nothing sent), and between the send and the
mark (sent, not marked, so sent again on restart; the consumer's inbox drops the repeat).
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer
from google.protobuf.message import DecodeError
from minorprot.common.v1 import common_pb2
from sqlalchemy import create_engine, func, select, text

from platform_runtime.auth import Role, ServiceTokens, TokenIssuer
from platform_runtime.db import Database, make_engine
from platform_runtime.outbox import OutboxRelay, make_producer
from platform_runtime.pii import BlindIndex, FieldCipher
from platform_runtime.settings import KafkaSettings, decode_key, decode_keyring
from platform_runtime.tenancy import acting_as
from platform_runtime.topics import REPORTING_REPORT, dead_letter_topic
from services.registry.adapters.orm import TimelineRecord
from services.reporting.adapters.orm import metadata
from services.reporting.adapters.registry_client import GrpcChildDirectory
from services.reporting.adapters.unit_of_work import SqlReportStore
from services.reporting.domain.model import Channel, ChildInfo, Place, Sex, SituationType, Submission
from services.reporting.service_layer.services import ReportingService
from tests.support.infra import PILOT_TENANT, ROOT, TOPIC_PREFIX, Secrets
from tests.support.services import Running, migrated_database

pytestmark = pytest.mark.integration


def unpublished(relay_url: str) -> list[tuple[str, str]]:
    engine = create_engine(relay_url)
    with engine.begin() as connection:
        rows = connection.execute(text("SELECT event_id, event_type FROM outbox WHERE published_at IS NULL")).all()
    engine.dispose()
    return [(row[0], row[1]) for row in rows]


def copies_in_kafka(
    kafka: KafkaSettings, event_ids: set[str], wanted: int, timeout: float = 30, topic: str = REPORTING_REPORT
) -> dict[str, int]:
    consumer = Consumer(
        kafka.client_config() | {"group.id": f"probe-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([TOPIC_PREFIX + topic])
    seen = dict.fromkeys(event_ids, 0)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and sum(seen.values()) < wanted:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            try:
                envelope = common_pb2.EventEnvelope.FromString(message.value() or b"")
            except DecodeError:
                continue  # other tests park poison messages on the same topic
            if envelope.event_id in seen:
                seen[envelope.event_id] += 1
    finally:
        consumer.close()
    return seen


def test_relay_deaths_lose_nothing_and_apply_once(
    postgres_url: str, kafka: KafkaSettings, secrets: Secrets, registry: Running
) -> None:
    reporting_db = migrated_database(postgres_url, "reporting")
    database = Database.connect(reporting_db.app_url, metadata)
    service = ReportingService(
        SqlReportStore(database, FieldCipher(decode_keyring(secrets.pii_keys))),
        BlindIndex(decode_key(secrets.blind_index_key)),
        GrpcChildDirectory(registry.target, ServiceTokens(TokenIssuer(secrets.workload_keys["reporting"]))),
    )
    name = "赵" + uuid.uuid4().hex[:2]  # a child new to the register: registered provisionally, then linked
    with acting_as(secrets.principal(PILOT_TENANT, Role.CASEWORKER, audience="reporting")):
        outcome = service.submit(
            Submission(
                channel=Channel.STAFF_WALK_IN,
                child=ChildInfo(name=name, sex=Sex.FEMALE, approximate_age=9),
                place=Place(PILOT_TENANT + "201", "村委会"),
                occurred_at=datetime.now(UTC) - timedelta(hours=1),
                situations=frozenset({SituationType.OUT_OF_SCHOOL}),
                narrative="孩子近两周没有到校上课，家里说孩子在外地亲戚家。",
            )
        )
    assert outcome.report.child_id, outcome.report.attention_reason

    # Death 1: committed, never sent. Nothing is lost: the rows wait in the outbox.
    pending = unpublished(reporting_db.relay_url)
    assert {event_type.rsplit(".", 1)[1] for _, event_type in pending} == {"ReportSubmitted", "ReportLinked"}

    # Death 2: sent, then killed before marking.
    crashed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.crashing_relay",
            reporting_db.relay_url,
            kafka.bootstrap_servers,
            TOPIC_PREFIX,
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert crashed.returncode == 9, crashed.stderr.decode()
    assert unpublished(reporting_db.relay_url) == pending

    # Restart: the relay sends the same rows again and marks them.
    relay = OutboxRelay(
        make_engine(reporting_db.relay_url),
        metadata.tables["outbox"],
        make_producer(kafka, "restart"),
        topic_prefix=TOPIC_PREFIX,
    )
    assert relay.publish_pending() == len(pending)
    assert unpublished(reporting_db.relay_url) == []
    event_ids = {event_id for event_id, _ in pending}
    copies = copies_in_kafka(kafka, event_ids, wanted=2 * len(event_ids))
    assert copies == dict.fromkeys(event_ids, 2)

    # The registry consumed both copies of ReportLinked and applied it once: the repeat was dropped by its
    # inbox (a second application would have failed on the timeline and gone to the dead-letter topic).
    registry_engine = create_engine(registry.database.owner_url)

    def timeline_entries() -> int:
        with registry_engine.begin() as connection:
            connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
            return int(
                connection.execute(
                    select(func.count())
                    .select_from(TimelineRecord)
                    .where(TimelineRecord.reference_id == outcome.report.report_id)
                ).scalar_one()
            )

    deadline = time.monotonic() + 30
    while timeline_entries() == 0 and time.monotonic() < deadline:
        time.sleep(0.3)
    dead = copies_in_kafka(kafka, event_ids, wanted=1, timeout=5, topic=dead_letter_topic(REPORTING_REPORT))
    assert timeline_entries() == 1
    assert sum(dead.values()) == 0
    registry_engine.dispose()
    database.dispose()
