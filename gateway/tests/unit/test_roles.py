import pytest

from gateway import roles
from platform_runtime.auth import Role
from platform_runtime.vocabulary import Channel


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


# Whether the portal agrees with the services: tests/test_gateway_roles_match_services.py (the gateway
# imports no service, its tests neither).
