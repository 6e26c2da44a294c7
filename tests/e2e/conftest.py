"""The whole platform as separate processes, on real PostgreSQL databases and the real Kafka broker,
exporting traces to an OTLP receiver in the test process."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway import second_factor
from platform_runtime.local_stack import SERVICES, Stack, StackConfig, dev_secrets
from platform_runtime.provision import ProvisionedDatabase
from platform_runtime.settings import KafkaSettings
from tests.support.infra import DISTRICT, OTHER_TENANT, PILOT_TENANT, ROOT, isolated_kafka_env
from tests.support.otlp import TraceReceiver, trace_receiver
from tests.support.second_factor import demo_code
from tests.support.services import migrated_database

PORT_OFFSET = 200  # clear of a `make up` running on the default ports


@dataclass
class RunningStack:
    stack: Stack
    databases: dict[str, ProvisionedDatabase]
    traces: TraceReceiver
    password: str
    other_town_password: str
    tokens: dict[tuple[str, str], tuple[str, float]] = field(
        default_factory=dict
    )  # (user, password) -> (token, good until)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.stack.config.gateway_port}"

    def call(self, method: str, path: str, token: str = "", body: dict[str, Any] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(  # noqa: S310 - loopback only
            self.base_url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
                return reply.status, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def login(self, username: str, password: str) -> str:
        """A token for the user, kept and reused while it is good for another minute, as an API client does: a
        second-factor code is good once, so signing in again for every test waited up to half a minute."""
        kept = self.tokens.get((username, password))
        if kept and kept[1] - time.monotonic() > 60:
            return kept[0]
        # The demo users' second factor comes from their password (seed-demo; enrol-second-factor below).
        code = demo_code(password, f"{self.base_url}/{username}")
        body = {"username": username, "password": password, "code": code}
        status, reply = self.call("POST", "/api/v1/token", body=body)
        assert status == 200, reply
        self.tokens[(username, password)] = (str(reply["access_token"]), time.monotonic() + int(reply["expires_in"]))
        return str(reply["access_token"])


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, kafka: KafkaSettings
) -> Iterator[RunningStack]:
    with running_platform(tmp_path_factory.mktemp("stack"), postgres_url, kafka, PORT_OFFSET) as running:
        yield running


@contextlib.contextmanager
def running_platform(
    data_dir: Path, postgres_url: str, kafka: KafkaSettings, port_offset: int
) -> Iterator[RunningStack]:
    """Every service and the gateway on their own PostgreSQL databases, the pilot town seeded; a test module
    that runs beside the others (another pytest process) passes its own port offset."""
    databases = {service: migrated_database(postgres_url, service) for service in SERVICES}
    with trace_receiver() as (receiver, otlp_port):
        config = StackConfig(
            data_dir=data_dir,
            kafka_bootstrap=kafka.bootstrap_servers,
            port_offset=port_offset,
            database_urls={
                service: {
                    "DATABASE_URL": db.app_url,
                    "MIGRATION_DATABASE_URL": db.owner_url,
                    "OUTBOX_DATABASE_URL": db.relay_url,
                }
                for service, db in databases.items()
            },
            extra_env=isolated_kafka_env(kafka)
            | {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
                "OTEL_EXPORTER_OTLP_INSECURE": "true",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
            },
        )
        stack = Stack(config)
        stack.migrate(["gateway"])  # the services were migrated as their owner roles above
        for code, name in ((PILOT_TENANT, "良乡镇"), (OTHER_TENANT, "周口店地区")):
            stack.run_once("registry", "onboard-tenant", "--code", code, "--name", name, "--district", DISTRICT)
        stack.run_once(
            "gateway",
            "seed-demo",
            "--tenant",
            PILOT_TENANT,
            extra_env={"DEMO_PASSWORD": dev_secrets(data_dir)["DEMO_PASSWORD"]},
        )
        other_password = uuid.uuid4().hex
        subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway",
                "create-user",
                "--username",
                "zhoukoudian_caseworker",
                "--display-name",
                "周口店社工",
                "--role",
                "caseworker",
                "--tenant",
                OTHER_TENANT,
            ],
            cwd=ROOT,
            env=config.environment("gateway") | {"NEW_USER_PASSWORD": other_password},
            check=True,
        )
        stack.run_once(
            "gateway",
            "enrol-second-factor",
            "--username",
            "zhoukoudian_caseworker",
            extra_env={"SECOND_FACTOR_SECRET": second_factor.demo_secret(other_password)},
        )
        stack.start(["registry", "reporting", "referral", "benefits", "notify", "gateway"])
        try:
            stack.wait_healthy(timeout=90)
            yield RunningStack(stack, databases, receiver, dev_secrets(data_dir)["DEMO_PASSWORD"], other_password)
        finally:
            stack.stop()
            if os.environ.get("KEEP_E2E_LOGS"):
                print(f"logs in {data_dir / 'logs'}")
