"""Notify settings, read once from the environment (see docs/conventions.md).

A channel is on when its server is configured: SMTP_HOST for e-mail, SMS_CARRIER_URL for SMS,
WEBHOOK_SIGNING_KEY for agencies' webhooks. The in-app inbox is always on.
"""

from __future__ import annotations

from dataclasses import dataclass

from platform_runtime.settings import CommonSettings, EnvReader, decode_key, read_common
from services.notify.domain.channels import Channel
from services.notify.service_layer.deliveries import LEASE

SERVICE_NAME = "notify"
DEFAULT_PORT = 50055


@dataclass(frozen=True)
class NotifySettings:
    common: CommonSettings
    portal_url: str
    smtp_host: str
    smtp_port: int
    smtp_sender: str
    smtp_username: str
    smtp_password: str
    smtp_starttls: bool
    sms_carrier_url: str
    sms_carrier_api_key: str
    webhook_signing_key: bytes
    # A channel's server gets this long to answer before the attempt counts as failed (and is retried).
    channel_timeout_seconds: int
    # How often an idle channel worker looks for due deliveries (and the escalation worker for due steps).
    delivery_poll_ms: int
    # How long a crisis alert may go unacknowledged before it goes up a step.
    crisis_ack_seconds: int
    # How long a claimed delivery waits before another worker sends it (its sender crashed mid-send); shorter
    # than the ~90 s of tries to record an outcome while the database is away risks a second send then.
    delivery_lease_seconds: int

    @property
    def channels(self) -> frozenset[Channel]:
        enabled = {Channel.IN_APP}
        if self.smtp_host:
            enabled.add(Channel.EMAIL)
        if self.sms_carrier_url:
            enabled.add(Channel.SMS)
        if self.webhook_signing_key:
            enabled.add(Channel.WEBHOOK)
        return frozenset(enabled)


def load_settings(env: EnvReader | None = None) -> NotifySettings:
    env = env or EnvReader()
    settings = NotifySettings(
        common=read_common(env, SERVICE_NAME, DEFAULT_PORT),
        portal_url=env.optional("PORTAL_URL", "http://127.0.0.1:8080"),
        smtp_host=env.optional("SMTP_HOST"),
        smtp_port=env.integer("SMTP_PORT", 25, minimum=1, maximum=65535),
        smtp_sender=env.optional("SMTP_SENDER", "noreply@minorprot.local"),
        smtp_username=env.optional("SMTP_USERNAME"),
        smtp_password=env.optional("SMTP_PASSWORD"),
        smtp_starttls=env.optional("SMTP_STARTTLS", "0") == "1",
        sms_carrier_url=env.optional("SMS_CARRIER_URL"),
        sms_carrier_api_key=env.optional("SMS_CARRIER_API_KEY"),
        webhook_signing_key=env.parsed("WEBHOOK_SIGNING_KEY", decode_key, b""),
        channel_timeout_seconds=env.integer("CHANNEL_TIMEOUT_SECONDS", 10, minimum=1, maximum=120),
        delivery_poll_ms=env.integer("DELIVERY_POLL_MS", 200, minimum=10, maximum=60_000),
        crisis_ack_seconds=env.integer("CRISIS_ACK_SECONDS", 15 * 60, minimum=1, maximum=24 * 3600),
        delivery_lease_seconds=env.integer(
            "DELIVERY_LEASE_SECONDS", int(LEASE.total_seconds()), minimum=5, maximum=3600
        ),
    )
    env.done()
    return settings
