"""Notifications per second into in-app inboxes and to an agency's webhook receiver, beside a bare consume of
the same events; and how soon a crisis reaches the SMS carrier, beside bare Kafka.

The platform: notify as its own process (as `make up` runs it: `serve`, relay, consumers, one delivery
worker per channel, the escalation worker) on a fresh PostgreSQL database and Kafka topics of its own, the
carrier and the agency's receiver as local HTTP servers. The town's caseworker has a phone; the agency
`education` a webhook.

Figures: BENCH_NOTIFICATIONS ReferralOpened events produced at once -> each one's in-app notification
announced on notify.delivery (the inbox row and its event committed together), and each one's signed
webhook received by the agency: per second, from the first produce to the last arrival. Baseline, in the
same run on the same broker: a consumer reading the same events from the topic's start. Then BENCH_CRISES
CrisisDeclared events, one at a time -> the first SMS request at the carrier (p50/p99); baseline: the same
events produced -> seen by a bare consumer.
"""

from __future__ import annotations

import base64
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import grpc
from confluent_kafka import Consumer
from google.protobuf import timestamp_pb2
from minorprot.common.v1 import common_pb2
from minorprot.notify.v1 import events_pb2 as notify_events
from minorprot.notify.v1 import notify_pb2, notify_pb2_grpc
from minorprot.referral.v1 import events_pb2 as referral_events
from minorprot.referral.v1 import referral_pb2
from minorprot.reporting.v1 import events_pb2 as reporting_events

from bench.runner import Figure, print_figures
from platform_runtime.auth import Principal, Role
from platform_runtime.consumer import make_consumer
from platform_runtime.events import PendingEvent, to_envelope, unpack
from platform_runtime.local_stack import Stack, StackConfig, dev_token_issuer
from platform_runtime.outbox import make_producer
from platform_runtime.settings import KafkaSettings
from platform_runtime.topics import NOTIFY_DELIVERY, REFERRAL_REFERRAL, REPORTING_REPORT
from services.notify.tests.integration.stand_ins import HttpStandIn, http_stand_in
from tests.support.infra import DISTRICT, PILOT_TENANT, isolated_kafka_env, start_kafka, start_postgres
from tests.support.services import migrated_database

NOTIFICATIONS = int(os.environ.get("BENCH_NOTIFICATIONS", "500"))
CRISES = int(os.environ.get("BENCH_CRISES", "50"))
PORT_OFFSET = 340  # clear of `make up`, the browser and e2e stacks, the reporting bench (300) and faults (400)
PHONE = "13800000001"
WARMUP = 20


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Watch:
    """A consumer thread noting when each message of interest arrives (`keyed` picks its key, or None)."""

    def __init__(self, consumer: Consumer, topic: str, keyed: Callable[[bytes], str | None]) -> None:
        self._consumer, self._keyed = consumer, keyed
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        consumer.subscribe([topic])
        while not consumer.assignment():
            consumer.poll(0.2)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._consumer.poll(0.05)
            if message is not None and not message.error():
                key = self._keyed(message.value() or b"")
                if key:
                    self.seen.setdefault(key, time.monotonic())

    def wait_for(self, count: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        if len(self.seen) < count:
            raise RuntimeError(f"only {len(self.seen)} of {count} arrived")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()


def _in_app_subject(value: bytes) -> str | None:
    envelope = common_pb2.EventEnvelope.FromString(value)
    if envelope.event_type != notify_events.NotificationDelivered.DESCRIPTOR.full_name:
        return None
    event = unpack(envelope, notify_events.NotificationDelivered)
    return event.notification.subject_id if event.channel == "in_app" else None


def _referral(referral_id: str) -> PendingEvent:
    due = timestamp_pb2.Timestamp()
    due.GetCurrentTime()
    referral = referral_pb2.Referral(
        referral_id=referral_id,
        tenant=PILOT_TENANT,
        report_id=f"report-{referral_id}",
        agency_code="education",
        agency_name="区教委",
        status="opened",
        reason="失学辍学 out of school",
        due_at=due,
    )
    return PendingEvent(
        REFERRAL_REFERRAL, PILOT_TENANT, "referral", referral_id, referral_events.ReferralOpened(referral=referral)
    )


def _crisis(report_id: str) -> PendingEvent:
    return PendingEvent(
        REPORTING_REPORT,
        PILOT_TENANT,
        "report",
        report_id,
        reporting_events.CrisisDeclared(
            report_id=report_id,
            division_code=PILOT_TENANT + "201",
            situation_types=["abandoned_or_uncared"],
            required_actions=["notify_township_duty_officer"],
        ),
    )


def _last_at(stand_in: HttpStandIn, count: int, timeout: float = 300) -> float:
    deadline = time.monotonic() + timeout
    while len(stand_in.received) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    if len(stand_in.received) < count:
        raise RuntimeError(f"only {len(stand_in.received)} of {count} requests arrived")
    return max(r.at for r in stand_in.received[:count])


def _first_sms_at(carrier: HttpStandIn, report_id: str, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in list(carrier.received):
            if report_id in request.body.decode():
                return request.at
        time.sleep(0.002)
    raise RuntimeError(f"no SMS for {report_id}")


def run() -> list[Figure]:
    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    kafka: KafkaSettings = start_kafka()
    database = migrated_database(start_postgres(), "notify")
    isolated = isolated_kafka_env(kafka)
    prefix = isolated["KAFKA_TOPIC_PREFIX"]
    producer = make_producer(kafka, "bench-notify")

    def produce(event: PendingEvent) -> None:
        envelope = to_envelope(event, uuid.uuid4().hex)
        producer.produce(
            prefix + event.topic,
            key=event.key.encode(),
            value=envelope.SerializeToString(),
            headers=[("event_id", envelope.event_id.encode()), ("tenant", event.tenant.encode())],
        )

    with TemporaryDirectory(prefix="bench-notify-") as data_dir, http_stand_in() as carrier, http_stand_in() as agency:
        config = StackConfig(
            data_dir=Path(data_dir),
            kafka_bootstrap=kafka.bootstrap_servers,
            port_offset=PORT_OFFSET,
            database_urls={
                "notify": {
                    "DATABASE_URL": database.app_url,
                    "MIGRATION_DATABASE_URL": database.owner_url,
                    "OUTBOX_DATABASE_URL": database.relay_url,
                }
            },
            extra_env=isolated
            | {
                "LOG_LEVEL": "WARNING",
                "SMS_CARRIER_URL": carrier.url,
                "SMTP_HOST": "",
                "WEBHOOK_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
                "DELIVERY_POLL_MS": "20",
            },
        )
        stack = Stack(config)
        stack.start(["notify"])
        try:
            stack.wait_healthy()
            issuer = dev_token_issuer(Path(data_dir), lifetime_seconds=3600)

            def metadata(role: Role, user: str) -> tuple[tuple[str, str], ...]:
                principal = Principal(user, user, role, PILOT_TENANT, DISTRICT)
                return (("authorization", f"Bearer {issuer.issue(principal, 'notify')}"),)

            with grpc.insecure_channel(f"127.0.0.1:{config.grpc_port('notify')}") as channel:
                notify = notify_pb2_grpc.NotifyServiceStub(channel)
                notify.UpdateMyContact(
                    notify_pb2.UpdateMyContactRequest(contact=notify_pb2.Contact(phone=PHONE)),
                    metadata=metadata(Role.CASEWORKER, "bench-caseworker"),
                )
                contact = notify_pb2.AgencyContact(agency_code="education", channel="webhook", address=agency.url)
                notify.SetAgencyContact(
                    notify_pb2.SetAgencyContactRequest(contact=contact), metadata=metadata(Role.TOWN_ADMIN, "admin")
                )

            # Throughput: every ReferralOpened at once.
            inbox = Watch(
                make_consumer(kafka.client_config(), f"bench-{uuid.uuid4().hex}"),
                prefix + NOTIFY_DELIVERY,
                _in_app_subject,
            )
            for i in range(WARMUP):  # the consumer assigned and every connection made before timing
                produce(_referral(f"warm-up-{i}"))
            producer.flush(60)
            inbox.wait_for(WARMUP)
            _last_at(agency, WARMUP)
            inbox.seen.clear()
            agency.received.clear()
            started = time.monotonic()
            for i in range(NOTIFICATIONS):
                produce(_referral(f"referral-{i}"))
            producer.flush(60)
            inbox.wait_for(NOTIFICATIONS)
            inbox.close()
            inbox_seconds = max(inbox.seen.values()) - started
            webhook_seconds = _last_at(agency, NOTIFICATIONS) - started

            bare = make_consumer(kafka.client_config(), f"bench-{uuid.uuid4().hex}")
            bare.subscribe([prefix + REFERRAL_REFERRAL])
            read, bare_started = 0, time.monotonic()
            while read < WARMUP + NOTIFICATIONS and time.monotonic() - bare_started < 120:
                message = bare.poll(0.1)
                if message is not None and not message.error():
                    read += 1
            bare_seconds = (time.monotonic() - bare_started) * NOTIFICATIONS / (WARMUP + NOTIFICATIONS)
            bare.close()

            # Latency: one crisis at a time, to the first SMS at the carrier; a bare consumer beside it.
            seen = Watch(
                make_consumer(kafka.client_config(), f"bench-{uuid.uuid4().hex}"),
                prefix + REPORTING_REPORT,
                lambda value: common_pb2.EventEnvelope.FromString(value).aggregate_id,
            )
            to_sms_ms, to_consumer_ms = [], []
            for i in range(CRISES):
                report_id = f"crisis-{i}-{uuid.uuid4().hex[:6]}"
                sent = time.monotonic()
                produce(_crisis(report_id))
                producer.flush(10)
                to_sms_ms.append((_first_sms_at(carrier, report_id) - sent) * 1000)
                seen.wait_for(i + 1)
                to_consumer_ms.append((seen.seen[report_id] - sent) * 1000)
            seen.close()
        finally:
            stack.stop()

    return [
        Figure(
            "notifications into in-app inboxes per second",
            NOTIFICATIONS / inbox_seconds,
            "bare consume of the same events per second",
            NOTIFICATIONS / bare_seconds,
            "per s",
            True,
        ),
        Figure(
            "signed webhooks at the agency per second",
            NOTIFICATIONS / webhook_seconds,
            "bare consume of the same events per second",
            NOTIFICATIONS / bare_seconds,
            "per s",
            True,
        ),
        Figure(
            "CrisisDeclared -> first SMS at the carrier p50",
            statistics.median(to_sms_ms),
            "bare produce -> consume p50",
            statistics.median(to_consumer_ms),
            "ms",
        ),
        Figure(
            "CrisisDeclared -> first SMS at the carrier p99",
            percentile(to_sms_ms, 0.99),
            "bare produce -> consume p99",
            percentile(to_consumer_ms, 0.99),
            "ms",
        ),
    ]


def main() -> None:
    figures = run()
    print_figures(f"notify: {NOTIFICATIONS} referrals at once, {CRISES} crises one at a time", figures)


if __name__ == "__main__":
    main()
