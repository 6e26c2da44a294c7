"""The periodic trigger of the time limits: a worker thread of the service process, like the outbox relay.

Every `interval_seconds` it asks the service to announce missed deadlines (`DeadlineBreached` on
`reporting.report`). A failing round is logged and the next one tries again: nothing is marked announced
unless its event is in the outbox, in the same transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from services.reporting.service_layer.services import ReportingService

log = logging.getLogger(__name__)


def deadline_checker(service: ReportingService, interval_seconds: float) -> Callable[[threading.Event], None]:
    def check_deadlines(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                raised = service.raise_breaches()
                if raised:
                    log.info("announced %d missed deadline(s)", raised)
            except Exception:
                log.exception("deadline check failed; retrying at the next interval")
            stop.wait(interval_seconds)

    return check_deadlines
