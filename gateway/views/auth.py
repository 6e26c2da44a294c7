"""Signing in and out of the portal: the password, then for the roles that need it the second factor
(a code from the authenticator, or a recovery code), enrolling one first if the user has none."""

from __future__ import annotations

import time

from flask import Blueprint, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from gateway import second_factor
from gateway.accounts import LoginFailed, LoginThrottled, User
from gateway.i18n import gettext
from gateway.limits import LOGIN_FAILURES
from gateway.security import CSRF_KEY, client_ip, components, safe_next, sign_in, sign_out

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "用户名或密码错误"
LOGIN_THROTTLED = "尝试次数过多,请 %(minutes)s 分钟后再试"
CODE_FAILED = "验证码错误或已使用,请等下一个验证码"
# Between the password and the code: who typed the right password, when, and where they were going.
_PENDING_USER, _PENDING_AT, _PENDING_NEXT, _ENROL_SECRET = "pending_user", "pending_at", "pending_next", "enrol_secret"
PENDING_SECONDS = 5 * 60


def _throttled() -> str:
    return gettext(LOGIN_THROTTLED, minutes=LOGIN_FAILURES.window_seconds // 60)


Page = str | Response | tuple[str, int]


@bp.after_request
def _not_cached(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # the enrolment and recovery pages show secrets
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Page:
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "")
    try:
        user = components().users.authenticate(username, request.form.get("password", ""), client_ip())
    except LoginThrottled:
        return render_template("login.html", error=_throttled(), username=username), 429
    except LoginFailed:
        return render_template("login.html", error=gettext(LOGIN_FAILED), username=username), 401
    target = safe_next(request.form.get("next"))
    if not second_factor.required_for(user.role):
        sign_in(user)
        return redirect(target)
    # Not signed in yet: the signed session cookie remembers the password step for a few minutes.
    csrf = session.get(CSRF_KEY)
    session.clear()
    session.update({_PENDING_USER: user.user_id, _PENDING_AT: time.time(), _PENDING_NEXT: target, CSRF_KEY: csrf})
    enrolled = components().users.is_enrolled(user.user_id)
    return redirect(url_for("auth.code" if enrolled else "auth.enrol"))


def _pending_user() -> User | None:
    user_id, at = session.get(_PENDING_USER), float(session.get(_PENDING_AT, 0))
    if not user_id or at + PENDING_SECONDS < time.time():
        return None
    return components().users.active_user(str(user_id))


def _finish(user: User) -> str:
    target = str(session.get(_PENDING_NEXT) or url_for("portal.home"))
    sign_in(user)  # clears the pending state
    return target


@bp.route("/login/code", methods=["GET", "POST"])
def code() -> Page:
    user = _pending_user()
    if user is None:
        return redirect(url_for("auth.login"))
    if request.method == "GET":
        return render_template("login_code.html")
    try:
        components().users.verify_second_factor(user, request.form.get("code", ""), client_ip())
    except LoginThrottled:
        return render_template("login_code.html", error=_throttled()), 429
    except LoginFailed:
        return render_template("login_code.html", error=gettext(CODE_FAILED)), 401
    return redirect(_finish(user))


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol() -> Page:
    """The first sign-in of a user whose role needs a second factor: scan, confirm with a first code."""
    user = _pending_user()
    if user is None:
        return redirect(url_for("auth.login"))
    if components().users.is_enrolled(user.user_id):
        return redirect(url_for("auth.code"))
    # Kept in the signed (not encrypted) cookie until confirmed: only the user's own browser sees it, as on the page.
    secret = session.setdefault(_ENROL_SECRET, second_factor.new_secret())
    uri = second_factor.provisioning_uri(secret, user.username)
    page = {"secret": secret, "uri": uri, "qr_svg": second_factor.qr_svg(uri)}
    if request.method == "GET":
        return render_template("login_enrol.html", **page)
    try:
        recovery_codes = components().users.enrol_second_factor(user, secret, request.form.get("code", ""), client_ip())
    except LoginThrottled:
        return render_template("login_enrol.html", error=_throttled(), **page), 429
    except LoginFailed:
        return render_template("login_enrol.html", error=gettext(CODE_FAILED), **page), 401
    target = _finish(user)
    return render_template("login_recovery_codes.html", recovery_codes=recovery_codes, next=target)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    sign_out()
    return redirect(url_for("auth.login"))
