"""Composition root of the gateway: the only place that builds the engine, the token keys and the service clients.

Tests pass fakes for the services (`backends=`); nothing connects at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.accounts import UserService
from gateway.clients import Backends, GrpcBackends
from gateway.limits import AttemptLimiter
from gateway.settings import GatewaySettings
from gateway.tokens import SERVICE_TOKEN_SECONDS, Tokens
from gateway.towns import TownDirectory
from platform_runtime.auth import Keyring, ServiceTokens, TokenIssuer
from platform_runtime.db import make_engine
from platform_runtime.pii import FieldCipher


@dataclass
class Components:
    settings: GatewaySettings
    engine: Engine
    users: UserService
    limiter: AttemptLimiter
    tokens: Tokens
    backends: Backends
    towns: TownDirectory

    def close(self) -> None:
        self.backends.close()
        self.engine.dispose()


def user_service(database_url: str, second_factor_keys: dict[str, bytes]) -> tuple[UserService, AttemptLimiter, Engine]:
    """The accounts alone, for the commands that manage users (they need no token keys and no services)."""
    engine = make_engine(database_url)
    sessions: sessionmaker[Session] = sessionmaker(bind=engine, expire_on_commit=False)
    limiter = AttemptLimiter(sessions)
    return UserService(sessions, limiter, FieldCipher(second_factor_keys)), limiter, engine


def build(settings: GatewaySettings, *, backends: Backends | None = None) -> Components:
    users, limiter, engine = user_service(settings.database_url, settings.second_factor_keys)
    issuer = TokenIssuer(settings.auth_signing_key)
    tokens = Tokens(issuer, Keyring(settings.auth_public_keys), settings.access_token_seconds)
    backends = backends or GrpcBackends(
        registry=settings.registry_target,
        reporting=settings.reporting_target,
        referral=settings.referral_target,
        notify=settings.notify_target,
        tokens=ServiceTokens(issuer, SERVICE_TOKEN_SECONDS),
        benefits=settings.benefits_target,
        timeout_seconds=settings.grpc_timeout_seconds,
        tls=settings.grpc_tls,
    )
    return Components(
        settings=settings,
        engine=engine,
        users=users,
        limiter=limiter,
        tokens=tokens,
        backends=backends,
        towns=TownDirectory(backends, tokens),
    )
