"""Alembic, the same way for every service: each service keeps its own `migrations/` folder.

`upgrade()` runs as the owner role, then (on PostgreSQL) grants the service's app role what it needs and no
more, and the relay role read/mark access to the outbox. `enable_tenant_rls()` is called by migrations for
every tenant table: RLS enabled and FORCED (the owner is subject to it too), one policy on `app.tenant_id`.
"""

from __future__ import annotations

from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, make_url, pool, text

TENANT_POLICY = """
CREATE POLICY tenant_isolation ON {table}
  USING (
    tenant_id = current_setting('app.tenant_id', true)
    OR (coalesce(current_setting('app.district', true), '') <> ''
        AND left(tenant_id, 6) = current_setting('app.district', true))
  )
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true))
"""


def enable_tenant_rls(table: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite (embedded default) has no RLS: the application scope is the only guard there
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(TENANT_POLICY.format(table=table))


def alembic_config(service_package: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", f"{service_package}:migrations")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(
    service_package: str,
    migration_url: str,
    *,
    app_url: str = "",
    relay_url: str = "",
    append_only_tables: tuple[str, ...] = (),
) -> None:
    command.upgrade(alembic_config(service_package, migration_url), "head")
    if not migration_url.startswith("postgresql"):
        return
    engine = create_engine(migration_url, poolclass=pool.NullPool, hide_parameters=True)
    with engine.begin() as connection:
        app_role = make_url(app_url).username if app_url else None
        if app_role:
            connection.execute(text(f'GRANT USAGE ON SCHEMA public TO "{app_role}"'))
            connection.execute(
                text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{app_role}"')
            )
            connection.execute(text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{app_role}"'))
            connection.execute(text(f'REVOKE ALL ON alembic_version FROM "{app_role}"'))
            for table in append_only_tables:
                connection.execute(text(f'REVOKE UPDATE, DELETE ON {table} FROM "{app_role}"'))
        relay_role = make_url(relay_url).username if relay_url else None
        if relay_role and relay_role != app_role:
            connection.execute(text(f'GRANT USAGE ON SCHEMA public TO "{relay_role}"'))
            # The relay marks rows published; its housekeeping deletes published rows and old inbox rows.
            connection.execute(text(f'GRANT SELECT, UPDATE, DELETE ON outbox TO "{relay_role}"'))
            connection.execute(text(f'GRANT SELECT, DELETE ON inbox TO "{relay_role}"'))
    engine.dispose()


def run_env(metadata: MetaData) -> None:
    """The body of every service's `migrations/env.py` (online mode only: migrations run against a database)."""
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not set")
    engine = create_engine(url, poolclass=pool.NullPool, hide_parameters=True)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Never queue behind long transactions in production: fail and retry the rollout instead.
            connection.execute(text("SET lock_timeout = '10s'"))
            connection.execute(text("SET statement_timeout = '300s'"))
            connection.commit()  # end the implicit transaction so Alembic's own one commits the migration
        context.configure(
            connection=connection,
            target_metadata=metadata,
            compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
