"""One supervised worker per outbound channel: a dead SMTP server holds up e-mail and nothing else.

A channel that refuses messages is not a broken worker (its deliveries are retried with back-off and, in
the end, listed for operators); a worker that cannot reach its database raises and the supervisor restarts it.
"""

from __future__ import annotations

from platform_runtime.supervisor import Worker, WorkerContext
from services.notify.adapters.channels import HttpSmsCarrier, SmtpMailer, WebhookSender
from services.notify.domain.channels import Channel, Sender
from services.notify.service_layer.crises import CrisisService
from services.notify.service_layer.deliveries import DeliveryService
from services.notify.settings import NotifySettings


def senders(settings: NotifySettings) -> dict[Channel, Sender]:
    timeout = settings.channel_timeout_seconds
    found: dict[Channel, Sender] = {}
    if settings.smtp_host:
        found[Channel.EMAIL] = SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_sender,
            timeout=timeout,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    if settings.sms_carrier_url:
        found[Channel.SMS] = HttpSmsCarrier(settings.sms_carrier_url, settings.sms_carrier_api_key, timeout=timeout)
    if settings.webhook_signing_key:
        found[Channel.WEBHOOK] = WebhookSender(settings.webhook_signing_key, timeout=timeout)
    return found


def delivery_worker(service: DeliveryService, channel: Channel, sender: Sender, poll_seconds: float) -> Worker:
    def run(context: WorkerContext) -> None:
        def database_away(error: Exception, seconds: float) -> bool:
            context.failed(error)  # failing, as seen in health and metrics, until the outcome is recorded
            return context.wait(seconds)

        while not context.stop.is_set():
            tried = service.deliver_due(channel, sender, database_away=database_away)
            context.healthy()
            if not tried:
                context.wait(poll_seconds)

    return Worker(f"notify-deliver-{channel.value}", run)


def delivery_workers(service: DeliveryService, settings: NotifySettings) -> list[Worker]:
    poll = settings.delivery_poll_ms / 1000
    return [delivery_worker(service, channel, sender, poll) for channel, sender in senders(settings).items()]


def escalation_worker(crises: CrisisService, poll_seconds: float) -> Worker:
    """Takes the next step of unacknowledged crises when their time runs out (durable timers in the database)."""

    def run(context: WorkerContext) -> None:
        while not context.stop.is_set():
            taken = crises.escalate_due()
            context.healthy()
            if not taken:
                context.wait(poll_seconds)

    return Worker("notify-crisis-escalation", run)
