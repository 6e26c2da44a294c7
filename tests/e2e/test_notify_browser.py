"""Notifications in a real browser (headless Chromium) against the notify service and the gateway as their
own processes (SQLite, the real local Kafka, the local stack's mail server and carrier stand-in): people
enter their contact details, the town administrator puts a colleague on the duty rota, changes who is told
of a missed deadline and sets an agency's contact point; a caseworker sees the rota and the rules but cannot
change them; a crisis reaches the caseworker by SMS and e-mail (files in the stack's outbox) and is
acknowledged on the crises page. Each test leaves a screenshot in the stack's data folder."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from confluent_kafka import Producer
from minorprot.reporting.v1 import events_pb2 as reporting_events
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from platform_runtime.events import PendingEvent, to_envelope
from platform_runtime.local_stack import LOCAL_OUTBOX, Stack, StackConfig, dev_secrets
from platform_runtime.outbox import make_producer
from platform_runtime.settings import KafkaSettings
from platform_runtime.topics import REPORTING_REPORT
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from tests.e2e.browsing import goes_to_next_page, headless_chromium, sign_in_as
from tests.support.infra import isolated_kafka_env

pytestmark = pytest.mark.e2e

TOWN, TOWN_NAME = "110111008", "良乡镇"
INBOUND_KEY = os.urandom(32)  # the carrier's key for signing replies, this run only
PORT_OFFSET = 280  # clear of `make up` and of the other browser tests' stacks


@dataclass
class Portal:
    base_url: str
    password: str
    data_dir: Path
    kafka: KafkaSettings
    env: Mapping[str, str]
    producer: Producer | None = None

    def publish(self, event: PendingEvent) -> None:
        """An event as another service's relay would publish it, on this stack's own topics."""
        if self.producer is None:
            self.producer = make_producer(self.kafka, "notify-browser-test")
        producer = self.producer
        envelope = to_envelope(event, uuid.uuid4().hex)
        producer.produce(
            self.env["KAFKA_TOPIC_PREFIX"] + event.topic,
            key=event.key.encode(),
            value=envelope.SerializeToString(),
            headers=[("event_id", envelope.event_id.encode()), ("tenant", event.tenant.encode())],
        )
        assert producer.flush(60) == 0


@pytest.fixture(scope="module")
def portal(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    data_dir = tmp_path_factory.mktemp("stack")
    config = StackConfig(
        data_dir=data_dir,
        kafka_bootstrap=kafka.bootstrap_servers,
        port_offset=PORT_OFFSET,
        extra_env=isolated_kafka_env(kafka) | {"SMS_INBOUND_KEY": base64.b64encode(INBOUND_KEY).decode()},
    )
    stack = Stack(config)
    components = [LOCAL_OUTBOX, "notify", "gateway"]
    password = dev_secrets(data_dir)["DEMO_PASSWORD"]
    stack.migrate(["notify", "gateway"])
    stack.run_once("gateway", "seed-demo", "--tenant", TOWN, extra_env={"DEMO_PASSWORD": password})
    stack.start(components)
    try:
        stack.wait_healthy(timeout=120)
        yield Portal(f"http://127.0.0.1:{config.gateway_port}", password, data_dir, kafka, config.extra_env)
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    with headless_chromium(tmp_path_factory.mktemp("chromium-profile"), (1280, 1600)) as driver:
        yield driver


@contextlib.contextmanager
def recorded(driver: WebDriver, portal: Portal, name: str) -> Iterator[None]:
    folder = portal.data_dir / "screenshots"
    folder.mkdir(exist_ok=True)
    try:
        yield
    except BaseException:
        with contextlib.suppress(WebDriverException):
            driver.save_screenshot(str(folder / f"{name}-failed-{time.strftime('%H%M%S')}.png"))
            print(f"screenshot of the failure in {folder} (page {driver.current_url})")
        raise
    with contextlib.suppress(WebDriverException):
        driver.save_screenshot(str(folder / f"{name}.png"))


def sign_in(driver: WebDriver, portal: Portal, username: str) -> None:
    sign_in_as(driver, portal.base_url, username, portal.password)


def fill(driver: WebDriver, fields: dict[str, str], within: str = "") -> None:
    for name, value in fields.items():
        element = driver.find_element(By.CSS_SELECTOR, f'{within} [name="{name}"]'.strip())
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)


def submit(driver: WebDriver, form_id: str) -> None:
    """Submit and wait for the next page (the old page's button goes stale)."""
    goes_to_next_page(driver, driver.find_element(By.CSS_SELECTOR, f"#{form_id} button[type=submit]"))


def enter_contact_details(driver: WebDriver, portal: Portal, username: str, phone: str, email: str) -> None:
    sign_in(driver, portal, username)
    driver.find_element(By.ID, "nav-notifications").click()
    driver.find_element(By.ID, "nav-me").click()
    fill(driver, {"phone": phone, "email": email, "quiet_from": "22:00", "quiet_until": "07:00"})
    submit(driver, "contact-form")
    assert driver.find_element(By.ID, "saved")
    assert driver.find_element(By.NAME, "phone").get_attribute("value") == phone


TOMORROW = (datetime.now(CHINA_STANDARD_TIME).date() + timedelta(days=1)).isoformat()


def test_the_town_admin_edits_the_duty_rota_and_subscriptions(portal: Portal, browser: WebDriver) -> None:
    with recorded(browser, portal, "notify-admin"):
        enter_contact_details(browser, portal, "caseworker", "13900000001", "caseworker@town.example")
        enter_contact_details(browser, portal, "town_admin", "13900000002", "admin@town.example")

        browser.find_element(By.ID, "nav-rota").click()
        day = Select(browser.find_element(By.NAME, f"day-{TOMORROW}"))
        names = [option.text for option in day.options]
        assert any("王社工" in name for name in names), names
        day.select_by_visible_text(next(name for name in names if "王社工" in name))
        submit(browser, "rota-form")
        assert browser.find_element(By.ID, "saved")
        chosen = Select(browser.find_element(By.NAME, f"day-{TOMORROW}")).first_selected_option.text
        assert "王社工" in chosen

        browser.find_element(By.ID, "nav-subscriptions").click()
        fill(browser, {"event_type": "deadline_breached", "recipient": "duty_officer"}, "#subscription-form")
        browser.find_element(By.CSS_SELECTOR, '#subscription-form input[name="channels"][value="sms"]').click()
        browser.find_element(By.CSS_SELECTOR, '#subscription-form input[name="channels"][value="in_app"]').click()
        submit(browser, "subscription-form")
        assert browser.find_element(By.ID, "saved")
        row = browser.find_element(By.CSS_SELECTOR, 'tr[data-subscription="deadline_breached|duty_officer"]')
        assert row.find_elements(By.TAG_NAME, "td")[2].text == "in_app, sms"

        fill(browser, {"agency_code": "education", "channel": "email", "address": "duty@edu.example"}, "#agency-form")
        submit(browser, "agency-form")
        assert "duty@edu.example" in browser.find_element(By.ID, "agency-contacts").text

        fill(browser, {"crisis_ack_minutes": "10"}, "#settings-form")
        submit(browser, "settings-form")
        assert "10" in browser.find_element(By.ID, "crisis-limit").text

        # Hostile input is refused with the service's reason, and nothing changes.
        fill(browser, {"agency_code": "education", "channel": "webhook", "address": "ftp://x"}, "#agency-form")
        submit(browser, "agency-form")
        assert "webhook" in browser.find_element(By.ID, "errors").text


def test_a_caseworker_sees_the_rota_and_rules_but_cannot_change_them(portal: Portal, browser: WebDriver) -> None:
    with recorded(browser, portal, "notify-caseworker"):
        sign_in(browser, portal, "caseworker")
        browser.get(f"{portal.base_url}/notifications/rota")
        assert "王社工" in browser.find_element(By.ID, "rota-table").text
        assert not browser.find_elements(By.ID, "rota-form")
        browser.get(f"{portal.base_url}/notifications/subscriptions")
        assert browser.find_element(By.CSS_SELECTOR, 'tr[data-subscription="deadline_breached|duty_officer"]')
        assert not browser.find_elements(By.ID, "subscription-form")
        browser.get(f"{portal.base_url}/notifications/deliveries")
        assert "403" in browser.title or "无权" in browser.page_source


def outbox_files(portal: Portal, kind: str, pattern: str) -> list[Path]:
    return sorted((portal.data_dir / "outbox" / kind).glob(pattern))


def eventually(check: Callable[[], list[Path]], timeout: float, what: str) -> list[Path]:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: nothing after {timeout:.0f}s"
        time.sleep(0.5)
    return found


def crisis_declared(portal: Portal) -> str:
    report_id = f"report-{uuid.uuid4().hex[:8]}"
    crisis = reporting_events.CrisisDeclared(
        report_id=report_id,
        division_code=TOWN + "001",
        situation_types=["abandoned_or_uncared"],
        reasons=["abandoned"],
        required_actions=["notify_township_duty_officer", "notify_police"],
    )
    portal.publish(PendingEvent(REPORTING_REPORT, TOWN, "report", report_id, crisis))
    return report_id


def test_replying_to_the_crisis_sms_with_its_code_acknowledges_it(portal: Portal, browser: WebDriver) -> None:
    with recorded(browser, portal, "notify-reply-contact"):
        enter_contact_details(browser, portal, "caseworker", "13900000001", "caseworker@town.example")
    report_id = crisis_declared(portal)

    def texted() -> list[Path]:
        return [p for p in outbox_files(portal, "sms", "*.json") if report_id in p.read_text(encoding="utf-8")]

    sms = json.loads(eventually(texted, 30, "the crisis SMS")[0].read_text(encoding="utf-8"))
    code = re.search(r"回复 (\d{6})", sms["text"]).group(1)  # type: ignore[union-attr]
    body = json.dumps({"from": sms["to"], "text": f"收到 {code}"}, ensure_ascii=False).encode()
    stamp = str(int(time.time()))
    signature = "v1=" + hmac.new(INBOUND_KEY, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(  # noqa: S310 - loopback only
        f"{portal.base_url}/notifications/sms/inbound",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Minorprot-Timestamp": stamp,
            "X-Minorprot-Signature": signature,
        },
    )
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
        assert json.loads(reply.read()) == {"acknowledged": True}

    with recorded(browser, portal, "notify-reply"):
        sign_in(browser, portal, "town_admin")
        browser.get(f"{portal.base_url}/notifications/crises?all=1")
        section = browser.find_element(By.XPATH, f"//section[contains(., '{report_id}')]")
        assert "(sms)" in section.find_element(By.CSS_SELECTOR, ".acknowledged").text


def test_a_crisis_is_texted_and_mailed_and_acknowledged_in_the_portal(portal: Portal, browser: WebDriver) -> None:
    with recorded(browser, portal, "notify-crisis-contact"):
        enter_contact_details(browser, portal, "caseworker", "13900000001", "caseworker@town.example")
    report_id = crisis_declared(portal)

    def texted() -> list[Path]:
        return [p for p in outbox_files(portal, "sms", "*.json") if report_id in p.read_text(encoding="utf-8")]

    texts = eventually(texted, 30, "an SMS at the carrier stand-in")
    sms = [json.loads(path.read_text(encoding="utf-8")) for path in texts]
    assert "13900000001" in {m["to"] for m in sms}
    assert all(f"/notifications/about/report/{report_id}" in m["text"] for m in sms)
    mails = eventually(lambda: outbox_files(portal, "mail", "*.eml"), 30, "an e-mail at the local SMTP server")
    subjects = {message_from_bytes(path.read_bytes(), policy=policy.default)["Subject"] for path in mails}
    assert "【紧急】危机报告,请立即处置" in subjects

    with recorded(browser, portal, "notify-crisis"):
        sign_in(browser, portal, "caseworker")
        browser.find_element(By.ID, "nav-notifications").click()
        browser.find_element(By.ID, "nav-crises").click()
        section = browser.find_element(By.XPATH, f"//section[contains(., '{report_id}')]")
        assert report_id in section.text and "duty_officer" in section.text
        assert "13900000001" not in section.text  # who was told, never their phone numbers
        goes_to_next_page(browser, section.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
        section = browser.find_element(By.XPATH, f"//section[contains(., '{report_id}')]")
        acknowledged = section.find_element(By.CSS_SELECTOR, ".acknowledged").text
        assert "王社工" in acknowledged
        assert "(portal)" in acknowledged
