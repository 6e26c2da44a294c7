"""How a reader knows the register changed since it last counted (the dashboard's numbers, statistics.py).

Every change to what the register counts writes a change_history row (the ChangeTracker, Scope, BulkScope).
Two markers together:
- `latest_change`: the town's highest change_history id (one index lookup, ix_change_history_latest); it
  shows every replica's committed writes.
- `HistoryCommits`: how many transactions of this process that wrote change_history rows have committed. A
  transaction takes its ids when it writes its rows and may commit after a later id did (the survey's long
  batches): the town's max id then does not move, but this count does, for the writes of this process.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Connection, Engine, event, func, select
from sqlalchemy.orm import Session

from services.registry.adapters.orm import ChangeRecord

_HISTORY_INSERT = "insert into change_history"


def latest_change(session: Session, town: str) -> int:
    """The id of the town's latest change_history row (0 when it has none)."""
    found = session.scalar(select(func.max(ChangeRecord.id)).where(ChangeRecord.tenant_id == town))
    return int(found or 0)


class HistoryCommits:
    """Counts the commits, through this engine, of transactions that inserted change_history rows."""

    def __init__(self, engine: Engine) -> None:
        self._lock = threading.Lock()
        self._count = 0
        event.listen(engine, "after_cursor_execute", self._executed)
        event.listen(engine, "commit", self._committed)
        event.listen(engine, "rollback", self._rolled_back)

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def _executed(self, connection: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip()[: len(_HISTORY_INSERT)].lower() == _HISTORY_INSERT:
            connection.info[self] = True

    def _committed(self, connection: Connection) -> None:
        if connection.info.pop(self, False):
            with self._lock:
                self._count += 1

    def _rolled_back(self, connection: Connection) -> None:
        connection.info.pop(self, None)
