"""A crisis chain survives notify being killed (SIGKILL) in the middle: notify runs as its own process
(`serve`: consumers, delivery workers, the escalation worker) on PostgreSQL and Kafka; it is killed once the
chain has taken its second step and started again; the chain goes on to its last step, each step taken once
and each message recorded once, and every SMS reached the carrier stand-in."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from minorprot.reporting.v1 import events_pb2 as reporting_events
from sqlalchemy import select

from platform_runtime.auth import Role
from platform_runtime.db import Database, utcnow
from platform_runtime.events import PendingEvent, to_envelope
from platform_runtime.local_stack import Stack, StackConfig
from platform_runtime.outbox import make_producer
from platform_runtime.settings import KafkaSettings
from platform_runtime.tenancy import acting_as
from platform_runtime.topics import REPORTING_REPORT
from services.notify.adapters.orm import CrisisStepRecord, DeliveryRecord, metadata
from services.notify.service_layer.directory import DirectoryService
from services.notify.service_layer.recipients import beijing_date
from services.notify.tests.integration.builders import PILOT_TENANT, caller
from services.notify.tests.integration.stand_ins import http_stand_in
from tests.support.infra import isolated_kafka_env
from tests.support.services import migrated_database

pytestmark = pytest.mark.integration

LIMIT_SECONDS = 3
LEASE_SECONDS = 5  # an SMS the killed process had claimed is sent by its successor after this
PORT_OFFSET = 360  # clear of `make up`, the browser and e2e stacks and the benches
PEOPLE = {
    "duty1": (Role.CASEWORKER, "13900000001"),
    "admin1": (Role.TOWN_ADMIN, "13900000002"),
    "district1": (Role.DISTRICT_OFFICER, "13900000003"),
    "lgo1": (Role.LEADING_GROUP_OFFICE, "13900000004"),
}


def wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f}s"
        time.sleep(0.1)
    return found


def test_a_crisis_chain_goes_on_after_notify_is_killed_mid_chain(
    postgres_url: str, kafka: KafkaSettings, tmp_path: Path
) -> None:
    provisioned = migrated_database(postgres_url, "notify")
    database = Database.connect(provisioned.app_url, metadata)
    directory = DirectoryService(database)
    for user, (role, phone) in PEOPLE.items():
        with acting_as(caller(role, user=user)):
            directory.update_my_contact(phone=phone, email="", channels_off=[], quiet_from="", quiet_until="")
    with acting_as(caller(Role.TOWN_ADMIN, user="admin1")):
        directory.set_duty_officer(beijing_date(utcnow()), "duty1")

    def steps() -> list[int]:
        with database.unit_of_work(PILOT_TENANT) as uow:
            return list(uow.session.scalars(select(CrisisStepRecord.step).order_by(CrisisStepRecord.step)))

    isolated = isolated_kafka_env(kafka)
    with http_stand_in() as carrier:
        config = StackConfig(
            data_dir=tmp_path,
            kafka_bootstrap=kafka.bootstrap_servers,
            port_offset=PORT_OFFSET,
            database_urls={
                "notify": {
                    "DATABASE_URL": provisioned.app_url,
                    "MIGRATION_DATABASE_URL": provisioned.owner_url,
                    "OUTBOX_DATABASE_URL": provisioned.relay_url,
                }
            },
            extra_env=isolated
            | {
                "SMS_CARRIER_URL": carrier.url,
                "SMTP_HOST": "",
                "CRISIS_ACK_SECONDS": str(LIMIT_SECONDS),
                "DELIVERY_POLL_MS": "50",
                "DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
            },
        )
        stack = Stack(config)
        stack.start(["notify"])
        try:
            stack.wait_healthy(timeout=60)
            report_id = f"report-{uuid.uuid4().hex[:8]}"
            event = PendingEvent(
                REPORTING_REPORT,
                PILOT_TENANT,
                "report",
                report_id,
                reporting_events.CrisisDeclared(report_id=report_id, required_actions=["notify_police"]),
            )
            producer = make_producer(kafka, "notify-restart-test")
            envelope = to_envelope(event, uuid.uuid4().hex)
            producer.produce(
                isolated["KAFKA_TOPIC_PREFIX"] + REPORTING_REPORT,
                key=event.key.encode(),
                value=envelope.SerializeToString(),
                headers=[("event_id", envelope.event_id.encode()), ("tenant", PILOT_TENANT.encode())],
            )
            assert producer.flush(10) == 0

            wait(lambda: len(steps()) >= 2, 30, "the second step")
            stack.processes.pop("notify").kill()  # SIGKILL: no goodbye, mid-chain
            taken_before = steps()
            stack.start(["notify"])
            stack.wait_healthy(timeout=60)
            wait(lambda: len(steps()) == 4, 30, "the last step")
            time.sleep(LIMIT_SECONDS + 1)  # nothing after the last step

            def sms() -> set[tuple[str, str, str]]:
                with database.unit_of_work(PILOT_TENANT) as uow:
                    rows = uow.session.scalars(select(DeliveryRecord).where(DeliveryRecord.channel == "sms")).all()
                    return {(row.id, row.recipient, row.status) for row in rows}

            # One the killed process had claimed (or sent without recording) is sent again after the lease.
            sent = wait(
                lambda: (found := sms()) and all(status != "pending" for *_, status in found) and found,
                LEASE_SECONDS + 30,
                "every SMS sent or given up",
            )
        finally:
            stack.stop()

    assert taken_before in ([1, 2], [1, 2, 3])
    assert steps() == [1, 2, 3, 4]
    database.dispose()
    # The alert's subscription texts the caseworker (duty1) and the town admin; each step texts its people.
    assert sorted(recipient for _, recipient, _ in sent) == [
        "user:admin1",
        "user:admin1",
        "user:district1",
        "user:duty1",
        "user:lgo1",
    ]
    assert {status for _, _, status in sent} == {"sent"}
    # At least once: an SMS sent just before the kill may be sent again, never lost.
    assert {request.json()["client_reference"] for request in carrier.received} == {row for row, _, _ in sent}
