"""Who is told what, and who may read a notification. Notifications go to a role of the tenant (the town's
duty desk) or to one user; everyone holding that role in that town shares the role's inbox."""

from __future__ import annotations

from platform_runtime.auth import Role

# A new referral is the caseworkers' work; a crisis also needs the town's administrator at once.
REFERRAL_OPENED_ROLES: tuple[Role, ...] = (Role.CASEWORKER,)
CRISIS_DECLARED_ROLES: tuple[Role, ...] = (Role.CASEWORKER, Role.TOWN_ADMIN)
# A missed time limit is the caseworkers' to catch up; for a crisis the town's administrator must know too.
DEADLINE_BREACHED_ROLES: tuple[Role, ...] = (Role.CASEWORKER,)
CRISIS_DEADLINE_BREACHED_ROLES: tuple[Role, ...] = (Role.CASEWORKER, Role.TOWN_ADMIN)
# A member of the public has a receipt, not an inbox.
INBOX_ROLES = frozenset(Role) - {Role.PUBLIC}


def addressed_to(recipient_role: str, recipient_user: str, *, role: str, user_id: str) -> bool:
    return bool(recipient_role and recipient_role == role) or bool(recipient_user and recipient_user == user_id)
