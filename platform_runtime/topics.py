"""The project's Kafka topics, created explicitly (the broker never auto-creates them).

Run `python -m platform_runtime.topics` (make up and the test set-up do) to create what is missing.
"""

from __future__ import annotations

import sys

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from platform_runtime.settings import EnvReader, KafkaSettings, SettingsError, read_kafka

PLATFORM_TENANT = "platform.tenant"
REGISTRY_CHILD = "registry.child"
REGISTRY_CASE = "registry.case"
REPORTING_REPORT = "reporting.report"
REFERRAL_REFERRAL = "referral.referral"
BENEFITS_ENTITLEMENT = "benefits.entitlement"
BENEFITS_DISBURSEMENT = "benefits.disbursement"
NOTIFY_DELIVERY = "notify.delivery"

DOMAIN_TOPICS = (
    PLATFORM_TENANT,
    REGISTRY_CHILD,
    REGISTRY_CASE,
    REPORTING_REPORT,
    REFERRAL_REFERRAL,
    BENEFITS_ENTITLEMENT,
    BENEFITS_DISBURSEMENT,
    NOTIFY_DELIVERY,
)


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlt"


ALL_TOPICS = DOMAIN_TOPICS + tuple(dead_letter_topic(t) for t in DOMAIN_TOPICS)


def ensure_topics(
    kafka: KafkaSettings, *, partitions: int = 3, replication_factor: int = 1, prefix: str = ""
) -> list[str]:
    """Create missing topics (each name after `prefix`); returns the names created. Safe to run again."""
    admin = AdminClient(dict(kafka.client_config()))
    existing = set(admin.list_topics(timeout=15).topics)
    missing = [prefix + name for name in ALL_TOPICS if prefix + name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor) for name in missing]
    )
    for future in futures.values():
        try:
            future.result(timeout=30)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return missing


def main() -> int:
    env = EnvReader()
    kafka = read_kafka(env)
    partitions = env.integer("KAFKA_TOPIC_PARTITIONS", 3, minimum=1, maximum=1000)
    replication = env.integer("KAFKA_TOPIC_REPLICATION_FACTOR", 1, minimum=1, maximum=10)
    prefix = env.optional("KAFKA_TOPIC_PREFIX")
    try:
        env.done()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    created = ensure_topics(kafka, partitions=partitions, replication_factor=replication, prefix=prefix)
    print(f"topics ready ({len(created)} created)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
