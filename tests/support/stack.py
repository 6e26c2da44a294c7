"""What a `platform_runtime.local_stack.Stack` on PostgreSQL needs to know of each service's databases."""

from __future__ import annotations

from collections.abc import Mapping

from platform_runtime.provision import ProvisionedDatabase


def database_urls(databases: Mapping[str, ProvisionedDatabase]) -> dict[str, dict[str, str]]:
    """`StackConfig.database_urls`: each service runs as its app role, migrates as the owner, relays as the relay role."""
    return {
        service: {
            "DATABASE_URL": db.app_url,
            "MIGRATION_DATABASE_URL": db.owner_url,
            "OUTBOX_DATABASE_URL": db.relay_url,
        }
        for service, db in databases.items()
    }
