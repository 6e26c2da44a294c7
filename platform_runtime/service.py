"""Running a service process: the pieces every `services/<name>/__main__.py` wires the same way.

`serve` builds telemetry, the relay, the consumers and the gRPC server around a service's own servicers,
and stops them in order on SIGTERM. `migrate` applies the service's Alembic migrations and grants.
Nothing here runs at import time.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import grpc
from confluent_kafka import Producer

from platform_runtime import housekeeping
from platform_runtime.auth import Keyring, TokenVerifier
from platform_runtime.consumer import Handler, IdempotentConsumer, make_consumer
from platform_runtime.db import Database, make_engine
from platform_runtime.grpc_server import GrpcServer, build_server
from platform_runtime.metrics import serve_metrics
from platform_runtime.migrations import upgrade
from platform_runtime.outbox import OutboxRelay, make_producer
from platform_runtime.settings import CommonSettings, EnvReader
from platform_runtime.supervisor import Worker, periodic
from platform_runtime.telemetry import instrument_engine, setup_logging, setup_tracing, shutdown_tracing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerSpec:
    group_id: str
    topics: list[str]
    handlers: dict[str, Handler]


@dataclass
class ServiceDefinition:
    """What a service contributes; the runtime does the rest."""

    settings: CommonSettings
    database: Database
    register: Callable[[grpc.Server], list[str]]
    public_methods: frozenset[str] = frozenset()
    consumers: list[ConsumerSpec] = field(default_factory=list)
    # The service's own periodic work (deadline checks, reminders); supervised like the relay and consumers.
    workers: list[Worker] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)


def start_observability(settings: CommonSettings) -> None:
    """Logging, tracing and metrics must exist before the gRPC server and engines are built (they are patched)."""
    setup_logging(settings.log_level, settings.service_name)
    setup_tracing(settings.service_name)
    serve_metrics(settings.metrics_port)


def build(definition: ServiceDefinition) -> GrpcServer:
    settings = definition.settings
    database = definition.database
    name = settings.service_name
    instrument_engine(database.engine)
    relay_engine = (
        database.engine
        if settings.outbox_database_url == settings.database_url
        else make_engine(settings.outbox_database_url, pool_size=2)
    )

    def relay_producer() -> Producer:
        return make_producer(settings.kafka, f"{name}-relay", retry_until_acknowledged=True)

    relay = OutboxRelay(
        relay_engine,
        database.outbox,
        relay_producer(),
        service=name,
        topic_prefix=settings.topic_prefix,
        renew_producer=relay_producer,
    )
    dead_letters = make_producer(settings.kafka, f"{name}-dlt")
    workers = [Worker(f"{name}-outbox-relay", relay.run)]
    for spec in definition.consumers:
        group_id = settings.consumer_group_prefix + spec.group_id
        consumer = IdempotentConsumer(
            group_id=group_id,
            database=database,
            new_consumer=partial(make_consumer, settings.kafka.client_config(), group_id),
            dead_letters=dead_letters,
            handlers=spec.handlers,
            topics=[settings.topic_prefix + topic for topic in spec.topics],
        )
        workers.append(Worker(f"{name}-consumer-{spec.group_id}", consumer.run))
    workers.append(
        periodic(
            f"{name}-housekeeping",
            settings.housekeeping_interval_seconds,
            partial(
                housekeeping.purge,
                relay_engine,
                database.outbox,
                database.inbox,
                outbox_seconds=settings.outbox_retention_seconds,
                inbox_days=settings.inbox_retention_days,
                service=name,
            ),
        )
    )
    workers.extend(definition.workers)
    server = build_server(
        port=settings.grpc_port,
        verifier=TokenVerifier(Keyring(settings.auth_public_keys), name),
        register=definition.register,
        public_methods=definition.public_methods,
        tls=settings.grpc_tls,
    )
    server.drain_seconds = settings.shutdown_drain_seconds
    server.shutdown_seconds = settings.shutdown_seconds
    server.worker_down_seconds = settings.worker_down_seconds
    server.workers = workers
    server.on_stop = [
        *definition.on_stop,
        lambda: None if dead_letters.flush(2) == 0 else log.warning("dead letters left unflushed"),
        database.dispose,
        relay_engine.dispose,
        shutdown_tracing,
    ]
    return server


def serve(definition: ServiceDefinition) -> None:
    server = build(definition)
    server.serve_until_signalled()


def migrate(service_package: str, *, append_only_tables: tuple[str, ...] = ()) -> None:
    env = EnvReader()
    app_url = env.required("DATABASE_URL")
    migration_url = env.optional("MIGRATION_DATABASE_URL", app_url)
    if app_url.startswith("postgresql") and migration_url == app_url:
        env.problems.append("MIGRATION_DATABASE_URL (the owner role) is required on PostgreSQL")
    relay_url = env.optional("OUTBOX_DATABASE_URL")
    env.done()
    if migration_url.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(os.path.abspath(migration_url.removeprefix("sqlite:///"))), exist_ok=True)
    upgrade(
        service_package,
        migration_url,
        app_url=app_url,
        relay_url=relay_url,
        append_only_tables=append_only_tables,
    )
    log.info("%s migrated", service_package)


@dataclass(frozen=True)
class Command:
    """A service's own command beside `serve` and `migrate` (seeding, onboarding, imports from files)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Any], int]  # (arguments, the service's settings) -> exit status


def command_line(
    package: str,
    load_settings: Callable[[], Any],
    definition: Callable[[Any], ServiceDefinition],
    argv: list[str] | None = None,
    *,
    append_only_tables: tuple[str, ...] = (),
    commands: tuple[Command, ...] = (),
) -> int:
    """`python -m services.<name> serve | migrate | <its own commands>`, the same for every service whose
    settings have a `common` part."""
    parser = argparse.ArgumentParser(prog=f"python -m {package}")
    parsers = parser.add_subparsers(dest="command", required=True)
    parsers.add_parser("serve", help="run the gRPC server, the outbox relay, the consumers and the periodic work")
    parsers.add_parser("migrate", help="apply the database migrations (owner role)")
    for command in commands:
        command.add_arguments(parsers.add_parser(command.name, help=command.help))
    args = parser.parse_args(argv)
    if args.command == "migrate":
        migrate(package, append_only_tables=append_only_tables)
        return 0
    settings = load_settings()
    if args.command == "serve":
        start_observability(settings.common)
        serve(definition(settings))
        return 0
    (chosen,) = (command for command in commands if command.name == args.command)
    return chosen.run(args, settings)
