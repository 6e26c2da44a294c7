from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from gateway.accounts import (
    DEMO_USERS,
    IDLE_SECONDS,
    SESSION_SECONDS,
    LoginFailed,
    LoginThrottled,
    NewUser,
    UserProblems,
    UserService,
    demo_users,
)
from gateway.limits import (
    ACCOUNT_FAILURES,
    ACCOUNT_LOCK_SECONDS,
    ADDRESS_LOGIN_FAILURES,
    LOGIN_FAILURES,
    AttemptLimiter,
)
from gateway.models import SessionRecord
from gateway.settings import GatewaySettings
from gateway.tests.unit.conftest import PASSWORD
from platform_runtime.auth import Role
from platform_runtime.db import make_engine
from platform_runtime.pii import FieldCipher


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
    yield UserService(sessions, AttemptLimiter(sessions, clock), FieldCipher(settings.second_factor_keys), clock)
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


def test_repeated_failures_lock_the_account_from_every_address_with_a_growing_back_off(
    users: UserService, clock: Clock
) -> None:
    # A role signing in with the password alone: for the others the count ends only with the right code.
    for attempt in range(ACCOUNT_FAILURES.attempts):
        with pytest.raises(LoginFailed):
            users.authenticate("teacher", "wrong", f"10.0.0.{attempt}")  # a different address each time
    for address in ("10.0.0.1", "10.9.9.9"):
        with pytest.raises(LoginThrottled):
            users.authenticate("teacher", PASSWORD, address)  # even the right password waits, from anywhere
    assert users.authenticate("town_admin", PASSWORD, "10.0.0.1")  # another account is not locked
    clock.now += ACCOUNT_LOCK_SECONDS + 1
    with pytest.raises(LoginFailed):
        users.authenticate("teacher", "wrong again", "10.0.0.7")  # one more failure doubles the lock
    clock.now += ACCOUNT_LOCK_SECONDS + 1
    with pytest.raises(LoginThrottled):
        users.authenticate("teacher", PASSWORD, "10.0.0.1")
    clock.now += ACCOUNT_LOCK_SECONDS
    assert users.authenticate("teacher", PASSWORD, "10.0.0.1")
    with pytest.raises(LoginFailed):
        users.authenticate("teacher", "wrong", "10.0.0.1")  # success starts the count again: no lock
    assert users.authenticate("teacher", PASSWORD, "10.0.0.1")


def test_one_user_failing_from_one_address_waits_out_the_window(users: UserService, clock: Clock) -> None:
    for _ in range(LOGIN_FAILURES.attempts):
        with pytest.raises(LoginFailed):
            users.authenticate("teacher", "wrong", "10.0.0.1")
    clock.now += ACCOUNT_LOCK_SECONDS + 1  # the account lock is over, the address+user window is not
    with pytest.raises(LoginThrottled):
        users.authenticate("teacher", PASSWORD, "10.0.0.1")
    clock.now += LOGIN_FAILURES.window_seconds
    assert users.authenticate("teacher", PASSWORD, "10.0.0.1")


def test_password_spraying_from_one_address_is_throttled(users: UserService) -> None:
    for n in range(ADDRESS_LOGIN_FAILURES.attempts):
        with pytest.raises(LoginFailed):
            users.authenticate(f"guess{n}", "Spring2026!!", "10.6.6.6")  # one password against many usernames
    with pytest.raises(LoginThrottled):
        users.authenticate("teacher", PASSWORD, "10.6.6.6")
    assert users.authenticate("teacher", PASSWORD, "10.0.0.1")


def test_a_password_reset_ends_the_open_sessions(users: UserService) -> None:
    raw = users.open_session(users.authenticate("caseworker", PASSWORD, "10.0.0.1"))
    other = users.open_session(users.authenticate("town_admin", PASSWORD, "10.0.0.1"))
    users.save_user(replace(DEMO_USERS[0], tenant="110111008"), "a new long passphrase")
    assert users.resolve_session(raw) is None
    assert users.resolve_session(other) is not None


def test_a_session_left_idle_ends(users: UserService, clock: Clock) -> None:
    raw = users.open_session(users.authenticate("caseworker", PASSWORD, "10.0.0.1"))
    for _ in range(6):  # in use: an hour and a half of clicks 15 minutes apart
        clock.now += 15 * 60
        assert users.resolve_session(raw) is not None
    clock.now += IDLE_SECONDS + 1
    assert users.resolve_session(raw) is None


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
        (NewUser("someone", "X", Role.CASEWORKER, "110111008"), "short", "at least 12"),
        (NewUser("someone", "X", Role.CASEWORKER, "110111008"), "1qaz2wsx3edc", "too common"),
        (NewUser("someone", "X", Role.CASEWORKER, "110111008"), "Password1234", "too common"),
        (NewUser("someone", "X", Role.CASEWORKER, "110111008"), "aaaaaaaaaaaaaaaa", "too common"),
        (NewUser("someone", "X", Role.CASEWORKER, "110111008"), "someone's own words", "username"),
        (NewUser("caseworker", "X", Role.CASEWORKER, "110111009"), PASSWORD, "already belongs to town 110111008"),
    ],
)
def test_invalid_users_are_refused(users: UserService, new: NewUser, password: str, problem: str) -> None:
    with pytest.raises(UserProblems, match=problem):
        users.save_user(new, password)


def test_make_up_seeds_the_districts_administrator_and_leading_group_office_too(users: UserService) -> None:
    town_only = demo_users("110111008")
    with_district = demo_users("110111008", district_accounts=True)
    assert {u.role for u in with_district} - {u.role for u in town_only} == {
        Role.DISTRICT_ADMIN,
        Role.LEADING_GROUP_OFFICE,
    }
    for new in with_district:
        users.save_user(new, "a demo passphrase")
    for username in ("district_admin", "leading_group"):
        user = users.authenticate(username, "a demo passphrase", "10.0.0.1")
        assert (user.tenant, user.district) == ("110111008", "110111")
