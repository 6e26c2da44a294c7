"""The supervised worker handing reporters' receipts to notify (`service_layer.receipt_sending`).

Its own work (the database) failing makes it raise, and the supervisor restarts it and counts it. Notify not
taking receipts is not the worker failing, and must not turn reporting NOT_SERVING (reports must still be
accepted while notify is away): it is logged, and seen in `minorprot_receipts_pending`,
`minorprot_receipts_oldest_pending_seconds`, `minorprot_receipt_retries_total` and `..._given_up_total`.
"""

from __future__ import annotations

from platform_runtime.supervisor import Worker, WorkerContext
from services.reporting.service_layer.receipt_sending import ReceiptSender

NAME = "reporting-receipts"


def receipt_sender(sender: ReceiptSender, poll_seconds: float) -> Worker:
    def run(context: WorkerContext) -> None:
        while not context.stop.is_set():
            done = sender.send_due()
            context.healthy()
            if not done.tried:
                context.wait(poll_seconds)

    return Worker(NAME, run)
