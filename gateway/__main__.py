"""`python -m gateway serve | migrate | seed-demo --tenant CODE | create-user ...`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from dataclasses import replace
from types import FrameType

from gateway import bootstrap
from gateway.accounts import DEMO_USERS, NewUser, UserProblems
from gateway.app import create_app
from gateway.settings import SERVICE_NAME, load_settings
from platform_runtime.auth import Role
from platform_runtime.settings import EnvReader, SettingsError

log = logging.getLogger("gateway")
WSGI_THREADS = 8


def serve() -> None:
    import waitress  # type: ignore[import-untyped]
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    from gateway.tracing import path_only
    from platform_runtime.telemetry import instrument_engine, setup_logging, setup_tracing, shutdown_tracing

    settings = load_settings()
    setup_logging(settings.log_level, SERVICE_NAME)
    setup_tracing(SERVICE_NAME)  # before the gRPC channels exist, so their calls are traced
    components = bootstrap.build(settings)
    instrument_engine(components.engine)
    app = create_app(settings, components)
    FlaskInstrumentor().instrument_app(app, response_hook=path_only)  # type: ignore[no-untyped-call]
    server = waitress.create_server(app, listen=f"*:{settings.http_port}", threads=WSGI_THREADS, ident=SERVICE_NAME)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: draining", signum)
        raise SystemExit(0)  # waitress's loop catches it and lets in-flight requests finish

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("serving on port %d", settings.http_port)
    try:
        server.run()
    finally:
        server.close()
        components.close()
        shutdown_tracing()


def migrate() -> None:
    from platform_runtime import service as runtime

    runtime.migrate("gateway")


def save_users(users: list[NewUser], password_variable: str) -> None:
    env = EnvReader()
    database_url = env.required("DATABASE_URL")
    password = env.required(password_variable)
    env.done()
    service, _, engine = bootstrap.user_service(database_url)
    try:
        for new in users:
            user, created = service.save_user(new, password)
            print(f"{user.username} ({user.role.value}, {user.tenant}): {'created' if created else 'updated'}")
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the portal and REST API (waitress)")
    commands.add_parser("migrate", help="apply the database migrations (owner role)")
    seed = commands.add_parser("seed-demo", help="one demo user per role in a town; password from DEMO_PASSWORD")
    seed.add_argument("--tenant", required=True)
    create = commands.add_parser("create-user", help="add or reset a user; password from NEW_USER_PASSWORD")
    create.add_argument("--username", required=True)
    create.add_argument("--display-name", required=True)
    create.add_argument("--role", required=True, choices=sorted(role.value for role in Role))
    create.add_argument("--tenant", required=True)
    create.add_argument("--agency", default="")
    create.add_argument("--phone", default="")
    create.add_argument("--organisation", default="")
    args = parser.parse_args(argv)

    try:
        if args.command == "serve":
            serve()
        elif args.command == "migrate":
            migrate()
        elif args.command == "seed-demo":
            save_users([replace(demo, tenant=args.tenant) for demo in DEMO_USERS], "DEMO_PASSWORD")
        else:
            new = NewUser(
                args.username,
                args.display_name,
                Role(args.role),
                args.tenant,
                args.agency,
                args.phone,
                args.organisation,
            )
            save_users([new], "NEW_USER_PASSWORD")
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    except UserProblems as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
