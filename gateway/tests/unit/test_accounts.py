from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from gateway.accounts import (
    DEMO_USERS,
    SESSION_SECONDS,
    LoginFailed,
    LoginThrottled,
    NewUser,
    UserProblems,
    UserService,
)
from gateway.limits import LOGIN_FAILURES, AttemptLimiter
from gateway.models import SessionRecord
from gateway.settings import GatewaySettings
from gateway.tests.unit.conftest import PASSWORD
from platform_runtime.auth import Role
from platform_runtime.db import make_engine


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def users(settings: GatewaySettings, clock: Clock) -> Iterator[UserService]:
    engine = make_engine(settings.database_url)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    yield UserService(sessions, AttemptLimiter(sessions, clock), clock)
    engine.dispose()


def test_the_right_password_signs_the_user_in_as_their_principal(users: UserService) -> None:
    user = users.authenticate("Teacher", PASSWORD, "10.0.0.1")
    principal = user.principal()
    assert (principal.role, principal.tenant, principal.district) == (Role.MANDATED_REPORTER, "110111008", "110111")


@pytest.mark.parametrize(("username", "password"), [("caseworker", "wrong"), ("nobody", PASSWORD), ("", "")])
def test_a_wrong_password_and_an_unknown_user_fail_alike(users: UserService, username: str, password: str) -> None:
    with pytest.raises(LoginFailed) as raised:
        users.authenticate(username, password, "10.0.0.1")
    assert str(raised.value) == ""


def test_repeated_failures_lock_that_user_from_that_address_for_a_while(users: UserService, clock: Clock) -> None:
    for _ in range(LOGIN_FAILURES.attempts):
        with pytest.raises(LoginFailed):
            users.authenticate("caseworker", "wrong", "10.0.0.1")
    with pytest.raises(LoginThrottled):
        users.authenticate("caseworker", PASSWORD, "10.0.0.1")  # even the right password waits
    assert users.authenticate("caseworker", PASSWORD, "10.0.0.2")  # another address is not locked out
    assert users.authenticate("town_admin", PASSWORD, "10.0.0.1")  # nor another user
    clock.now += LOGIN_FAILURES.window_seconds + 1
    assert users.authenticate("caseworker", PASSWORD, "10.0.0.1")


def test_a_session_lasts_a_working_day_and_ends_at_logout(users: UserService, clock: Clock) -> None:
    user = users.authenticate("caseworker", PASSWORD, "10.0.0.1")
    raw = users.open_session(user)
    assert users.resolve_session(raw) == user
    assert users.resolve_session(raw + "x") is None
    clock.now += SESSION_SECONDS + 1
    assert users.resolve_session(raw) is None
    clock.now -= SESSION_SECONDS + 1
    users.close_session(raw)
    assert users.resolve_session(raw) is None


def test_only_a_hash_of_the_session_id_is_stored(users: UserService) -> None:
    raw = users.open_session(users.authenticate("caseworker", PASSWORD, "10.0.0.1"))
    with users._sessions() as session:
        stored = session.scalars(select(SessionRecord.id_hash)).all()
    assert stored and raw not in stored


def test_saving_a_user_again_resets_their_password(users: UserService) -> None:
    user, created = users.save_user(replace(DEMO_USERS[0], tenant="110111008"), "another password")
    assert not created
    assert users.authenticate("caseworker", "another password", "10.0.0.1") == user


@pytest.mark.parametrize(
    ("new", "password", "problem"),
    [
        (NewUser("a", "A", Role.CASEWORKER, "110111008"), PASSWORD, "username"),
        (NewUser("someone", "X", Role.PUBLIC, "110111008"), PASSWORD, "role must be one of"),
        (NewUser("someone", "X", Role.SYSTEM, "110111008"), PASSWORD, "role must be one of"),
        (NewUser("someone", "X", Role.CASEWORKER, "110111"), PASSWORD, "9-digit"),
        (NewUser("someone", "X", Role.AGENCY_OFFICER, "110111008"), PASSWORD, "needs an agency"),
        (NewUser("someone", "X", Role.CASEWORKER, "110111008", agency="police"), PASSWORD, "only agency officers"),
        (NewUser("someone", "X", Role.CASEWORKER, "110111008"), "short", "at least 8"),
        (NewUser("caseworker", "X", Role.CASEWORKER, "110111009"), PASSWORD, "already belongs to town 110111008"),
    ],
)
def test_invalid_users_are_refused(users: UserService, new: NewUser, password: str, problem: str) -> None:
    with pytest.raises(UserProblems, match=problem):
        users.save_user(new, password)
