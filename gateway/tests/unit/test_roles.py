import pytest

from gateway import roles
from platform_runtime.auth import Role
from services.referral.service_layer.services import STAFF_ROLES as REFERRAL_STAFF_ROLES
from services.reporting.domain.model import Channel
from services.reporting.service_layer.services import CHANNELS_BY_ROLE, READER_ROLES


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.MANDATED_REPORTER, (Channel.MANDATED_REPORTER,)),
        (Role.CHILD_DIRECTOR, (Channel.MANDATED_REPORTER,)),
        (Role.AGENCY_OFFICER, (Channel.AGENCY_SHARE,)),
        (Role.FINANCE_AUDITOR, ()),
        (Role.PUBLIC, ()),
    ],
)
def test_channels_offered_per_role(role: Role, expected: tuple[Channel, ...]) -> None:
    assert roles.channels_for(role) == expected
    assert roles.can_submit(role) is bool(expected)


def test_staff_see_every_staff_channel_but_not_the_public_ones() -> None:
    for role in (Role.CASEWORKER, Role.TOWN_ADMIN, Role.DISTRICT_OFFICER):
        offered = set(roles.channels_for(role))
        assert offered == set(Channel) - set(roles.PUBLIC_CHANNELS)


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
