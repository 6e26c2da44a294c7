"""The process's Prometheus metrics, defined in one place so every name and label set is written once.

Served as text on `METRICS_PORT` (off when unset) by `serve_metrics`. What an operator watches here:
workers that are down (`minorprot_worker_up == 0`), their restarts and failures, messages retried or
dead-lettered, offset commits that failed, the age of the oldest unpublished outbox row, periodic work
that failed for one town, and reporters' receipts that notify has not taken.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, start_http_server

log = logging.getLogger(__name__)

WORKER_UP = Gauge("minorprot_worker_up", "1 while the worker runs without failing, 0 while it fails", ["worker"])
WORKER_DOWN_SECONDS = Gauge(
    "minorprot_worker_down_seconds", "How long the worker has been failing (0 when it is well)", ["worker"]
)
WORKER_RESTARTS = Counter("minorprot_worker_restarts_total", "Times the supervisor restarted the worker", ["worker"])
WORKER_FAILURES = Counter(
    "minorprot_worker_failures_total", "Failures reported by or raised from the worker", ["worker"]
)

CONSUMED = Counter(
    "minorprot_consumer_messages_total",
    "Messages handled by a consumer group, by outcome (applied, duplicate, skipped, dead_lettered)",
    ["group", "topic", "outcome"],
)
CONSUMER_RETRIES = Counter(
    "minorprot_consumer_retries_total", "Messages put back to be tried again after a transient failure", ["group"]
)
COMMIT_FAILURES = Counter("minorprot_consumer_commit_failures_total", "Offset commits that failed", ["group"])

OUTBOX_PUBLISHED = Counter("minorprot_outbox_published_total", "Outbox rows acknowledged by Kafka", ["service"])
OUTBOX_FAILURES = Counter("minorprot_outbox_publish_failures_total", "Outbox rows Kafka refused", ["service"])
OUTBOX_OLDEST_PENDING = Gauge(
    "minorprot_outbox_oldest_unpublished_seconds", "Age of the oldest outbox row not yet published", ["service"]
)
OUTBOX_PENDING = Gauge("minorprot_outbox_unpublished_rows", "Outbox rows not yet published", ["service"])
HOUSEKEEPING_PURGED = Counter(
    "minorprot_housekeeping_purged_rows_total", "Published outbox rows and old inbox rows deleted", ["table"]
)
OUTBOX_OLDEST_PUBLISHED = Gauge(
    "minorprot_outbox_oldest_published_seconds",
    "Age of the oldest published outbox row still kept (a plaintext copy of its event); after each housekeeping "
    "round at most the retention",
    ["service"],
)

# Reporters' receipt numbers waiting in reporting to be handed to notify (issue 12).
RECEIPTS_PENDING = Gauge("minorprot_receipts_pending", "Reporters' receipts not yet taken by notify")
RECEIPTS_OLDEST_PENDING = Gauge(
    "minorprot_receipts_oldest_pending_seconds", "Age of the oldest reporter's receipt not yet taken by notify"
)
RECEIPT_RETRIES = Counter("minorprot_receipt_retries_total", "Reporters' receipts notify did not take, tried again")
RECEIPTS_GIVEN_UP = Counter(
    "minorprot_receipts_given_up_total", "Reporters' receipts given up (refused for good, or a day old)"
)

TENANT_ROUND_FAILURES = Counter(
    "minorprot_periodic_tenant_failures_total",
    "Rounds of periodic work that failed for one town (the others went on)",
    ["worker", "tenant"],
)


def serve_metrics(port: int) -> None:
    """Serve /metrics on `port` in a daemon thread (0: metrics are not served)."""
    if not port:
        return
    try:
        start_http_server(port)
    except OSError:
        # Metrics are for watching the service, not for serving it: a taken port must not stop it.
        log.exception("metrics cannot be served on port %d; the service runs without them", port)
        return
    log.info("metrics on port %d", port)
