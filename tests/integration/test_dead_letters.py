"""A message no consumer can apply goes to the dead-letter topic with the error, and the stream moves on."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from platform_runtime.settings import KafkaSettings
from platform_runtime.topics import REPORTING_REPORT, dead_letter_topic
from tests.support.infra import TOPIC_PREFIX
from tests.support.services import Running

pytestmark = pytest.mark.integration


def test_a_poison_message_is_parked_with_its_error(kafka: KafkaSettings, registry: Running) -> None:
    marker = uuid.uuid4().hex.encode()
    producer = Producer(kafka.client_config())
    producer.produce(
        TOPIC_PREFIX + REPORTING_REPORT,
        key=b"110111008:poison",
        value=b"\x00not an envelope",
        headers=[("marker", marker)],
    )
    assert producer.flush(10) == 0

    consumer = Consumer(
        kafka.client_config() | {"group.id": f"dlt-probe-{marker.decode()}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([TOPIC_PREFIX + dead_letter_topic(REPORTING_REPORT)])
    found = None
    deadline = time.monotonic() + 30
    try:
        while found is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            headers = dict(message.headers() or [])
            if headers.get("marker") == marker:
                found = headers
    finally:
        consumer.close()
    assert found is not None, "the poison message never reached the dead-letter topic"
    error, group = found["dlt.error"], found["dlt.consumer_group"]
    assert isinstance(error, bytes) and b"not an event envelope" in error
    assert isinstance(group, bytes) and group.endswith(b"registry")
