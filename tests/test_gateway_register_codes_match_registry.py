"""The portal's copies of the registry's code lists (gateway/register_codes.py) are the registry's own."""

from gateway import register_codes, roles
from platform_runtime.auth import Role
from services.registry.domain import codes
from services.registry.service_layer import access

PAIRS = {
    "CATEGORIES": codes.DifficultyCategory,
    "CATEGORY_SOURCES": codes.CategorySource,
    "CASE_STATUSES": codes.CaseStatus,
    "RELATIONSHIPS": codes.Relationship,
    "GUARDIAN_STATUSES": codes.GuardianStatus,
    "DOMAINS": codes.AssessmentDomain,
    "ASSESSMENT_KINDS": codes.AssessmentKind,
    "RISK_LEVELS": codes.RiskLevel,
    "GOAL_STATUSES": codes.GoalStatus,
    "ACTION_STATUSES": codes.ActionStatus,
    "OWNER_KINDS": codes.OwnerKind,
    "DISABILITY_TYPES": codes.DisabilityType,
}


def test_the_portal_offers_the_registrys_codes_with_their_labels() -> None:
    for name, enum in PAIRS.items():
        assert getattr(register_codes, name) == tuple((m.value, m.label) for m in enum), name
    assert {c.value for c in codes.DERIVED_CATEGORIES} == register_codes.DERIVED_CATEGORIES


def test_the_portal_offers_casework_to_the_roles_the_registry_allows() -> None:
    assert access.READER_ROLES - {Role.SYSTEM} == roles.CASE_FILE_READERS
    assert access.CASEWORK_ROLES - {Role.SYSTEM} == roles.CASE_WORKERS
    assert access.CASE_MANAGER_ROLES - {Role.SYSTEM} == roles.CASE_MANAGERS
