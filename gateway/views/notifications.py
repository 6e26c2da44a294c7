"""Notifications in the portal: the inbox with acknowledgement, open crises (who was told when, who
acknowledged), the duty rota and subscriptions (edited by the town administrator), one's own contact details
and preferences, the templates of messages leaving the portal with a preview, and failed deliveries to send
again. Every call goes to the notify service, which decides what the caller may do; this shapes the screens.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import date, datetime
from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from minorprot.common.v1 import common_pb2
from minorprot.notify.v1 import notify_pb2
from werkzeug.wrappers import Response

from gateway import presenters, roles
from gateway.clients import BackendError, Caller
from gateway.security import (
    caller,
    client_ip,
    components,
    csrf_exempt,
    current_user,
    login_required,
    require_role,
)
from platform_runtime.auth import Role
from platform_runtime.vocabulary import CHINA_STANDARD_TIME

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
Page = str | tuple[str, int] | Response

TOWN_ADMINS = frozenset({Role.TOWN_ADMIN})
SIGNED_IN = frozenset(Role) - {Role.PUBLIC}
ROTA_DAYS = 14
# Labels are catalogue keys: the page shows them in its language.
CHANNELS = (("in_app", "站内"), ("email", "邮件"), ("sms", "短信"), ("webhook", "接口"))
RECIPIENT_KINDS = (
    ("role:caseworker", "乡镇社工"),
    ("role:town_admin", "乡镇管理员"),
    ("role:child_director", "儿童主任"),
    ("role:district_officer", "区民政"),
    ("role:leading_group_office", "领导小组办公室"),
    ("responsible", "个案负责人"),
    ("duty_officer", "当日值班人员"),
    ("agency", "相关部门联系方式"),
)


def _call(method: str, message: Any) -> Any:
    return components().backends.notify(caller(), method, message)


def _today() -> date:
    return datetime.now(CHINA_STANDARD_TIME).date()


def _date(value: date) -> common_pb2.Date:
    return common_pb2.Date(year=value.year, month=value.month, day=value.day)


def _is_admin() -> bool:
    return current_user().role in TOWN_ADMINS


# -- the inbox ----------------------------------------------------------------------------------------------


@bp.route("")
@login_required
def inbox() -> Page:
    require_role(SIGNED_IN)
    found = _call("ListInbox", notify_pb2.ListInboxRequest(page_size=100)).notifications
    items = [
        presenters.notification(n)
        | {
            "acknowledged": bool(n.acknowledged_at.seconds),
            "acknowledged_by": n.acknowledged_by,
            "acknowledged_at": presenters.when(n.acknowledged_at) if n.acknowledged_at.seconds else "",
        }
        for n in found
    ]
    return render_template("notify/inbox.html", items=items)


@bp.route("/<notification_id>/acknowledge", methods=["POST"])
@login_required
def acknowledge(notification_id: str) -> Response:
    _call("Acknowledge", notify_pb2.AcknowledgeRequest(notification_id=notification_id))
    return redirect(url_for("notifications.inbox"))


@bp.route("/about/<subject_type>/<subject_id>")
@login_required
def about(subject_type: str, subject_id: str) -> Response:
    """Where the link in an e-mail or SMS leads: the report or the referrals, else the inbox."""
    role = current_user().role
    if subject_type == "report" and role in roles.REPORT_READERS:
        return redirect(url_for("portal.report", report_id=subject_id))
    if subject_type == "referral" and role in roles.REFERRAL_READERS:
        return redirect(url_for("portal.referrals"))
    return redirect(url_for("notifications.inbox"))


# -- crises -------------------------------------------------------------------------------------------------


def _delivery(value: notify_pb2.Delivery) -> dict[str, Any]:
    return {
        "delivery_id": value.delivery_id,
        "event_type": value.event_type,
        "recipient": value.recipient_name or value.recipient,
        "channel": value.channel,
        "status": value.status,
        "attempts": value.attempts,
        "last_error": value.last_error,
        "title": value.title,
        "subject": f"{value.subject_type}:{value.subject_id}",
        "created_at": presenters.when(value.created_at),
        "sent_at": presenters.when(value.sent_at) if value.sent_at.seconds else "",
    }


@bp.route("/crises")
@login_required
def crises() -> Page:
    require_role(SIGNED_IN)
    show_all = request.args.get("all") == "1"
    # Each crisis shows its steps and deliveries: 20 to a page.
    reply = _call(
        "ListCrises",
        notify_pb2.ListCrisesRequest(
            open_only=not show_all, page_size=20, page_token=request.args.get("page", "")[:200]
        ),
    )
    items = [
        {
            "crisis_id": c.crisis_id,
            "report_id": c.report_id,
            "code": c.code,
            "declared_at": presenters.when(c.declared_at),
            "acknowledged": bool(c.acknowledged_at.seconds),
            "acknowledged_at": presenters.when(c.acknowledged_at) if c.acknowledged_at.seconds else "",
            "acknowledged_by": c.acknowledged_by_name or c.acknowledged_by,
            "acknowledged_via": c.acknowledged_via,
            "steps": [
                {
                    "step": s.step,
                    "level": s.level,
                    "recipients": list(s.recipient_names or s.recipients),
                    "told_at": presenters.when(s.told_at),
                }
                for s in c.steps
            ],
            "deliveries": [_delivery(d) for d in c.deliveries],
        }
        for c in reply.crises
    ]
    return render_template("notify/crises.html", items=items, show_all=show_all, next_page=reply.next_page_token)


@bp.route("/crises/<crisis_id>/acknowledge", methods=["POST"])
@login_required
def acknowledge_crisis(crisis_id: str) -> Response:
    _call("AcknowledgeCrisis", notify_pb2.AcknowledgeCrisisRequest(crisis_id=crisis_id))
    return redirect(url_for("notifications.crises", all="1"))


# -- the duty rota ------------------------------------------------------------------------------------------


@bp.route("/rota", methods=["GET", "POST"])
@login_required
def rota() -> Page:
    require_role(SIGNED_IN)
    start = _today()
    current = _call("ListDutyRota", notify_pb2.ListDutyRotaRequest(from_date=_date(start), days=ROTA_DAYS)).days
    errors: list[str] = []
    saved = False
    if request.method == "POST":
        require_role(TOWN_ADMINS)
        for day in current:
            on = date(day.date.year, day.date.month, day.date.day)
            chosen = request.form.get(f"day-{on.isoformat()}", "")
            if chosen != day.user_id:
                try:
                    _call("SetDutyOfficer", notify_pb2.SetDutyOfficerRequest(date=_date(on), user_id=chosen))
                except BackendError as error:
                    errors.append(f"{on.isoformat()}: {error.message}")
        saved = not errors
        current = _call("ListDutyRota", notify_pb2.ListDutyRotaRequest(from_date=_date(start), days=ROTA_DAYS)).days
    people = _call("ListContacts", notify_pb2.ListContactsRequest()).contacts if _is_admin() else []
    days = [
        {
            "date": date(d.date.year, d.date.month, d.date.day).isoformat(),
            "weekday": "一二三四五六日"[date(d.date.year, d.date.month, d.date.day).weekday()],
            "user_id": d.user_id,
            "display_name": d.display_name,
        }
        for d in current
    ]
    return render_template("notify/rota.html", days=days, people=people, admin=_is_admin(), errors=errors, saved=saved)


# -- subscriptions and agencies' contact points ----------------------------------------------------------


@bp.route("/subscriptions", methods=["GET", "POST"])
@login_required
def subscriptions() -> Page:
    require_role(SIGNED_IN)
    errors: list[str] = []
    saved = ""
    if request.method == "POST":
        require_role(TOWN_ADMINS)
        try:
            if request.form.get("form") == "settings":
                minutes = request.form.get("crisis_ack_minutes", "").strip()
                town = notify_pb2.TownSettings(crisis_ack_minutes=int(minutes) if minutes.isdigit() else -1)
                _call("SetTownSettings", notify_pb2.SetTownSettingsRequest(settings=town))
            elif request.form.get("form") == "agency":
                contact = notify_pb2.AgencyContact(
                    agency_code=request.form.get("agency_code", "").strip(),
                    channel=request.form.get("channel", ""),
                    address=request.form.get("address", ""),
                )
                _call("SetAgencyContact", notify_pb2.SetAgencyContactRequest(contact=contact))
            else:
                subscription = notify_pb2.Subscription(
                    event_type=request.form.get("event_type", ""),
                    recipient=request.form.get("recipient", ""),
                    channels=request.form.getlist("channels"),
                )
                _call("SetSubscription", notify_pb2.SetSubscriptionRequest(subscription=subscription))
            saved = "已保存"
        except BackendError as error:
            errors.append(error.message)
    listed = _call("ListSubscriptions", notify_pb2.ListSubscriptionsRequest())
    by_event: dict[str, list[dict[str, Any]]] = {event_type: [] for event_type in listed.event_types}
    for s in listed.subscriptions:
        by_event.setdefault(s.event_type, []).append({"recipient": s.recipient, "channels": list(s.channels)})
    agencies = _call("ListAgencyContacts", notify_pb2.ListAgencyContactsRequest()).contacts if _is_admin() else []
    town = _call("GetTownSettings", notify_pb2.GetTownSettingsRequest()).settings
    return render_template(
        "notify/subscriptions.html",
        event_types=dict(listed.event_types),
        by_event=by_event,
        agencies=agencies,
        town=town,
        channels=CHANNELS,
        recipient_kinds=RECIPIENT_KINDS,
        admin=_is_admin(),
        errors=errors,
        saved=saved,
    )


# -- my contact details --------------------------------------------------------------------------------------


@bp.route("/me", methods=["GET", "POST"])
@login_required
def me() -> Page:
    require_role(SIGNED_IN)
    errors: list[str] = []
    saved = False
    if request.method == "POST":
        contact = notify_pb2.Contact(
            phone=request.form.get("phone", ""),
            email=request.form.get("email", ""),
            channels_off=[c for c in ("email", "sms") if request.form.get(f"off-{c}")],
            quiet_from=request.form.get("quiet_from", ""),
            quiet_until=request.form.get("quiet_until", ""),
            locale=request.form.get("locale", "zh-CN"),
        )
        try:
            _call("UpdateMyContact", notify_pb2.UpdateMyContactRequest(contact=contact))
            saved = True
        except BackendError as error:
            errors = [f"{v.field}: {v.message}" for v in error.violations] or [error.message]
    contact = _call("GetMyContact", notify_pb2.GetMyContactRequest()).contact
    return render_template("notify/me.html", contact=contact, errors=errors, saved=saved)


# -- templates -----------------------------------------------------------------------------------------------


@bp.route("/templates", methods=["GET", "POST"])
@login_required
def templates() -> Page:
    require_role(SIGNED_IN)
    found = _call("ListTemplates", notify_pb2.ListTemplatesRequest()).templates
    event_type = request.values.get("event_type", found[0].event_type if found else "")
    locale = request.values.get("locale", "zh-CN")
    chosen = next((t for t in found if (t.event_type, t.locale) == (event_type, locale)), None)
    subject = request.form.get("subject", chosen.subject if chosen else "")
    text = request.form.get("text", chosen.text if chosen else "")
    errors: list[str] = []
    preview = None
    saved = False
    try:
        if request.method == "POST" and request.form.get("action") == "save":
            require_role(TOWN_ADMINS)
            template = notify_pb2.Template(event_type=event_type, locale=locale, subject=subject, text=text)
            chosen = _call("SetTemplate", notify_pb2.SetTemplateRequest(template=template)).template
            subject, text, saved = chosen.subject, chosen.text, True
        draft = {"subject": subject, "text": text} if request.method == "POST" else {}
        preview = _call(
            "PreviewTemplate", notify_pb2.PreviewTemplateRequest(event_type=event_type, locale=locale, **draft)
        )
    except BackendError as error:
        errors.append(error.message)
    return render_template(
        "notify/templates.html",
        templates=found,
        event_type=event_type,
        locale=locale,
        chosen=chosen,
        subject=subject,
        text=text,
        preview=preview,
        admin=_is_admin(),
        errors=errors,
        saved=saved,
    )


# -- deliveries ----------------------------------------------------------------------------------------------


@bp.route("/deliveries")
@login_required
def deliveries() -> Page:
    require_role(TOWN_ADMINS)
    status = request.args.get("status", "failed")
    found = _call("ListDeliveries", notify_pb2.ListDeliveriesRequest(status=status, page_size=200)).deliveries
    return render_template("notify/deliveries.html", items=[_delivery(d) for d in found], status=status)


@bp.route("/deliveries/<delivery_id>/resend", methods=["POST"])
@login_required
def resend(delivery_id: str) -> Response:
    require_role(TOWN_ADMINS)
    _call("ResendDelivery", notify_pb2.ResendDeliveryRequest(delivery_id=delivery_id))
    return redirect(url_for("notifications.deliveries", status="pending"))


# -- replies to crisis SMS, passed on by the carrier ---------------------------------------------------------

# The gateway's own calls that belong to no town are made as this pseudo-town: the code in the reply tells
# notify which town's crisis it acknowledges.
PLATFORM_TOWN = "000000000"
REPLY_MAX_AGE_SECONDS = 300


@bp.route("/sms/inbound", methods=["POST"])
@csrf_exempt
def sms_inbound() -> tuple[Response, int]:
    """The carrier posts {"from": phone, "text": reply} signed like our webhooks (X-Minorprot-Timestamp,
    X-Minorprot-Signature: v1=HMAC-SHA256(SMS_INBOUND_KEY, "<timestamp>.<body>")); replays are refused."""
    key = components().settings.sms_inbound_key
    if not key:
        return jsonify({"error": "the inbound SMS route is not configured"}), 404
    body = request.get_data()
    stamp = request.headers.get("X-Minorprot-Timestamp", "")
    expected = "v1=" + hmac.new(key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    fresh = stamp.isdigit() and abs(time.time() - int(stamp)) <= REPLY_MAX_AGE_SECONDS
    if not (fresh and hmac.compare_digest(expected, request.headers.get("X-Minorprot-Signature", ""))):
        return jsonify({"error": "bad or stale signature"}), 401
    try:
        reply = json.loads(body)
        sender, text = str(reply["from"])[:30], str(reply["text"])[:500]
    except (ValueError, KeyError, TypeError):
        return jsonify({"error": 'expected {"from": ..., "text": ...}'}), 400
    system = Caller(components().tokens.system_principal(PLATFORM_TOWN), client_ip())
    found = components().backends.notify(
        system, "ReceiveSmsReply", notify_pb2.ReceiveSmsReplyRequest(from_phone=sender, text=text)
    )
    return jsonify({"acknowledged": bool(found.crisis_id)}), 200
