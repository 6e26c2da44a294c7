"""Public pages, without an account: report a child in difficulty to a town, and look up a receipt."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from gateway import intake, presenters, public, roles
from gateway.clients import BackendError
from gateway.security import client_ip, components
from platform_runtime.errors import InvalidInput
from platform_runtime.vocabulary import Channel, Fact

bp = Blueprint("public", __name__, url_prefix="/public")


def _form(town: Any, values: dict[str, Any], errors: dict[str, list[str]]) -> str:
    return render_template(
        "public_report.html",
        town=town,
        values=values,
        errors=errors,
        channels=intake.choices(roles.PUBLIC_CHANNELS),
        situation_groups=intake.SITUATION_GROUPS,
        facts=intake.choices(Fact),
        sexes=intake.SEX_CHOICES,
    )


@bp.route("/<town_code>/report", methods=["GET", "POST"])
def report(town_code: str) -> str | tuple[str, int]:
    town = public.town(components(), town_code, client_ip())
    if request.method == "GET":
        defaults = {
            "channel": Channel.PUBLIC_ANONYMOUS.value,
            "occurred_at": intake.now_for_form(),
            intake.IDEMPOTENCY_FIELD: intake.new_idempotency_key(),
        }
        return _form(town, defaults | {"situation_types": [], "facts": []}, {})
    payload = intake.payload_from_form(request.form)
    try:
        key = request.form.get(intake.IDEMPOTENCY_FIELD)
        reply = public.submit(components(), town.code, payload, client_ip(), key)
    except (InvalidInput, BackendError) as exc:
        errors = intake.form_errors(exc)
        if errors is None:
            raise
        return _form(town, payload, errors), 400
    sending = intake.receipt_asked(payload)
    return render_template("public_receipt.html", town=town, receipt=presenters.public_receipt(reply), sending=sending)


@bp.route("/receipt", methods=["GET", "POST"])
def receipt() -> str | tuple[str, int]:
    if request.method == "GET":
        return render_template("public_lookup.html", result=None, error="")
    try:
        reply = public.lookup(components(), request.form.get("receipt_number", ""), client_ip())
    except InvalidInput as exc:
        return render_template("public_lookup.html", result=None, error=str(exc)), 400
    except BackendError as exc:
        if exc.code not in ("INVALID_ARGUMENT", "NOT_FOUND"):
            raise
        return render_template("public_lookup.html", result=None, error=exc.message), 404
    return render_template("public_lookup.html", result=presenters.receipt_status(reply), error="")
