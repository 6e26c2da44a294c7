"""Signing in and out of the portal."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from gateway.accounts import LoginFailed, LoginThrottled
from gateway.limits import LOGIN_FAILURES
from gateway.security import client_ip, components, safe_next, sign_in, sign_out

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "用户名或密码错误 Wrong username or password."
LOGIN_THROTTLED = f"尝试次数过多,请{LOGIN_FAILURES.window_seconds // 60}分钟后再试 Too many attempts: try again later."


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "")
    try:
        user = components().users.authenticate(username, request.form.get("password", ""), client_ip())
    except LoginThrottled:
        return render_template("login.html", error=LOGIN_THROTTLED, username=username), 429
    except LoginFailed:
        return render_template("login.html", error=LOGIN_FAILED, username=username), 401
    sign_in(user)
    return redirect(safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    sign_out()
    return redirect(url_for("auth.login"))
