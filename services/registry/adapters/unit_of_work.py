"""The registry's unit of work on SQLAlchemy: the runtime's unit of work, telling the loser of a race what was
changed (the runtime turns the lost race into ConcurrentUpdate)."""

from __future__ import annotations

from platform_runtime.db import UnitOfWork


class SqlRegistryUnitOfWork(UnitOfWork):
    lost_race_message = (
        "the child's record or case file was changed by someone else at the same time: reload it and try again"
    )
