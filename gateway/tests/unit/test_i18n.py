"""The portal's language: the catalogue is complete in both languages, the switch and Accept-Language choose."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from gateway import errors, handling, intake, presenters, register_codes, security
from gateway.messages import ENGLISH
from gateway.tests.unit.conftest import login
from gateway.tests.unit.fakes import FakeBackends
from gateway.views import auth, benefits, notifications, town_admin
from platform_runtime import vocabulary

TEMPLATES = Path(__file__).parents[2] / "templates"
CHINESE = re.compile(r"[\u3400-\u9fff]")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# `_("...")` in a template: the Chinese text of a message.
MESSAGE = re.compile(r'_\("((?:[^"\\]|\\.)*)"')


def _template_messages() -> set[str]:
    return {m.replace('\\"', '"') for path in TEMPLATES.rglob("*.html") for m in MESSAGE.findall(path.read_text())}


def _code_labels() -> set[str]:
    lists = [value for value in vars(register_codes).values() if isinstance(value, tuple) and value]
    labels = {text for choices in lists if isinstance(choices[0], tuple) for _, text in choices}
    enums = [
        kind
        for kind in vars(vocabulary).values()
        if isinstance(kind, type) and issubclass(kind, vocabulary.LabelledEnum) and kind is not vocabulary.LabelledEnum
    ]
    labels |= {member.label for kind in enums for member in kind}
    labels |= set(errors.TITLES.values())
    labels |= {label for _, label in handling.MILESTONES.values()}
    labels |= {label for _, label in (*notifications.CHANNELS, *notifications.RECIPIENT_KINDS)}
    return labels | {text for text in [*presenters.PRIORITY_LABELS.values(), *intake.SEX_LABELS.values()] if text}


def test_every_catalogue_key_has_both_languages() -> None:
    assert len(ENGLISH) > 500
    for chinese, english in ENGLISH.items():
        assert CHINESE.search(chinese), f"key without Chinese: {chinese!r}"
        assert english.strip() and not CHINESE.search(english), f"{chinese!r} has no English: {english!r}"
        assert sorted(PLACEHOLDER.findall(chinese)) == sorted(PLACEHOLDER.findall(english)), chinese


def test_every_message_of_the_templates_and_every_code_label_is_in_the_catalogue() -> None:
    messages = _template_messages()
    assert len(messages) > 400, "the templates' chrome goes through _()"
    assert sorted(messages - ENGLISH.keys()) == []
    assert sorted(_code_labels() - ENGLISH.keys()) == []


def _language_of(page: str) -> str:
    found = re.search(r'<html lang="([^"]+)"', page)
    assert found
    return found.group(1)


@pytest.mark.parametrize(
    ("accept", "expected"), [("en-US,en;q=0.9", "en"), ("zh-TW,zh;q=0.8", "zh-CN"), ("fr", "zh-CN"), ("", "zh-CN")]
)
def test_a_first_visit_follows_the_browsers_languages(client: FlaskClient, accept: str, expected: str) -> None:
    page = client.get("/login", headers={"Accept-Language": accept}).get_data(as_text=True)
    assert _language_of(page) == expected
    assert ("Sign in" in page) == (expected == "en")


def test_the_switch_is_remembered_over_the_browsers_languages(client: FlaskClient) -> None:
    switched = client.get("/language/zh-CN?next=/login", headers={"Accept-Language": "en"})
    assert switched.status_code == 302 and switched.headers["Location"] == "/login"
    assert "lang=zh-CN" in switched.headers["Set-Cookie"]
    assert _language_of(client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)) == "zh-CN"
    client.get("/language/en?next=/login")
    assert _language_of(client.get("/login").get_data(as_text=True)) == "en"


def test_the_switch_goes_back_only_to_this_site_and_knows_only_its_languages(client: FlaskClient) -> None:
    back = client.get("/language/en", headers={"Referer": "http://localhost/register?village=1"})
    assert back.headers["Location"] == "/register?village=1"
    away = client.get("/language/en?next=https://elsewhere.example/")
    assert away.headers["Location"] == "/" and "lang=en" in away.headers["Set-Cookie"]
    elsewhere = client.get("/language/en", headers={"Referer": "https://elsewhere.example/page"})
    assert elsewhere.headers["Location"] == "/"
    unknown = client.get("/language/fr?next=/login")
    assert "Set-Cookie" not in unknown.headers


def test_the_register_in_english_keeps_the_childrens_names(client: FlaskClient, backends: FakeBackends) -> None:
    backends.add_child("王小明")
    login(client)
    client.get("/language/en")
    page = client.get("/register").get_data(as_text=True)
    assert "Search" in page and "Register" in page and 'id="language-switch"' in page
    assert "王小明" in page, "data stays as entered"
    client.get("/language/zh-CN")
    assert "查找" in client.get("/register").get_data(as_text=True)


# -- flash messages and refusals ------------------------------------------------------------------------------

LATIN = re.compile(r"[A-Za-z]")
FLASH = re.compile(r'<p class="(?:error|notice) flash">([^<]*)</p>')
# The catalogue keys the gateway's Python code passes to `gettext` or shows through `errors.shown`.
PYTHON_MESSAGE = re.compile(r'gettext\(\s*"((?:[^"\\]|\\.)*)"')


def _python_messages() -> set[str]:
    sources = [p for p in Path(__file__).parents[2].rglob("*.py") if "tests" not in p.parts]
    found = {m for path in sources for m in PYTHON_MESSAGE.findall(path.read_text())}
    constants = {security.FORM_EXPIRED, errors.TRY_AGAIN, *errors.TITLES.values()}
    constants |= {auth.LOGIN_FAILED, auth.LOGIN_THROTTLED, auth.CODE_FAILED}
    return found | constants | {benefits.RECONCILED, town_admin.VILLAGES_SAVED}


def test_every_message_of_the_gateways_code_is_in_the_catalogue() -> None:
    messages = _python_messages()
    assert len(messages) > 30
    assert sorted(messages - ENGLISH.keys()) == []


def _flashes(page: str) -> list[str]:
    return FLASH.findall(page)


def _in(client: FlaskClient, language: str) -> None:
    client.get(f"/language/{language}")


def test_a_flash_after_an_action_is_in_the_pages_language_only(client: FlaskClient) -> None:
    login(client, "town_admin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin").get_data(as_text=True))
    assert token
    form = {"csrf_token": token.group(1), "display_name": "", "password": "a long enough passphrase 2026"}

    def add(**fields: str) -> list[str]:
        return _flashes(client.post("/admin/users", data=form | fields, follow_redirects=True).get_data(as_text=True))

    _in(client, "en")
    assert add(username="director_en") == ["Choose a role"]
    assert add(username="director_en", role="child_director", display_name="Qian") == ["User added: Qian"]
    assert add(username="director_en", role="child_director") == ["director_en already exists"]
    _in(client, "zh-CN")
    assert add(username="director_zh") == ["请选择角色"]
    assert add(username="director_zh", role="child_director", display_name="钱主任") == ["已添加用户:钱主任"]
    shown = _flashes(
        client.post(
            "/admin/villages", data={"csrf_token": token.group(1), "villages": "110111008209"}, follow_redirects=True
        ).get_data(as_text=True)
    )
    assert shown and not any(LATIN.search(text) for text in shown), shown


def test_a_forms_refusal_is_in_the_pages_language_only(client: FlaskClient, backends: FakeBackends) -> None:
    child = backends.add_child("孙小雨", school="中心小学", version=3)
    login(client, "child_director")
    page = f"/register/children/{child.child_id}"
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).get_data(as_text=True))
    assert token
    client.post(f"{page}?tab=profile", data={"purpose": "入户走访前查阅", "csrf_token": token.group(1)})
    unchanged = {"csrf_token": token.group(1), "version": "3", "school": "x", "was.school": "x"}
    for language, expected in (("en", ["nothing was changed"]), ("zh-CN", ["没有修改"])):
        _in(client, language)
        refused = client.post(f"{page}/profile", data=unchanged, follow_redirects=True)
        assert _flashes(refused.get_data(as_text=True)) == expected


@pytest.mark.parametrize(("language", "title", "other"), [("en", "Not found", CHINESE), ("zh-CN", "未找到", LATIN)])
def test_an_error_page_is_in_the_pages_language_only(
    client: FlaskClient, language: str, title: str, other: re.Pattern[str]
) -> None:
    _in(client, language)
    page = client.get("/no-such-page").get_data(as_text=True)
    heading = re.search(r"<h1>([^<]*)</h1>", page)
    assert heading and heading.group(1) == title
    expired = client.post("/login", data={"username": "x", "password": "y"})
    message = re.search(r'id="error-message">([^<]*)<', expired.get_data(as_text=True))
    assert expired.status_code == 400 and message and not other.search(message.group(1)), "the form has expired"


@pytest.mark.parametrize(("accept", "message"), [("en", "Not found"), ("zh-CN", "未找到")])
def test_the_apis_error_message_follows_accept_language_and_its_kind_stays_english(
    client: FlaskClient, accept: str, message: str
) -> None:
    reply = client.get("/api/v1/no-such-thing", headers={"Accept-Language": accept})
    assert reply.status_code == 404 and reply.json == {"error": "Not found", "message": message}
