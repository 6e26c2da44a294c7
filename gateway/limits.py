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


LOGIN_FAILURES = Limit(attempts=5, window_seconds=15 * 60)  # one user from one address
# One address across usernames (password spraying): generous, as a town office shares one address.
ADDRESS_LOGIN_FAILURES = Limit(attempts=30, window_seconds=15 * 60)
# One account from anywhere: after `attempts` failures in a row it is locked, for a time that doubles with
# each further failure (ACCOUNT_LOCK_SECONDS, then twice that, ... up to ACCOUNT_LOCK_MAX_SECONDS).
ACCOUNT_FAILURES = Limit(attempts=5, window_seconds=24 * 3600)
ACCOUNT_LOCK_SECONDS = 60
ACCOUNT_LOCK_MAX_SECONDS = 3600
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

    def recent(self, key: str, limit: Limit) -> tuple[int, float]:
        """How many attempts under `key` fall in the window, and when the latest was (0.0 if none)."""
        since = self._clock() - limit.window_seconds
        with self._sessions() as session:
            count, latest = session.execute(
                select(func.count(), func.max(AttemptRecord.at)).where(
                    AttemptRecord.key_hash == _hash(key), AttemptRecord.at > since
                )
            ).one()
        return int(count or 0), float(latest or 0.0)

    def locked_until(self, key: str, limit: Limit, first_lock: float, longest_lock: float) -> float:
        """Back-off lock: after `limit.attempts` failures, locked from the latest for first_lock * 2**extra."""
        count, latest = self.recent(key, limit)
        if count < limit.attempts:
            return 0.0
        lock: float = first_lock * 2.0 ** (count - limit.attempts)
        return latest + min(lock, longest_lock)

    def record(self, key: str, limit: Limit) -> None:
        now = self._clock()
        with self._sessions() as session:
            # Forget what lies outside every window, so the table stays small without a cleanup job.
            longest = max(
                LOGIN_FAILURES.window_seconds,
                ADDRESS_LOGIN_FAILURES.window_seconds,
                ACCOUNT_FAILURES.window_seconds,
                PUBLIC_REPORTS.window_seconds,
                limit.window_seconds,
            )
            session.execute(delete(AttemptRecord).where(AttemptRecord.at < now - longest))
            session.add(AttemptRecord(key_hash=_hash(key), at=now))
            session.commit()

    def clear(self, key: str) -> None:
        with self._sessions() as session:
            session.execute(delete(AttemptRecord).where(AttemptRecord.key_hash == _hash(key)))
            session.commit()
