"""The fault suite's stack: every service its own process on real PostgreSQL and the real Kafka broker, and the
helpers that break and mend the shared broker, the shared PostgreSQL and single services.

The broker and PostgreSQL are the machine's shared ones (scripts/kafka.sh, scripts/postgres.sh): whatever
happens, a fault that stopped one starts it again before the test goes on or fails (`started_again`), and the
session ends by making sure both run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from platform_runtime.local_stack import SERVICES, Stack, StackConfig, dev_secrets
from platform_runtime.provision import ProvisionedDatabase
from platform_runtime.settings import KafkaSettings
from tests.faults.outside import CONTACTS, Outside, outside_servers, tell_notify_where
from tests.support.infra import DISTRICT, PILOT_TENANT, ROOT, TOPIC_PREFIX, isolated_kafka_env
from tests.support.second_factor import demo_code
from tests.support.services import migrated_database
from tests.support.stack import database_urls

# The names isolated_kafka_env and the test run's TOPIC_PREFIX give topics: t + 10 hex digits + '.'
TEST_TOPIC = re.compile(r"^t[0-9a-f]{10}\.")

PORT_OFFSET = 400  # clear of `make up` (0), the browser test (100), the e2e stack (200) and the bench (300)
COMPONENTS = [*SERVICES, "gateway"]
# The workers' clocks, quickened so that their work falls due during the run: a crisis alert unacknowledged for
# 10 s goes up a step; overdue referrals are looked for every second; benefits' eligibility round every second;
# a worker failing for 2 s turns its service NOT_SERVING (so health shows a fault while it lasts).
QUICK_CLOCKS = {
    "CRISIS_ACK_SECONDS": "10",
    "ESCALATION_CHECK_SECONDS": "1",
    "ELIGIBILITY_CHECK_INTERVAL_SECONDS": "1",
    "WORKER_DOWN_SECONDS": "2",
}
SUMMARIES: list[str] = []  # printed again at the end of the run, so `pytest -q` shows the counts too


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SUMMARIES:
        terminalreporter.section("fault suite")
        for line in SUMMARIES:
            terminalreporter.write_line(line)


def script(name: str, command: str, timeout: float = 180) -> None:
    """scripts/kafka.sh or scripts/postgres.sh; they wait until the server answers (start) or is gone (stop)."""
    completed = subprocess.run(
        [f"scripts/{name}.sh", command], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"scripts/{name}.sh {command} failed ({completed.returncode}): {completed.stderr[-2000:]}")


def shared_infrastructure_is_ours() -> str:
    """Why this run may not stop the broker or PostgreSQL ("" when it may)."""
    if os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS"):
        return "TEST_KAFKA_BOOTSTRAP_SERVERS names a broker scripts/kafka.sh does not run"
    if os.environ.get("TEST_POSTGRES_URL"):
        return "TEST_POSTGRES_URL names a PostgreSQL scripts/postgres.sh does not run"
    return ""


@contextmanager
def started_again(name: str) -> Iterator[None]:
    """Whatever happens inside, `scripts/<name>.sh start` runs on the way out (a no-op if it runs)."""
    try:
        yield
    finally:
        script(name, "start")


@dataclass
class FaultStack:
    stack: Stack
    databases: dict[str, ProvisionedDatabase]
    password: str
    kafka: KafkaSettings
    topic_prefix: str
    outside: Outside
    events: list[str] = field(default_factory=list)  # what was done to the stack, with times, for the summary

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.stack.config.gateway_port}"

    def call(
        self,
        method: str,
        path: str,
        token: str = "",
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, Any]:
        """(status, JSON reply); raises OSError when no HTTP answer came (refused, reset, timed out)."""
        request = urllib.request.Request(  # noqa: S310 - loopback only
            self.base_url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {token}"} if token else {})
            | (headers or {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
                return reply.status, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw or b"null")
            except ValueError:
                return error.code, raw.decode("utf-8", "replace")[:500]

    def login(self, username: str = "caseworker") -> str:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, reply = self.call(
                    "POST",
                    "/api/v1/token",
                    body={
                        "username": username,
                        "password": self.password,
                        "code": demo_code(self.password, f"{self.base_url}/{username}"),
                    },
                )
                if status == 200:
                    return str(reply["access_token"])
            except OSError:
                status, reply = 0, "no answer"
            if time.monotonic() > deadline:
                raise AssertionError(f"cannot log in as {username}: {status} {reply}")
            time.sleep(1)

    def note(self, what: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {what}")
        print(f"faults: {self.events[-1]}", flush=True)

    def env(self, component: str = "registry") -> dict[str, str]:
        return self.stack.config.environment(component)

    # -- faults ------------------------------------------------------------------------------------------------

    def wait_healthy(self, timeout: float = 120) -> None:
        self.stack.wait_healthy(timeout=timeout)

    def kill_and_restart(self, component: str, down_for: float = 1.0) -> None:
        """SIGKILL one component (no drain, no flush), then start it again through the Stack and wait for it."""
        process = self.stack.processes[component]
        process.kill()
        process.wait(30)
        self.note(f"SIGKILL {component} (pid {process.pid}, exit {process.returncode})")
        time.sleep(down_for)
        self.stack.start([component])
        self.wait_healthy()
        self.note(f"{component} restarted and healthy")

    def restart(self, server: str, down_for: float) -> None:
        """Stop the shared broker (`kafka`) or PostgreSQL (`postgres`), keep it down, start it, wait for the stack."""
        with started_again(server):
            script(server, "stop")
            self.note(f"{server} stopped")
            time.sleep(down_for)
        self.note(f"{server} started")
        self.wait_healthy()


def delete_finished_test_topics(kafka: KafkaSettings) -> None:
    """Drop the topics earlier test stacks left on the broker (every stack makes its own): a broker restart loads
    every partition it holds before it serves any, so thousands of stale ones would be timed as the platform's
    recovery. The suite restarts the shared broker anyway, so nothing else may be using it meanwhile."""
    admin = AdminClient(dict(kafka.client_config()))
    stale = [
        name
        for name in admin.list_topics(timeout=30).topics
        if TEST_TOPIC.match(name) and not name.startswith(TOPIC_PREFIX)
    ]
    for future in admin.delete_topics(stale, operation_timeout=120).values() if stale else []:
        try:
            future.result(timeout=180)
        except Exception as error:  # already gone, or deleted by another run: either way not ours to keep
            print(f"faults: could not delete a stale test topic: {error}")


@pytest.fixture(scope="session")
def fault_stack(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, kafka: KafkaSettings
) -> Iterator[FaultStack]:
    """One stack for the whole fault suite (the dead-letter test and the fault run share it), with notify's
    channels pointed at local SMTP, carrier and webhook servers (tests/faults/outside.py)."""
    with outside_servers() as outside:
        yield from _fault_stack(tmp_path_factory.mktemp("faults"), postgres_url, kafka, outside)


def _fault_stack(data_dir: Path, postgres_url: str, kafka: KafkaSettings, outside: Outside) -> Iterator[FaultStack]:
    databases = {service: migrated_database(postgres_url, service) for service in SERVICES}
    delete_finished_test_topics(kafka)
    kafka_env = isolated_kafka_env(kafka)
    config = StackConfig(
        data_dir=data_dir,
        kafka_bootstrap=kafka.bootstrap_servers,
        port_offset=PORT_OFFSET,
        database_urls=database_urls(databases),
        extra_env=kafka_env | QUICK_CLOCKS | outside.env(),
    )
    stack = Stack(config)
    stack.migrate(["gateway"])  # the services were migrated as their owner roles above
    stack.run_once("registry", "onboard-tenant", "--code", PILOT_TENANT, "--name", "良乡镇", "--district", DISTRICT)
    password = dev_secrets(data_dir)["DEMO_PASSWORD"]
    stack.run_once("gateway", "seed-demo", "--tenant", PILOT_TENANT, extra_env={"DEMO_PASSWORD": password})
    stack.start(COMPONENTS)
    try:
        stack.wait_healthy(timeout=120)
        fault_stack = FaultStack(stack, databases, password, kafka, kafka_env["KAFKA_TOPIC_PREFIX"], outside)
        people = {name: fault_stack.call("GET", "/api/v1/me", fault_stack.login(name))[1] for name in CONTACTS}
        tell_notify_where(outside, databases["notify"].owner_url, people)
        yield fault_stack
    finally:
        stack.stop()
        print(f"fault suite logs in {data_dir / 'logs'}")
        if not shared_infrastructure_is_ours():
            # Never leave the machine's broker or PostgreSQL stopped for the next tests.
            script("kafka", "start")
            script("postgres", "start")


def new_key() -> str:
    return uuid.uuid4().hex
