"""On SIGTERM a service reports NOT_SERVING first, keeps answering while load balancers notice, then stops
inside the pod's grace period."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from platform_runtime.settings import KafkaSettings
from tests.support.infra import ROOT, TOPIC_PREFIX, Secrets

pytestmark = pytest.mark.integration


def health(port: int) -> int | None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            return int(health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1).status)
        except grpc.RpcError:
            return None


def test_sigterm_turns_health_not_serving_then_exits(tmp_path: Path, kafka: KafkaSettings, secrets: Secrets) -> None:
    port = 50951
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "GRPC_PORT": str(port),
        "AUTH_PUBLIC_KEYS": secrets.public_keys_env,
        "PII_ENCRYPTION_KEYS": secrets.pii_keys,
        "BLIND_INDEX_KEY": secrets.blind_index_key,
        "OTEL_TRACES_EXPORTER": "none",
        "SHUTDOWN_DRAIN_SECONDS": "3",
        "KAFKA_CONSUMER_GROUP_PREFIX": f"shutdown-{tmp_path.name}.",
        "KAFKA_TOPIC_PREFIX": TOPIC_PREFIX,
    }
    subprocess.run([sys.executable, "-m", "services.registry", "migrate"], cwd=ROOT, env=env, check=True)
    process = subprocess.Popen([sys.executable, "-m", "services.registry", "serve"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 30
        while health(port) != health_pb2.HealthCheckResponse.SERVING:
            assert process.poll() is None and time.monotonic() < deadline, "registry did not come up"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        seen = set()
        while process.poll() is None and time.monotonic() < deadline + 30:
            seen.add(health(port))
            time.sleep(0.1)
        assert health_pb2.HealthCheckResponse.NOT_SERVING in seen
        assert process.wait(30) == 0
        # Inside the pod's terminationGracePeriodSeconds (30), or Kubernetes would SIGKILL it mid-drain.
        assert time.monotonic() - signalled < 30
    finally:
        if process.poll() is None:
            process.kill()
