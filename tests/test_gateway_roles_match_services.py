"""The portal's roles and channels agree with what the services accept (moved out of gateway/tests: the
gateway, and its tests, import no service package)."""

from gateway import roles
from platform_runtime.auth import Role
from services.referral.service_layer.services import STAFF_ROLES as REFERRAL_STAFF_ROLES
from services.reporting.service_layer.services import CHANNELS_BY_ROLE, READER_ROLES


def test_the_portal_offers_only_what_the_reporting_service_accepts() -> None:
    for role, offered in roles.STAFF_CHANNELS.items():
        assert set(offered) <= CHANNELS_BY_ROLE[role], role
    assert set(roles.PUBLIC_CHANNELS) == CHANNELS_BY_ROLE[Role.PUBLIC]
    # Every role the service lets submit (and a person can hold) gets a form.
    for role in CHANNELS_BY_ROLE.keys() - {Role.PUBLIC, Role.AGENCY_SYSTEM}:
        assert roles.can_submit(role), role


def test_readers_match_the_services() -> None:
    assert roles.REPORT_READERS == READER_ROLES
    assert set(REFERRAL_STAFF_ROLES) == roles.REFERRAL_READERS
