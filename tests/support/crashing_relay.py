"""A relay process that dies right after Kafka acknowledged the batch and before marking it published.

`python -m tests.support.crashing_relay RELAY_DATABASE_URL BOOTSTRAP_SERVERS TOPIC_PREFIX`; exits with status 9.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from platform_runtime.db import make_engine
from platform_runtime.outbox import OutboxRelay, make_producer
from platform_runtime.settings import KafkaSettings
from services.reporting.adapters.orm import metadata


class CrashBeforeMark(OutboxRelay):
    def _mark_published(self, connection: Any, row_ids: list[int]) -> None:
        os._exit(9)  # like SIGKILL: no rollback handlers, no flush, nothing marked


def main() -> None:
    relay_url, servers, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
    relay = CrashBeforeMark(
        make_engine(relay_url),
        metadata.tables["outbox"],
        make_producer(KafkaSettings(servers), "crashing-relay"),
        topic_prefix=prefix,
    )
    relay.publish_pending()
    sys.exit("the relay should have died before marking")


if __name__ == "__main__":
    main()
