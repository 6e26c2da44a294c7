"""Throttling by counting recent attempts per key (failed logins per user+address, public reports per address).

Counted in the gateway's database rather than in memory, so the limit holds across replicas and restarts.
Keys are stored hashed: people sometimes type their password into the username field.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.models import AttemptRecord


@dataclass(frozen=True)
class Limit:
    attempts: int
    window_seconds: int


LOGIN_FAILURES = Limit(attempts=5, window_seconds=15 * 60)
PUBLIC_REPORTS = Limit(attempts=10, window_seconds=60 * 60)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class AttemptLimiter:
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], float] = time.time) -> None:
        self._sessions = sessions
        self._clock = clock

    def exceeded(self, key: str, limit: Limit) -> bool:
        since = self._clock() - limit.window_seconds
        with self._sessions() as session:
            count = session.scalar(
                select(func.count())
                .select_from(AttemptRecord)
                .where(AttemptRecord.key_hash == _hash(key), AttemptRecord.at > since)
            )
        return (count or 0) >= limit.attempts

    def record(self, key: str, limit: Limit) -> None:
        now = self._clock()
        with self._sessions() as session:
            # Forget what lies outside every window, so the table stays small without a cleanup job.
            longest = max(LOGIN_FAILURES.window_seconds, PUBLIC_REPORTS.window_seconds, limit.window_seconds)
            session.execute(delete(AttemptRecord).where(AttemptRecord.at < now - longest))
            session.add(AttemptRecord(key_hash=_hash(key), at=now))
            session.commit()

    def clear(self, key: str) -> None:
        with self._sessions() as session:
            session.execute(delete(AttemptRecord).where(AttemptRecord.key_hash == _hash(key)))
            session.commit()
