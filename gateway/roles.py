"""What each role is offered in the portal. The services decide what is allowed; this only shapes the screens.

`STAFF_CHANNELS` mirrors reporting's CHANNELS_BY_ROLE without the public channels (those belong to the
public form); a unit test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping

from platform_runtime.auth import Role
from platform_runtime.vocabulary import Channel, ReporterRole

_STAFF = (
    Channel.STAFF_HOTLINE,
    Channel.STAFF_WALK_IN,
    Channel.MANDATED_REPORTER,
    Channel.AGENCY_SHARE,
    Channel.RELATIVE,
    Channel.NEIGHBOUR,
)
STAFF_CHANNELS: Mapping[Role, tuple[Channel, ...]] = {
    Role.CASEWORKER: _STAFF,
    Role.TOWN_ADMIN: _STAFF,
    Role.DISTRICT_OFFICER: _STAFF,
    Role.CHILD_DIRECTOR: (Channel.MANDATED_REPORTER,),
    Role.MANDATED_REPORTER: (Channel.MANDATED_REPORTER,),
    Role.AGENCY_OFFICER: (Channel.AGENCY_SHARE,),
}
PUBLIC_CHANNELS = (Channel.PUBLIC_ANONYMOUS, Channel.PUBLIC_NAMED)

# Who reads the town's reports (reporting's READER_ROLES), referrals (referral's STAFF_ROLES) and case
# files (the registry audits each read).
REPORT_READERS = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN, Role.DISTRICT_OFFICER})
REFERRAL_READERS = REPORT_READERS
CASE_FILE_READERS = REPORT_READERS | {Role.CHILD_DIRECTOR}
# Who sees the read logs of reports (reporting's AUDIT_READER_ROLES).
AUDIT_READERS = frozenset({Role.TOWN_ADMIN, Role.DISTRICT_OFFICER})
# Casework on a case file (the registry's CASEWORK_ROLES) and registering children; the case's status and
# named staff are the case managers' (CASE_MANAGER_ROLES). The district reads, it does not keep the files.
CASE_WORKERS = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN, Role.CHILD_DIRECTOR})
REGISTER_KEEPERS = CASE_WORKERS
CASE_MANAGERS = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN})

# Benefits (gateway/views/benefits.py): town staff apply, the district decides and makes the monthly runs, the
# district administrator keeps the policy versions, the finance auditor reads the fund usage.
BENEFIT_APPLICANTS = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN})
BENEFIT_APPLICATION_READERS = BENEFIT_APPLICANTS | {Role.DISTRICT_OFFICER}
BENEFIT_RUNNERS = frozenset({Role.DISTRICT_OFFICER})
BENEFIT_LEDGER_READERS = frozenset({Role.DISTRICT_OFFICER, Role.DISTRICT_ADMIN, Role.FINANCE_AUDITOR})
BENEFIT_POLICY_READERS = BENEFIT_LEDGER_READERS | BENEFIT_APPLICANTS
BENEFIT_USERS = BENEFIT_APPLICATION_READERS | BENEFIT_LEDGER_READERS

# The reporter role a mandated reporter most likely has, preselected on the form.
DEFAULT_REPORTER_ROLE: Mapping[Role, ReporterRole] = {
    Role.CHILD_DIRECTOR: ReporterRole.CHILD_DIRECTOR,
    Role.MANDATED_REPORTER: ReporterRole.TEACHER,
}


def channels_for(role: Role) -> tuple[Channel, ...]:
    return STAFF_CHANNELS.get(role, ())


def can_submit(role: Role) -> bool:
    return bool(channels_for(role))
