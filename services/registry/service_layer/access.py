"""Who may do what in the register (the roles each use case admits), and the purpose a reader must give."""

from __future__ import annotations

from platform_runtime import errors
from platform_runtime.auth import Role

# Who may read the register and case files: the town's and district's child-protection staff.
READER_ROLES = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN, Role.CHILD_DIRECTOR, Role.DISTRICT_OFFICER, Role.SYSTEM})
# Who may register a provisional child (for a report): the same. Reporters, agencies and the public never
# search the register, not even through MatchChild: the reporting service links their reports as itself
# (a workload token, role system, signed with reporting's own key) and tells them nothing of the answer.
INTAKE_ROLES = READER_ROLES
# Who records what they find: family facts, categories, visits, the child's details. Village child
# directors survey and visit; the district supervises and reads, it does not keep the towns' files.
CASEWORK_ROLES = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN, Role.CHILD_DIRECTOR, Role.SYSTEM})
# Who manages the case: status, named staff, assessments and the assistance plan (the town's duty).
CASE_MANAGER_ROLES = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN, Role.SYSTEM})
# A merge is a person's judgement, never a job's.
MERGE_ROLES = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN})

MIN_PURPOSE_CHARS = 4


def require_purpose(purpose: str, what: str = "this case file") -> str:
    purpose = purpose.strip()
    if len(purpose) < MIN_PURPOSE_CHARS:
        raise errors.InvalidInput(f"say why you open {what} (it is recorded)", "purpose")
    return purpose
