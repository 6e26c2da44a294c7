"""The gateway's own tables: users, their sessions and second factors, and throttled attempts. No case data lives here.

These are platform tables, not tenant data: a login looks a user up before any tenant is known, so they
are not under row-level security. Times that are compared (expiry, attempt windows) are epoch seconds,
which read back the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class UserRecord(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(30))
    tenant_id: Mapped[str] = mapped_column(String(12), index=True)
    district: Mapped[str] = mapped_column(String(6))
    agency: Mapped[str] = mapped_column(String(30), default="")
    # Prefilled as the reporter on this user's reports (mandated reporters and agencies must name themselves).
    phone: Mapped[str] = mapped_column(String(30), default="")
    organisation: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A village child director's villages, 12-digit codes separated by spaces: the registry shows them only
    # these villages' children (the token's `villages` claim). Empty for every other role.
    villages: Mapped[str] = mapped_column(String(400), default="")
    # The TOTP secret, encrypted (FieldCipher, SECOND_FACTOR_KEYS); empty until the user has enrolled.
    totp_secret: Mapped[str] = mapped_column(String(200), default="")
    # The latest 30-second step whose code was accepted: a code of that step or an earlier one is refused.
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)


class RecoveryCodeRecord(Base):
    """One unused recovery code of a user, hashed; deleted when used or when the user enrols again."""

    __tablename__ = "recovery_codes"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True)


class SessionRecord(Base):
    """A signed-in browser. Only a hash of the session id is stored, so a database leak opens no session."""

    __tablename__ = "user_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)
    # For the idle timeout (accounts.IDLE_SECONDS); updated at most once a minute.
    last_seen_at: Mapped[int] = mapped_column(Integer, default=0)


class AttemptRecord(Base):
    """One throttled attempt (a failed login, a public report) under a hashed key such as user+address."""

    __tablename__ = "attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[float] = mapped_column(Float, index=True)
