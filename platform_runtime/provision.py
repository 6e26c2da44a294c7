"""Creates a service's PostgreSQL database and its three roles (development and tests).

In production the CloudNativePG cluster (or the DBA) does this; here a superuser URL is enough:
`<db>_owner` owns the schema and runs migrations, `<db>_app` is what the service connects as (subject
to RLS), `<db>_relay` bypasses RLS but may only read, mark and purge the outbox and purge the inbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import create_engine, make_url, pool, text


@dataclass(frozen=True)
class ProvisionedDatabase:
    name: str
    owner_url: str
    app_url: str
    relay_url: str


def _url_for(superuser_url: str, user: str, database: str) -> str:
    url = make_url(superuser_url).set(username=user, password=None, database=database)
    return url.render_as_string(hide_password=False)


def provision(superuser_url: str, database: str, *, recreate: bool = False) -> ProvisionedDatabase:
    if not database.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {database!r}")
    owner, app, relay = f"{database}_owner", f"{database}_app", f"{database}_relay"
    engine = create_engine(superuser_url, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool, hide_parameters=True)
    with engine.connect() as connection:
        exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": database}).first()
        if exists and recreate:
            connection.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
            exists = None
        for role, attributes in ((owner, "NOBYPASSRLS"), (app, "NOBYPASSRLS"), (relay, "BYPASSRLS")):
            present = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
            if not present:
                connection.execute(text(f'CREATE ROLE "{role}" LOGIN {attributes}'))
        if not exists:
            connection.execute(
                text(f'CREATE DATABASE "{database}" OWNER "{owner}" ENCODING \'UTF8\' TEMPLATE template0')
            )
    engine.dispose()
    # The owner needs the public schema of its own database (PostgreSQL 15 no longer grants CREATE to all).
    admin_db = create_engine(
        _url_for(superuser_url, make_url(superuser_url).username or "postgres", database),
        isolation_level="AUTOCOMMIT",
        poolclass=pool.NullPool,
    )
    with admin_db.connect() as connection:
        connection.execute(text(f'ALTER SCHEMA public OWNER TO "{owner}"'))
    admin_db.dispose()
    return ProvisionedDatabase(
        name=database,
        owner_url=_url_for(superuser_url, owner, database),
        app_url=_url_for(superuser_url, app, database),
        relay_url=_url_for(superuser_url, relay, database),
    )
