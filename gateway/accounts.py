"""Users and sessions: who may sign in, as which role, for which town. The gateway's only business data.

A user maps to the `Principal` the services trust (tenant, district, role, agency); the gateway turns it
into a short-lived signed token for every call it makes on the user's behalf.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from gateway import passwords, second_factor
from gateway.limits import (
    ACCOUNT_FAILURES,
    ACCOUNT_LOCK_MAX_SECONDS,
    ACCOUNT_LOCK_SECONDS,
    ADDRESS_LOGIN_FAILURES,
    LOGIN_FAILURES,
    AttemptLimiter,
)
from gateway.models import RecoveryCodeRecord, SessionRecord, UserRecord
from platform_runtime.auth import Principal, Role
from platform_runtime.pii import FieldCipher
from platform_runtime.vocabulary import AgencyKind

SESSION_SECONDS = 8 * 3600  # absolute: one working day; the cookie dies with the browser besides
IDLE_SECONDS = 30 * 60  # a portal left open on a shared office computer signs out after half an hour
_LAST_SEEN_RESOLUTION = 60
# Roles a person can hold; public, system and agency-system principals are never users.
USER_ROLES = frozenset(
    {
        Role.CASEWORKER,
        Role.TOWN_ADMIN,
        Role.CHILD_DIRECTOR,
        Role.MANDATED_REPORTER,
        Role.DISTRICT_OFFICER,
        Role.DISTRICT_ADMIN,
        Role.LEADING_GROUP_OFFICE,
        Role.AGENCY_OFFICER,
        Role.FINANCE_AUDITOR,
    }
)


class LoginFailed(Exception):
    """Wrong username or password, or an inactive user: deliberately one error for all three."""


class LoginThrottled(Exception):
    pass


class SecondFactorNotEnrolled(Exception):
    """The role needs a second factor and the user has not enrolled one yet (the portal enrols after the password)."""


class UserProblems(ValueError):
    """A user that cannot be saved, with every reason."""


@dataclass(frozen=True)
class User:
    user_id: str
    username: str
    display_name: str
    role: Role
    tenant: str
    district: str
    agency: str = ""
    phone: str = ""
    organisation: str = ""
    villages: tuple[str, ...] = ()  # a child director's: the registry shows them these villages' children only

    def principal(self) -> Principal:
        return Principal(
            user_id=self.user_id,
            display_name=self.display_name,
            role=self.role,
            tenant=self.tenant,
            district=self.district,
            agency=self.agency,
            villages=self.villages,
        )


@dataclass(frozen=True)
class NewUser:
    username: str
    display_name: str
    role: Role
    tenant: str
    agency: str = ""
    phone: str = ""
    organisation: str = ""
    villages: tuple[str, ...] = ()


# One synthetic account per role for a demo town (names are invented; the phone numbers are unassigned).
DEMO_USERS = (
    NewUser("caseworker", "王社工", Role.CASEWORKER, "", phone="13900000001", organisation="乡镇儿童督导员"),
    NewUser("town_admin", "李管理员", Role.TOWN_ADMIN, "", phone="13900000002"),
    NewUser("child_director", "赵儿童主任", Role.CHILD_DIRECTOR, "", phone="13900000003", organisation="村民委员会"),
    NewUser("teacher", "陈老师", Role.MANDATED_REPORTER, "", phone="13900000004", organisation="中心小学"),
    NewUser("district_officer", "刘科长", Role.DISTRICT_OFFICER, "", phone="13900000005", organisation="区民政局"),
    NewUser(
        "police_officer", "孙警官", Role.AGENCY_OFFICER, "", agency="police", phone="13900000006", organisation="派出所"
    ),
    NewUser("finance_auditor", "周审计", Role.FINANCE_AUDITOR, "", phone="13900000007", organisation="区财政局"),
)
# The district's own demo accounts, seeded by `make up` only (`seed-demo --district-accounts`): the tests make
# their district users themselves, with passwords of their own.
DISTRICT_DEMO_USERS = (
    NewUser("district_admin", "吴区管理员", Role.DISTRICT_ADMIN, "", phone="13900000008", organisation="区民政局"),
    NewUser(
        "leading_group",
        "郑主任",
        Role.LEADING_GROUP_OFFICE,
        "",
        phone="13900000009",
        organisation="区未保领导小组办公室",
    ),
)
DEMO_VILLAGE = "201"  # the demo child director's village: this number in the demo town


def demo_users(tenant: str, *, district_accounts: bool = False) -> list[NewUser]:
    """The demo accounts of a town; its child director serves village DEMO_VILLAGE. With `district_accounts`,
    also the district administrator and the leading group office (in the town's district)."""
    return [
        replace(demo, tenant=tenant, villages=(tenant + DEMO_VILLAGE,) if demo.role is Role.CHILD_DIRECTOR else ())
        for demo in (*DEMO_USERS, *(DISTRICT_DEMO_USERS if district_accounts else ()))
    ]


def _hash_session_id(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _user(row: UserRecord) -> User:
    return User(
        user_id=row.id,
        username=row.username,
        display_name=row.display_name,
        role=Role(row.role),
        tenant=row.tenant_id,
        district=row.district,
        agency=row.agency,
        phone=row.phone,
        organisation=row.organisation,
        villages=tuple(row.villages.split()),
    )


def user_problems(new: NewUser) -> list[str]:
    problems = []
    if not (3 <= len(new.username) <= 64 and new.username.replace("_", "").replace(".", "").isalnum()):
        problems.append("username: 3-64 letters, digits, '_' or '.'")
    if not new.display_name.strip():
        problems.append("display name is required")
    if new.role not in USER_ROLES:
        problems.append(f"role must be one of {', '.join(sorted(USER_ROLES))}")
    if not (len(new.tenant) == 9 and new.tenant.isdigit()):
        problems.append("tenant must be a 9-digit town/street code")
    known_agencies = {kind.value for kind in AgencyKind}
    if new.role is Role.AGENCY_OFFICER and new.agency not in known_agencies:
        problems.append(f"an agency officer needs an agency: one of {', '.join(sorted(known_agencies))}")
    if new.role is not Role.AGENCY_OFFICER and new.agency:
        problems.append("only agency officers belong to an agency")
    return problems + village_problems(new.role, new.tenant, new.villages)


def village_problems(role: Role, tenant: str, villages: tuple[str, ...]) -> list[str]:
    if villages and role is not Role.CHILD_DIRECTOR:
        return ["only a village child director is assigned villages"]
    if any(not (len(code) == 12 and code.isdigit() and code.startswith(tenant)) for code in villages):
        return [f"villages: 12-digit codes of villages of town {tenant}"]
    return []


@dataclass(frozen=True)
class _AttemptKeys:
    """What a failed password or code counts against: user+address, the address, the account."""

    pair: str
    address: str
    account: str

    @classmethod
    def of(cls, username: str, client_ip: str) -> _AttemptKeys:
        name = username.strip().lower()
        return cls(f"login:{name}:{client_ip}", f"login-ip:{client_ip}", f"account:{name}")


class UserService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        limiter: AttemptLimiter,
        factor_cipher: FieldCipher,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._limiter = limiter
        self._factor_cipher = factor_cipher
        self._clock = clock

    # -- signing in -----------------------------------------------------------------------------------------

    def _check_throttles(self, keys: _AttemptKeys) -> None:
        locked_until = self._limiter.locked_until(
            keys.account, ACCOUNT_FAILURES, ACCOUNT_LOCK_SECONDS, ACCOUNT_LOCK_MAX_SECONDS
        )
        if (
            self._limiter.exceeded(keys.pair, LOGIN_FAILURES)
            or self._limiter.exceeded(keys.address, ADDRESS_LOGIN_FAILURES)
            or locked_until > self._clock()
        ):
            raise LoginThrottled

    def _failed(self, keys: _AttemptKeys) -> LoginFailed:
        self._limiter.record(keys.pair, LOGIN_FAILURES)
        self._limiter.record(keys.address, ADDRESS_LOGIN_FAILURES)
        self._limiter.record(keys.account, ACCOUNT_FAILURES)
        return LoginFailed()

    def _succeeded(self, keys: _AttemptKeys) -> None:
        self._limiter.clear(keys.pair)
        self._limiter.clear(keys.account)

    def authenticate(self, username: str, password: str, client_ip: str) -> User:
        """The password step. For a role that needs a second factor the failure counts are kept until the
        code is right too: otherwise each right password would reset the count of wrong codes."""
        keys = _AttemptKeys.of(username, client_ip)
        self._check_throttles(keys)
        with self._sessions() as session:
            row = session.scalar(select(UserRecord).where(UserRecord.username == username.strip().lower()))
            # Verify even for an unknown user, so the answer takes as long either way.
            ok = passwords.verify_password(password, row.password_hash if row else passwords.DUMMY_HASH)
            if row is None or not ok or not row.active:
                raise self._failed(keys)
            if passwords.needs_rehash(row.password_hash):
                row.password_hash = passwords.hash_password(password)
                session.commit()
            user = _user(row)
        if not second_factor.required_for(user.role):
            self._succeeded(keys)
        return user

    def sign_in_with_code(self, username: str, password: str, code: str, client_ip: str) -> User:
        """Both steps at once (the API token): the password, then the code if the role needs one."""
        user = self.authenticate(username, password, client_ip)
        if second_factor.required_for(user.role):
            if not self.is_enrolled(user.user_id):
                raise SecondFactorNotEnrolled
            self.verify_second_factor(user, code, client_ip)
        return user

    def _secret_field(self, user_id: str) -> str:
        return f"totp_secret/{user_id}"  # bound to the row: a secret copied to another user does not decrypt

    def is_enrolled(self, user_id: str) -> bool:
        with self._sessions() as session:
            row = session.get(UserRecord, user_id)
            return row is not None and bool(row.totp_secret)

    def verify_second_factor(self, user: User, code: str, client_ip: str) -> None:
        """A current code not used before, or an unused recovery code (which is then spent). Wrong codes
        count against the same limits as wrong passwords."""
        keys = _AttemptKeys.of(user.username, client_ip)
        self._check_throttles(keys)
        if not self._accept_code(user.user_id, code):
            raise self._failed(keys)  # recorded after the check's transaction: SQLite allows one writer
        self._succeeded(keys)

    def _accept_code(self, user_id: str, code: str) -> bool:
        with self._sessions() as session:
            row = session.get(UserRecord, user_id)
            if row is None or not row.active or not row.totp_secret:
                return False
            if second_factor.looks_like_recovery_code(code):
                spent = session.execute(
                    delete(RecoveryCodeRecord).where(
                        RecoveryCodeRecord.user_id == row.id,
                        RecoveryCodeRecord.code_hash == second_factor.recovery_hash(code),
                    )
                )
                accepted = bool(getattr(spent, "rowcount", 0))
            else:
                secret = self._factor_cipher.decrypt(
                    row.totp_secret, tenant="gateway", field=self._secret_field(row.id)
                )
                step = second_factor.matching_step(secret, code, self._clock(), row.totp_last_step)
                accepted = step is not None
                if step is not None:
                    row.totp_last_step = step
            if accepted:
                session.commit()
            else:
                session.rollback()
            return accepted

    def enrol_second_factor(self, user: User, secret: str, code: str, client_ip: str) -> list[str]:
        """Keep `secret` once the user proves their authenticator has it (a first code); returns the new
        recovery codes, shown once. Enrolling again replaces the secret and every recovery code."""
        keys = _AttemptKeys.of(user.username, client_ip)
        self._check_throttles(keys)
        step = second_factor.matching_step(secret, code, self._clock(), 0)
        if step is None:
            raise self._failed(keys)
        codes = self.set_second_factor(user.user_id, secret, last_step=step)
        self._succeeded(keys)
        return codes

    def set_second_factor(self, user_id: str, secret: str, last_step: int = 0) -> list[str]:
        codes = second_factor.new_recovery_codes()
        with self._sessions() as session:
            row = session.get(UserRecord, user_id)
            if row is None:
                raise UserProblems(f"no user {user_id}")
            row.totp_secret = self._factor_cipher.encrypt(secret, tenant="gateway", field=self._secret_field(row.id))
            row.totp_last_step = last_step
            session.execute(delete(RecoveryCodeRecord).where(RecoveryCodeRecord.user_id == row.id))
            session.add_all(
                RecoveryCodeRecord(code_hash=second_factor.recovery_hash(code), user_id=row.id) for code in codes
            )
            session.commit()
        return codes

    def user_id_of(self, username: str) -> str | None:
        with self._sessions() as session:
            return session.scalar(select(UserRecord.id).where(UserRecord.username == username.strip().lower()))

    def open_session(self, user: User) -> str:
        """A new random session id for the cookie; a fresh one at every login (no session fixation)."""
        raw = secrets.token_urlsafe(32)
        now = int(self._clock())
        with self._sessions() as session:
            session.execute(delete(SessionRecord).where(SessionRecord.expires_at < now))
            session.add(
                SessionRecord(
                    id_hash=_hash_session_id(raw),
                    user_id=user.user_id,
                    created_at=now,
                    expires_at=now + SESSION_SECONDS,
                    last_seen_at=now,
                )
            )
            session.commit()
        return raw

    def resolve_session(self, raw: str) -> User | None:
        with self._sessions() as session:
            found = session.get(SessionRecord, _hash_session_id(raw))
            now = int(self._clock())
            if found is None or found.expires_at < now or found.last_seen_at + IDLE_SECONDS < now:
                return None
            if now - found.last_seen_at >= _LAST_SEEN_RESOLUTION:
                found.last_seen_at = now  # not at every request: one write a minute keeps the idle clock honest
                session.commit()
            row = session.get(UserRecord, found.user_id)
            return _user(row) if row is not None and row.active else None

    def close_session(self, raw: str) -> None:
        with self._sessions() as session:
            session.execute(delete(SessionRecord).where(SessionRecord.id_hash == _hash_session_id(raw)))
            session.commit()

    def active_user(self, user_id: str) -> User | None:
        with self._sessions() as session:
            row = session.get(UserRecord, user_id)
            return _user(row) if row is not None and row.active else None

    def town_users(self, tenant: str) -> list[User]:
        """The town's active users, by name: whom a case can name as its staff, and the town's user list."""
        with self._sessions() as session:
            rows = session.scalars(
                select(UserRecord)
                .where(UserRecord.tenant_id == tenant, UserRecord.active.is_(True))
                .order_by(UserRecord.display_name, UserRecord.username)
            )
            return [_user(row) for row in rows]

    # -- managing users -------------------------------------------------------------------------------------

    def assign_villages(self, tenant: str, user_id: str, villages: Iterable[str]) -> User:
        """Set a child director's villages (the town administrator's page). Raises UserProblems."""
        codes = tuple(sorted({code.strip() for code in villages if code.strip()}))
        with self._sessions() as session:
            row = session.get(UserRecord, user_id)
            if row is None or row.tenant_id != tenant or not row.active:
                raise UserProblems("no such user in this town")
            problems = village_problems(Role(row.role), tenant, codes)
            if problems:
                raise UserProblems("; ".join(problems))
            row.villages = " ".join(codes)
            session.commit()
            return _user(row)

    def save_user(self, new: NewUser, password: str) -> tuple[User, bool]:
        """Create the user, or reset the password and profile of the same username in the same town.

        Returns the user and whether it was created. Raises UserProblems listing every problem.
        """
        problems = user_problems(new) + passwords.password_problems(password, new.username)
        if problems:
            raise UserProblems("; ".join(problems))
        username = new.username.lower()
        with self._sessions() as session:
            row = session.scalar(select(UserRecord).where(UserRecord.username == username))
            created = row is None
            if row is None:
                row = UserRecord(id=uuid.uuid4().hex, username=username, created_at=datetime.now(UTC))
                session.add(row)
            elif row.tenant_id != new.tenant:
                raise UserProblems(f"username {username} already belongs to town {row.tenant_id}")
            row.display_name = new.display_name.strip()
            row.password_hash = passwords.hash_password(password)
            row.role = new.role.value
            row.tenant_id = new.tenant
            row.district = new.tenant[:6]
            row.agency = new.agency
            row.phone = new.phone
            row.organisation = new.organisation
            row.villages = " ".join(new.villages)
            row.active = True
            if not created:
                # A reset ends every open session: it is often done because someone else knew the password.
                session.execute(delete(SessionRecord).where(SessionRecord.user_id == row.id))
            session.commit()
            return _user(row), created
