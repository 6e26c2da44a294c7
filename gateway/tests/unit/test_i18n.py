"""The portal's language: the catalogue is complete in both languages, the switch and Accept-Language choose."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from gateway import errors, intake, presenters, register_codes
from gateway.messages import ENGLISH
from gateway.tests.unit.conftest import login
from gateway.tests.unit.fakes import FakeBackends
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
    labels |= {title.split(" ", 1)[0] for title in errors.TITLES.values()}
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
