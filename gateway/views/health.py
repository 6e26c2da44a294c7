"""Probes: liveness says the process answers; readiness says it can reach its database."""

from __future__ import annotations

import logging

from flask import Blueprint
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from gateway.security import components

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.route("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    return {"status": "ok"}, 200


@bp.route("/readyz")
def readyz() -> tuple[dict[str, str], int]:
    try:
        with components().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        log.warning("database not reachable", exc_info=True)
        return {"status": "database unreachable"}, 503
    return {"status": "ready"}, 200
