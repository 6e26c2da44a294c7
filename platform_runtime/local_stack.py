"""The whole platform on one machine (the embedded default behind `make up`, and the end-to-end tests).

Every service runs as its own process with its own SQLite file (or PostgreSQL database) under one data
folder, against one Kafka broker. Development secrets are generated on first start into the data folder
(ignored by git) — never committed, never defaulted in code.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from platform_runtime.auth import TokenIssuer, generate_keypair, keys_json, public_pem_of, read_keys

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {"registry": 50051, "reporting": 50052, "referral": 50053, "benefits": 50054, "notify": 50055}
GATEWAY_PORT = 8080
AGENCY_EDGE_PORT = 50063
# Where notify's e-mail and SMS go locally (services/notify/local_outbox.py): files under data/outbox/.
LOCAL_SMTP_PORT = 2525
LOCAL_CARRIER_PORT = 8025
LOCAL_OUTBOX = "local_outbox"
PILOT_TENANT = ("110111008", "良乡镇", "110111")


def dev_secrets(data_dir: Path) -> dict[str, str]:
    """Keys for this machine only, made once and kept in data/ (git-ignored)."""
    path = data_dir / "dev-secrets.json"
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        if "SECOND_FACTOR_KEYS" not in loaded:  # made before the second factor: add its key, keep the rest
            loaded["SECOND_FACTOR_KEYS"] = "dev1:" + base64.b64encode(os.urandom(32)).decode()
            path.write_text(json.dumps(loaded, indent=2))
        if "AUTH_PUBLIC_KEYS" in loaded:
            return loaded
        values = loaded | _token_keys(loaded.pop("AUTH_PRIVATE_KEY", ""))  # made before keys had ids
        values.pop("AUTH_PUBLIC_KEY", None)
    else:
        values = _token_keys("") | {
            "PII_ENCRYPTION_KEYS": "dev1:" + base64.b64encode(os.urandom(32)).decode(),
            "BLIND_INDEX_KEY": base64.b64encode(os.urandom(32)).decode(),
            "FLASK_SECRET_KEY": secrets.token_urlsafe(32),
            # Encrypts the staff's TOTP secrets (gateway only).
            "SECOND_FACTOR_KEYS": "dev1:" + base64.b64encode(os.urandom(32)).decode(),
            "DEMO_PASSWORD": secrets.token_urlsafe(9),
            # The referral service signs the agencies' own systems' credentials with its own key (ADR 0014).
            "AGENCY_TOKEN_PRIVATE_KEY": generate_keypair()[0],
        }
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)
    return values


def _token_keys(gateway_private: str) -> dict[str, str]:
    """The gateway's signing key, reporting's own (it calls the registry as itself) and the keyring of both."""
    gateway = {"gateway-dev1": gateway_private or generate_keypair()[0]}
    reporting = {"reporting-dev1": generate_keypair()[0]}
    public = {kid: public_pem_of(pem) for kid, pem in (gateway | reporting).items()}
    return {
        "AUTH_SIGNING_KEY": keys_json(gateway),
        "WORKLOAD_SIGNING_KEY": keys_json(reporting),
        "AUTH_PUBLIC_KEYS": keys_json(public),
    }


def dev_token_issuer(data_dir: Path, lifetime_seconds: int = 900) -> TokenIssuer:
    """Signs as this machine's gateway does (benchmarks and end-to-end tests calling a service directly)."""
    return TokenIssuer(read_keys(dev_secrets(data_dir)["AUTH_SIGNING_KEY"]), lifetime_seconds)


@dataclass
class StackConfig:
    data_dir: Path
    kafka_bootstrap: str = "127.0.0.1:9092"
    port_offset: int = 0
    # component -> {"DATABASE_URL": ..., "MIGRATION_DATABASE_URL": ..., "OUTBOX_DATABASE_URL": ...}; SQLite if absent
    database_urls: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def grpc_port(self, service: str) -> int:
        return SERVICES[service] + self.port_offset

    def metrics_port(self, service: str) -> int:
        """Prometheus metrics of a service: its gRPC port - 30000 (registry 20051, ...), below the range the
        kernel hands out to outgoing connections, so no client socket ever holds it when the service starts."""
        return self.grpc_port(service) - 30000

    @property
    def gateway_port(self) -> int:
        return GATEWAY_PORT + self.port_offset

    def environment(self, component: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "OTEL_SERVICE"))}
        keys = dev_secrets(self.data_dir)
        env |= {key: value for key, value in keys.items() if key != "DEMO_PASSWORD"}  # only seeding needs it
        if component != "gateway":
            # Only the gateway signs tokens and keeps sessions.
            env.pop("AUTH_SIGNING_KEY", None)
            env.pop("FLASK_SECRET_KEY", None)
            env.pop("SECOND_FACTOR_KEYS", None)
        sqlite = f"sqlite:///{self.data_dir / (component + '.db')}"
        env |= {"DATABASE_URL": sqlite} | dict(self.database_urls.get(component, {}))
        env |= {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "OTEL_SERVICE_NAME": component,
            "PYTHONUNBUFFERED": "1",
            "SHUTDOWN_DRAIN_SECONDS": "1",
        }
        env.setdefault("OTEL_TRACES_EXPORTER", "none")
        for service in SERVICES:
            env[f"{service.upper()}_TARGET"] = f"127.0.0.1:{self.grpc_port(service)}"
        if component != LOCAL_OUTBOX:  # the local mail server and carrier have ports of their own
            env["GRPC_PORT" if component != "gateway" else "HTTP_PORT"] = str(
                self.gateway_port if component == "gateway" else self.grpc_port(component)
            )
        if component in SERVICES:
            env["METRICS_PORT"] = str(self.metrics_port(component))
        if component == "referral":
            # The agency edge (ADR 0014): plaintext on a developer's machine, TLS in the chart.
            env["AGENCY_GRPC_PORT"] = str(AGENCY_EDGE_PORT + self.port_offset)
        else:
            env.pop("AGENCY_TOKEN_PRIVATE_KEY", None)
        if component != "reporting":
            env.pop("WORKLOAD_SIGNING_KEY", None)  # reporting's own identity: only it calls another service
        if component == "notify":
            env |= {
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(LOCAL_SMTP_PORT + self.port_offset),
                "SMS_CARRIER_URL": f"http://127.0.0.1:{LOCAL_CARRIER_PORT + self.port_offset}",
                "SMS_CARRIER_API_KEY": "local",
                "PORTAL_URL": f"http://127.0.0.1:{self.gateway_port}",
            }
        if component == LOCAL_OUTBOX:
            env |= {
                "LOCAL_OUTBOX_DIR": str(self.data_dir / "outbox"),
                "LOCAL_SMTP_PORT": str(LOCAL_SMTP_PORT + self.port_offset),
                "LOCAL_CARRIER_PORT": str(LOCAL_CARRIER_PORT + self.port_offset),
            }
        env |= dict(self.extra_env)
        return env


class Stack:
    """Starts the components as separate processes and stops them (SIGTERM, then SIGKILL)."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def module(self, component: str) -> str:
        if component == LOCAL_OUTBOX:
            return "services.notify.local_outbox"
        return "gateway" if component == "gateway" else f"services.{component}"

    def run_once(self, component: str, *args: str, extra_env: Mapping[str, str] | None = None) -> None:
        subprocess.run(
            [sys.executable, "-m", self.module(component), *args],
            cwd=ROOT,
            env=self.config.environment(component) | dict(extra_env or {}),
            check=True,
        )

    def migrate(self, components: Iterable[str]) -> None:
        for component in components:
            self.run_once(component, "migrate")

    def start(self, components: Iterable[str]) -> None:
        logs = self.config.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for component in components:
            log = (logs / f"{component}.log").open("ab")
            self.processes[component] = subprocess.Popen(
                [sys.executable, "-m", self.module(component), "serve"],
                cwd=ROOT,
                env=self.config.environment(component),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for component, process in self.processes.items():
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{component} exited with {process.returncode}; see {self.log_path(component)}")
                if self._healthy(component):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{component} not healthy after {timeout}s; see {self.log_path(component)}")
                time.sleep(0.2)

    def _healthy(self, component: str) -> bool:
        if component == LOCAL_OUTBOX:
            import socket

            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", LOCAL_SMTP_PORT + self.config.port_offset), timeout=1),
            ):
                return True
            return False
        if component == "gateway":
            import urllib.request

            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.config.gateway_port}/readyz", timeout=1) as r:
                    return bool(r.status == 200)
            except OSError:
                return False
        with grpc.insecure_channel(f"127.0.0.1:{self.config.grpc_port(component)}") as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            except grpc.RpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def log_path(self, component: str) -> Path:
        return self.config.data_dir / "logs" / f"{component}.log"

    def stop(self, timeout: float = 20.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


ALL_COMPONENTS = [*SERVICES, "gateway"]


def up(data_dir: Path) -> int:
    config = StackConfig(data_dir=data_dir)
    stack = Stack(config)
    stack.migrate(ALL_COMPONENTS)
    code, name, district = PILOT_TENANT
    stack.run_once("registry", "onboard-tenant", "--code", code, "--name", name, "--district", district)
    stack.run_once("registry", "seed-demo", "--tenant", code)
    password = dev_secrets(data_dir)["DEMO_PASSWORD"]
    stack.run_once(
        "gateway", "seed-demo", "--tenant", code, "--district-accounts", extra_env={"DEMO_PASSWORD": password}
    )
    stack.start([LOCAL_OUTBOX, *ALL_COMPONENTS])
    try:
        stack.wait_healthy()
        print(f"\nThe portal is at http://127.0.0.1:{config.gateway_port}/")
        print(f"Demo accounts of {name} ({code}), one per role, all with the password {password}:")
        print("  caseworker, town_admin, child_director, teacher, district_officer, police_officer, finance_auditor,")
        print("  and the district's district_admin and leading_group")
        print("  caseworker, town_admin, child_director, district_officer and district_admin also need a code:")
        print("  .venv/bin/python -m gateway demo-code prints the current one")
        print(f"E-mail and SMS sent by notify: {data_dir / 'outbox'} (python -m services.notify.local_outbox list)")
        print(f"Logs: {data_dir / 'logs'}. Ctrl-C stops everything.\n", flush=True)
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        while not stopping.wait(1.0):
            for component, process in stack.processes.items():
                if process.poll() is not None:
                    print(f"{component} stopped unexpectedly; see {stack.log_path(component)}", flush=True)
                    stopping.set()
    finally:
        print("stopping...", flush=True)
        stack.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platform_runtime.local_stack")
    parser.add_argument("command", choices=["up", "env"])
    parser.add_argument("component", nargs="?", choices=ALL_COMPONENTS, help="for env: whose environment")
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    args = parser.parse_args(argv)
    if args.command == "env":
        if not args.component:
            parser.error("env needs a component")
        # Only what make up sets, not the whole inherited environment.
        base = set(os.environ)
        for key, value in StackConfig(data_dir=Path(args.data_dir)).environment(args.component).items():
            if key not in base or os.environ[key] != value:
                print(f"{key}={shlex.quote(value)}")
        return 0
    return up(Path(args.data_dir))


if __name__ == "__main__":
    sys.exit(main())
