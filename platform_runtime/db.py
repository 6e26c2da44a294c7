"""Database runtime: engines, the unit of work, and the tenant guard on every transaction.

SQLite (a file under data/) is the embedded default and PostgreSQL the production store; one URL chooses.
On PostgreSQL every tenant table has row-level security keyed on `app.tenant_id`; the unit of work sets it
with `set_config(..., true)` at the start of every transaction from a session event, so no call site can
forget it and it never leaks to the next transaction on a pooled connection.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, MetaData, Table, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from platform_runtime.events import PendingEvent
from platform_runtime.messaging import inbox_table, outbox_table, write_outbox_rows
from platform_runtime.unit_of_work import AbstractUnitOfWork

# PostgreSQL ending a transaction because another one won: deadlock detected, serialization failure.
LOST_RACE_SQLSTATES = frozenset({"40P01", "40001"})

TENANT_KEY = "tenant"
DISTRICT_KEY = "district"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def make_engine(url: str, *, echo: bool = False, pool_size: int = 5) -> Engine:
    # hide_parameters: an error's text carries no bound values (names, addresses, phones) into logs, dead-letter
    # headers or span events.
    if url.startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, hide_parameters=True, connect_args={"check_same_thread": False, "timeout": 30}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets the relay and consumers read while a request writes; busy_timeout waits instead of failing.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, echo=echo, hide_parameters=True, pool_size=pool_size, max_overflow=10, pool_pre_ping=True)


_TENANT_GUARD = "SELECT set_config('app.tenant_id', %(tenant)s, true), set_config('app.district', %(district)s, true)"


def _set_tenant_guard(session: Session, _transaction: SessionTransaction, connection: Connection) -> None:
    if connection.dialect.name != "postgresql":
        return
    # Transaction-local (true): the setting dies with the transaction, so a pooled connection never keeps it.
    values = {"tenant": session.info.get(TENANT_KEY, ""), "district": session.info.get(DISTRICT_KEY, "")}
    raw: Any = connection.connection.driver_connection  # psycopg 3, the pinned driver
    # psycopg's BEGIN and the setting in one round trip (pipelined) instead of two, before any statement.
    # A failure here reaches the caller as any statement's does (SQLAlchemy wraps it as it begins the session's
    # connection; tests/integration/test_tenant_guard_round_trip.py).
    with raw.pipeline():
        raw.execute(_TENANT_GUARD, values)


event.listen(Session, "after_begin", _set_tenant_guard)


class UnitOfWork(AbstractUnitOfWork):
    """One business transaction for one tenant: the state change and its events commit together or not at all.

    The real unit of work: a SQLAlchemy session whose events become outbox rows in the same transaction."""

    def __init__(self, database: Database, tenant: str, *, district: str = "") -> None:
        super().__init__(tenant, district=district)
        self._database = database
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("unit of work used outside its 'with' block")
        return self._session

    def _begin(self) -> None:
        self._session = self._database.session_factory(info={TENANT_KEY: self.tenant, DISTRICT_KEY: self.district})

    def _end(self) -> None:
        self.session.close()
        self._session = None

    def _commit(self, events: list[PendingEvent]) -> None:
        if events:
            write_outbox_rows(self.session, self._database.outbox, events)
        self.session.commit()

    def _rollback(self) -> None:
        self.session.rollback()

    def _is_lost_race(self, error: BaseException) -> bool:
        # An UPDATE whose version column no longer matched (version_id_col), or PostgreSQL ending this
        # transaction in favour of another (a deadlock, a serialization failure): either way another transaction
        # won, nothing of this one was kept, and reading again and retrying is the answer.
        if isinstance(error, StaleDataError):
            return True
        return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) in LOST_RACE_SQLSTATES


@dataclass
class Database:
    """One service's database: its engine, sessions and the outbox/inbox tables of its metadata."""

    engine: Engine
    metadata: MetaData
    session_factory: sessionmaker[Session] = field(init=False)
    outbox: Table = field(init=False)
    inbox: Table = field(init=False)

    def __post_init__(self) -> None:
        self.session_factory = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.outbox = self.metadata.tables["outbox"]
        self.inbox = self.metadata.tables["inbox"]

    @classmethod
    def connect(cls, url: str, metadata: MetaData) -> Database:
        return cls(make_engine(url), metadata)

    def unit_of_work(self, tenant: str, *, district: str = "") -> UnitOfWork:
        return UnitOfWork(self, tenant, district=district)

    def platform_session(self) -> Session:
        """A session for platform tables that hold no tenant data (tenant directory, receipt index).

        No tenant is set, so on PostgreSQL every tenant table reads as empty through it.
        """
        return self.session_factory(info={TENANT_KEY: "", DISTRICT_KEY: ""})

    def dispose(self) -> None:
        self.engine.dispose()


def add_messaging_tables(metadata: MetaData) -> None:
    """Every service's metadata carries the outbox and inbox (and so do its migrations)."""
    outbox_table(metadata)
    inbox_table(metadata)
