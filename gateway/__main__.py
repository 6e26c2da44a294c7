"""`python -m gateway serve | migrate | seed-demo --tenant CODE | create-user ... | enrol-second-factor ... | demo-code`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from sqlalchemy import Engine

from gateway import bootstrap, second_factor
from gateway.accounts import NewUser, UserProblems, UserService, demo_users
from gateway.app import create_app
from gateway.settings import SERVICE_NAME, load_settings
from platform_runtime.auth import Role
from platform_runtime.settings import EnvReader, SettingsError, decode_keyring

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


def _accounts(env: EnvReader) -> tuple[UserService, Engine]:
    database_url = env.required("DATABASE_URL")
    keys: dict[str, bytes] = env.parsed("SECOND_FACTOR_KEYS", decode_keyring, {}, required=True)
    env.done()
    service, _, engine = bootstrap.user_service(database_url, keys)
    return service, engine


def save_users(users: list[NewUser], password_variable: str, *, demo: bool = False) -> None:
    """Create or reset users. Demo users of the roles that need a second factor get the demo secret
    (derived from the demo password; only `make up` and the tests seed demo users, never the chart)."""
    env = EnvReader()
    password = env.required(password_variable)
    service, engine = _accounts(env)
    try:
        for new in users:
            user, created = service.save_user(new, password)
            enrolled = demo and second_factor.required_for(user.role)
            if enrolled:
                service.set_second_factor(user.user_id, second_factor.demo_secret(password))
            state = ("created" if created else "updated") + (", demo second factor" if enrolled else "")
            print(f"{user.username} ({user.role.value}, {user.tenant}): {state}")
    finally:
        engine.dispose()


def enrol_second_factor(username: str) -> None:
    """Give a user the authenticator secret in SECOND_FACTOR_SECRET (base32), e.g. one set up with them in
    person; prints the new recovery codes. Users otherwise enrol themselves at their first sign-in."""
    env = EnvReader()
    secret = env.required("SECOND_FACTOR_SECRET")
    service, engine = _accounts(env)
    try:
        user_id = service.user_id_of(username)
        if user_id is None:
            raise UserProblems(f"no user {username}")
        for code in service.set_second_factor(user_id, secret.replace(" ", "").upper()):
            print(code)
    finally:
        engine.dispose()


def demo_code() -> None:
    """The demo accounts' current code, from DEMO_PASSWORD or this machine's data/dev-secrets.json."""
    password = os.environ.get("DEMO_PASSWORD")
    if not password:
        from platform_runtime.local_stack import ROOT, dev_secrets

        secrets_file = Path(os.environ.get("DATA_DIR", ROOT / "data"))
        password = dev_secrets(secrets_file)["DEMO_PASSWORD"]
    print(second_factor.code_at(second_factor.demo_secret(password), time.time()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the portal and REST API (waitress)")
    commands.add_parser("migrate", help="apply the database migrations (owner role)")
    seed = commands.add_parser("seed-demo", help="one demo user per role in a town; password from DEMO_PASSWORD")
    seed.add_argument("--tenant", required=True)
    seed.add_argument("--district-accounts", action="store_true", help="also the district's admin and leading group")
    create = commands.add_parser("create-user", help="add or reset a user; password from NEW_USER_PASSWORD")
    create.add_argument("--username", required=True)
    create.add_argument("--display-name", required=True)
    create.add_argument("--role", required=True, choices=sorted(role.value for role in Role))
    create.add_argument("--tenant", required=True)
    create.add_argument("--agency", default="")
    create.add_argument("--phone", default="")
    create.add_argument("--organisation", default="")
    enrol = commands.add_parser(
        "enrol-second-factor", help="set a user's TOTP secret from SECOND_FACTOR_SECRET; prints recovery codes"
    )
    enrol.add_argument("--username", required=True)
    commands.add_parser("demo-code", help="the demo accounts' current second-factor code (make up)")
    args = parser.parse_args(argv)

    try:
        if args.command == "serve":
            serve()
        elif args.command == "migrate":
            migrate()
        elif args.command == "seed-demo":
            save_users(demo_users(args.tenant, district_accounts=args.district_accounts), "DEMO_PASSWORD", demo=True)
        elif args.command == "enrol-second-factor":
            enrol_second_factor(args.username)
        elif args.command == "demo-code":
            demo_code()
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
