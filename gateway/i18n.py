"""The portal's two languages: zh-CN (the default, the staff's language) and English.

Pages are written in Chinese and every piece of chrome goes through `_()`: the Chinese text is the message's
key, `gateway.messages.ENGLISH` its English. The registry's and the vocabulary's code labels are keys too, so
one catalogue serves headings, buttons, table headers, messages and code lists. Data (names, addresses,
narratives) never goes through `_()` and stays as entered.

The language is chosen by the `lang` cookie (set by the switch in the header, kept for a year and across
sign-in and sign-out), else by the browser's Accept-Language on a first visit, else zh-CN.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, Flask, current_app, g, redirect, request
from werkzeug.wrappers import Response

from gateway.messages import ENGLISH
from gateway.security import safe_next

CHINESE, ENGLISH_LANGUAGE = "zh-CN", "en"
LANGUAGES = (CHINESE, ENGLISH_LANGUAGE)
COOKIE = "lang"
_ONE_YEAR = 365 * 24 * 3600

bp = Blueprint("language", __name__)


def current_language() -> str:
    """The language of this request's page (cached on `g`)."""
    if "language" not in g:
        chosen = request.cookies.get(COOKIE, "")
        if chosen not in LANGUAGES:
            # Werkzeug matches `en-US` to `en` and `zh` or `zh-TW` to `zh-CN` by their primary tag.
            chosen = request.accept_languages.best_match(LANGUAGES, default=CHINESE) or CHINESE
        g.language = chosen
    return str(g.language)


def gettext(message: str, **values: object) -> str:
    """`message` (Chinese) in the page's language, its `%(name)s` filled from `values`; text that is not in
    the catalogue (data) is returned as it is."""
    text = ENGLISH.get(message, message) if current_language() == ENGLISH_LANGUAGE else message
    return text % values if values else text


@bp.route("/language/<code>")
def switch(code: str) -> Response:
    """The header's switch: remember the language and go back to the page it was clicked on (`next`, else the
    referring page of this site; the link carries no path, so a page's own links stay the only ones in it)."""
    referrer = urlsplit(request.referrer or "")
    back = urlunsplit(("", "", referrer.path, referrer.query, "")) if referrer.netloc == request.host else None
    response = redirect(safe_next(request.args.get("next") or back))
    if code in LANGUAGES:
        response.set_cookie(
            COOKIE,
            code,
            max_age=_ONE_YEAR,
            httponly=True,
            samesite="Lax",
            secure=current_app.config["SESSION_COOKIE_SECURE"],
        )
    return response


def install(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals.update(_=gettext, current_language=current_language, LANGUAGES=LANGUAGES)
