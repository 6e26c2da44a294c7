"""Who is told what, and who may read a notification. Notifications go to a role of the tenant (the town's
duty desk) or to one user; everyone holding that role in that town shares the role's inbox."""

from __future__ import annotations

from platform_runtime.auth import Role
from services.notify.domain.templates import NamedStaff

# A new referral is the caseworkers' work; a crisis also needs the town's administrator at once.
REFERRAL_OPENED_ROLES: tuple[Role, ...] = (Role.CASEWORKER,)
CRISIS_DECLARED_ROLES: tuple[Role, ...] = (Role.CASEWORKER, Role.TOWN_ADMIN)
# A missed time limit is the caseworkers' to catch up; for a crisis the town's administrator must know too.
DEADLINE_BREACHED_ROLES: tuple[Role, ...] = (Role.CASEWORKER,)
CRISIS_DEADLINE_BREACHED_ROLES: tuple[Role, ...] = (Role.CASEWORKER, Role.TOWN_ADMIN)
# Case events go to whoever holds the case: the named staff's accounts when the registry gives them (ADR 0015);
# otherwise the holder's role inbox in the town: the township's caseworkers (the social worker is one of them,
# and the town answers for a case with nobody named), and the village's child directors when the village named
# a responsible person (专人) or a child director on the case.
VILLAGE_STAFF = ("responsible_person", "child_director")
# Routine steps of the status machine are the caseworkers' own doing and stay quiet; holders are told when a
# case leaves them (closed, transferred) or comes back to them (reopened after closing).
STATUSES_LEAVING = frozenset({"closed", "transferred"})
# A member of the public has a receipt, not an inbox.
INBOX_ROLES = frozenset(Role) - {Role.PUBLIC}


def addressed_to(recipient_role: str, recipient_user: str, *, role: str, user_id: str) -> bool:
    return bool(recipient_role and recipient_role == role) or bool(recipient_user and recipient_user == user_id)


def holders(staff: NamedStaff) -> tuple[Role, ...]:
    """The inboxes of the people holding a case."""
    if any(getattr(staff, field) for field in VILLAGE_STAFF):
        return (Role.CASEWORKER, Role.CHILD_DIRECTOR)
    return (Role.CASEWORKER,)


def status_change_is_told(from_status: str, to_status: str) -> bool:
    return to_status in STATUSES_LEAVING or from_status == "closed"


def newly_named(staff: NamedStaff, previous: NamedStaff) -> tuple[Role, ...]:
    """The inboxes of the people named on a case who were not named there before (a removal tells nobody)."""
    named = staff.named_anew(previous)
    roles = []
    if "social_worker" in named:
        roles.append(Role.CASEWORKER)
    if any(field in named for field in VILLAGE_STAFF):
        roles.append(Role.CHILD_DIRECTOR)
    return tuple(roles)
