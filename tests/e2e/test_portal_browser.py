"""The portal in a real browser (Debian's headless Chromium through chromedriver) against the whole portal:
every service as its own process on SQLite, the real local Kafka, the gateway under waitress.

One town's caseworker reports a child and gets a receipt, then a referral notification in the inbox; a
member of the public reports anonymously (asking for the receipt number by SMS) and looks the receipt up
without seeing any child data; a hotline caller's receipt number is texted to the number the caseworker typed; a caseworker of another town sees nothing of the first town's report. A failing step leaves a screenshot
(PNG) in the test's data folder.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from platform_runtime.local_stack import LOCAL_OUTBOX, ROOT, SERVICES, Stack, StackConfig, dev_secrets
from platform_runtime.settings import KafkaSettings
from tests.e2e.browsing import goes_to_next_page, headless_chromium, sign_in_as
from tests.support.infra import isolated_kafka_env
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

TOWN, TOWN_NAME = "110111008", "良乡镇"
OTHER_TOWN, OTHER_TOWN_NAME = "110111009", "周口店地区"
OTHER_USER = "zkd_caseworker"
PORT_OFFSET = 100  # clear of a `make up` running on the default ports
RECEIPT = re.compile(r"R-[0-9A-Z]{7}-[0-9A-Z]{7}-[0-9A-Z]{7}")


@dataclass
class Portal:
    base_url: str
    password: str
    data_dir: Path
    components: list[str]


@pytest.fixture(scope="module")
def portal(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    data_dir = tmp_path_factory.mktemp("stack")
    config = StackConfig(
        data_dir=data_dir,
        kafka_bootstrap=kafka.bootstrap_servers,
        port_offset=PORT_OFFSET,
        # Consumer groups of their own: events of other stacks on the shared broker are not ours to take.
        extra_env=isolated_kafka_env(kafka),
    )
    stack = Stack(config)
    components = [*SERVICES, "gateway"]
    password = dev_secrets(data_dir)["DEMO_PASSWORD"]

    stack.migrate(components)
    for code, name in ((TOWN, TOWN_NAME), (OTHER_TOWN, OTHER_TOWN_NAME)):
        stack.run_once("registry", "onboard-tenant", "--code", code, "--name", name, "--district", code[:6])
    stack.run_once("gateway", "seed-demo", "--tenant", TOWN, extra_env={"DEMO_PASSWORD": password})
    subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "create-user",
            "--username",
            OTHER_USER,
            "--display-name",
            "周社工",
            "--role",
            "caseworker",
            "--tenant",
            OTHER_TOWN,
        ],
        cwd=ROOT,
        env=config.environment("gateway") | {"NEW_USER_PASSWORD": password},
        check=True,
    )
    stack.start([LOCAL_OUTBOX, *components])  # the local carrier and mail server: receipts leave by SMS
    try:
        stack.wait_healthy(timeout=120)
        yield Portal(f"http://127.0.0.1:{config.gateway_port}", password, data_dir, components)
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    with headless_chromium(tmp_path_factory.mktemp("chromium-profile"), (1280, 2400)) as driver:
        yield driver


@contextlib.contextmanager
def screenshot_on_failure(driver: WebDriver, folder: Path, name: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        path = folder / f"{name}-{time.strftime('%H%M%S')}.png"
        with contextlib.suppress(WebDriverException):
            driver.save_screenshot(str(path))
            print(f"screenshot of the failure: {path} (page {driver.current_url})")
        raise


# -- browser steps ----------------------------------------------------------------------------------------


def text_of(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text.strip())


def fill(driver: WebDriver, fields: dict[str, str]) -> None:
    for name, value in fields.items():
        element = driver.find_element(By.NAME, name)
        element.clear()
        element.send_keys(value)


def tick(driver: WebDriver, name: str, *values: str) -> None:
    for value in values:
        driver.find_element(By.CSS_SELECTOR, f'input[name="{name}"][value="{value}"]').click()


def sign_in(driver: WebDriver, portal: Portal, username: str) -> None:
    sign_in_as(driver, portal.base_url, username, portal.password)


def poll(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: nothing after {timeout:.0f}s")
        time.sleep(2)


@dataclass(frozen=True)
class Submitted:
    receipt: str
    report_id: str
    child_name: str
    narrative: str


@pytest.fixture(scope="module")
def caseworker_report(portal: Portal, browser: WebDriver) -> Submitted:
    """The caseworker of the pilot town reports a child found wandering alone at the station."""
    child_name = f"测试{uuid.uuid4().hex[:4].upper()}"
    narrative = f"{child_name}在良乡火车站候车室独自徘徊两天,无成年人陪伴。"
    with screenshot_on_failure(browser, portal.data_dir, "caseworker-report"):
        sign_in(browser, portal, "caseworker")
        browser.get(f"{portal.base_url}/reports/new")
        fill(
            browser,
            {
                "child.name": child_name,
                "child.approximate_age": "9",
                "place.text": "良乡火车站候车室",
                "narrative": narrative,
            },
        )
        tick(browser, "situation_types", "wandering")
        tick(browser, "facts", "child_alone")
        browser.find_element(By.ID, "submit-report").click()
        receipt = text_of(browser, "#receipt-number")
        assert RECEIPT.fullmatch(receipt), browser.page_source
        assert browser.find_element(By.ID, "urgency").get_attribute("data-code") == "crisis"
        assert browser.find_elements(By.ID, "crisis"), "a child wandering alone is a crisis"
        browser.find_element(By.ID, "report-link").click()
        report_id = str(browser.find_element(By.ID, "report").get_attribute("data-report-id"))
        assert child_name in text_of(browser, "#child-name")
    return Submitted(receipt, report_id, child_name, narrative)


# -- the tests --------------------------------------------------------------------------------------------


def test_caseworker_reports_a_child_and_gets_a_receipt(portal: Portal, browser: WebDriver, caseworker_report):
    with screenshot_on_failure(browser, portal.data_dir, "reports-list"):
        sign_in(browser, portal, "caseworker")
        browser.get(f"{portal.base_url}/reports")
        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-report-id="{caseworker_report.report_id}"]')
        assert caseworker_report.child_name in row.text


def test_the_inbox_shows_the_referral_notification(portal: Portal, browser: WebDriver, caseworker_report):
    with screenshot_on_failure(browser, portal.data_dir, "inbox"):
        sign_in(browser, portal, "caseworker")

        def referral_notice() -> str:
            browser.get(f"{portal.base_url}/")
            for item in browser.find_elements(By.CSS_SELECTOR, '#inbox li[data-subject^="referral:"]'):
                if caseworker_report.report_id in item.text:
                    return str(item.text)
            return ""

        notice = poll(referral_notice, 90, "referral notification in the caseworker's inbox")
        assert "新转介" in notice
        assert caseworker_report.child_name not in notice  # notifications never name the child
        browser.get(f"{portal.base_url}/referrals?report_id={caseworker_report.report_id}")
        assert browser.find_elements(By.CSS_SELECTOR, "#referrals tr[data-referral-id]")


def test_the_crisis_reports_page_shows_who_was_alerted(portal: Portal, browser: WebDriver, caseworker_report):
    """Notify alerts the town's chain; reporting keeps the step from notify's event; the report page shows it."""
    with screenshot_on_failure(browser, portal.data_dir, "crisis-steps"):
        sign_in(browser, portal, "caseworker")

        def alerted() -> str:
            browser.get(f"{portal.base_url}/reports/{caseworker_report.report_id}")
            found = browser.find_elements(By.CSS_SELECTOR, '#crisis-steps li[data-kind="alerted"]')
            return str(found[0].text) if found else ""

        step = poll(alerted, 90, "the crisis alert on the report's timeline")
        # Nobody is on the rota: the duty officer's step goes to the town administrator (named by role).
        assert "告警已发送至" in step and "当日值班人员" in step and "乡镇管理员" in step


def test_a_hotline_callers_receipt_number_is_texted_when_the_caller_asks(portal: Portal, browser: WebDriver) -> None:
    phone = f"137{uuid.uuid4().int % 10**8:08d}"
    with screenshot_on_failure(browser, portal.data_dir, "hotline-receipt"):
        sign_in(browser, portal, "caseworker")
        browser.get(f"{portal.base_url}/reports/new")
        fill(
            browser,
            {
                "child.name": f"来电{uuid.uuid4().hex[:4].upper()}",
                "place.text": "良乡镇西关村",
                "narrative": "来电人称邻居家的孩子连续几天没有上学,家中无人照看。",
            },
        )
        tick(browser, "situation_types", "abandoned_or_uncared")
        consent = browser.find_element(By.ID, "receipt-consent")
        assert not consent.is_selected()  # only when the caller asks
        consent.click()
        fill(browser, {"receipt_contact.address": phone})
        browser.find_element(By.ID, "submit-report").click()
        receipt = text_of(browser, "#receipt-number")
        assert RECEIPT.fullmatch(receipt), browser.page_source
        assert text_of(browser, "#receipt-sending") == "回执编号将通过短信或邮件发送给报告人。"

    def texted() -> list[dict[str, Any]]:
        found = [
            json.loads(path.read_text(encoding="utf-8")) for path in (portal.data_dir / "outbox" / "sms").glob("*.json")
        ]
        return [message for message in found if message.get("to") == phone]

    texts = eventually(texted, 60, "the receipt SMS at the carrier stand-in")
    assert len(texts) == 1 and receipt in texts[0]["text"]


def test_public_reports_anonymously_and_the_receipt_shows_no_child_data(
    portal: Portal, browser: WebDriver, caseworker_report
):
    description = f"穿红色外套的小女孩{uuid.uuid4().hex[:4]}"
    place = "琉璃河大桥下"
    with screenshot_on_failure(browser, portal.data_dir, "public-report"):
        browser.delete_all_cookies()
        browser.get(f"{portal.base_url}/public/{TOWN}/report")
        assert TOWN_NAME in browser.page_source
        assert browser.find_element(By.CSS_SELECTOR, 'input[name="channel"][value="public_anonymous"]').is_selected()
        fill(
            browser,
            {
                "child.description": description,
                "place.text": place,
                "narrative": "连续三个晚上看到她独自在桥下过夜,没有大人照看。",
            },
        )
        tick(browser, "situation_types", "abandoned_or_uncared")
        # The receipt by SMS is asked for explicitly: the box starts unticked, and the number given for it
        # does not make the report named.
        consent = browser.find_element(By.ID, "receipt-consent")
        assert not consent.is_selected()
        consent.click()
        fill(browser, {"receipt_contact.address": "13700000099"})
        browser.find_element(By.ID, "submit-public-report").click()
        receipt = text_of(browser, "#receipt-number")
        assert RECEIPT.fullmatch(receipt), browser.page_source
        assert description not in browser.page_source
        assert text_of(browser, "#receipt-sending") == "回执编号将通过短信或邮件发送给您。"

        for number, hidden in (
            (receipt, (description, place)),
            (caseworker_report.receipt, (caseworker_report.child_name,)),
        ):
            browser.get(f"{portal.base_url}/public/receipt")
            fill(browser, {"receipt_number": number})
            goes_to_next_page(browser, browser.find_element(By.CSS_SELECTOR, "#lookup-form button[type=submit]"))
            assert text_of(browser, "#status") in {"已受理", "处理中", "已办结"}
            page = browser.page_source
            for secret in hidden:
                assert secret not in page


def test_a_caseworker_triages_a_public_report_before_any_agency_gets_it(portal: Portal, browser: WebDriver):
    child_name = f"桥下{uuid.uuid4().hex[:4].upper()}"
    with screenshot_on_failure(browser, portal.data_dir, "public-triage"):
        browser.delete_all_cookies()
        browser.get(f"{portal.base_url}/public/{TOWN}/report")
        fill(
            browser,
            {
                "child.name": child_name,
                "place.text": "琉璃河大桥下",
                "narrative": "连续三个晚上看到这个孩子独自在桥下过夜,没有大人照看。",
            },
        )
        tick(browser, "situation_types", "abandoned_or_uncared")  # a police matter by the routing rules
        goes_to_next_page(browser, browser.find_element(By.ID, "submit-public-report"))
        assert RECEIPT.fullmatch(text_of(browser, "#receipt-number")), browser.page_source

        sign_in(browser, portal, "caseworker")
        browser.get(f"{portal.base_url}/reports")
        (row,) = [
            r for r in browser.find_elements(By.CSS_SELECTOR, "#reports tr[data-report-id]") if child_name in r.text
        ]
        assert "待人工分诊" in row.text
        report_id = str(row.get_attribute("data-report-id"))
        goes_to_next_page(browser, row.find_element(By.TAG_NAME, "a"))
        assert browser.find_element(By.ID, "person-triage").get_attribute("data-state") == "awaiting"

        goes_to_next_page(browser, browser.find_element(By.ID, "triage-confirm"))

        assert browser.find_element(By.ID, "person-triage").get_attribute("data-state") == "confirmed"
        assert not browser.find_elements(By.ID, "triage-form")

        def referrals_opened() -> bool:
            browser.get(f"{portal.base_url}/referrals?report_id={report_id}")
            return bool(browser.find_elements(By.CSS_SELECTOR, "#referrals tr[data-referral-id]"))

        poll(referrals_opened, 90, "the agencies' referrals once the report is confirmed")


def test_another_towns_caseworker_cannot_see_the_report(portal: Portal, browser: WebDriver, caseworker_report):
    with screenshot_on_failure(browser, portal.data_dir, "other-town"):
        sign_in(browser, portal, OTHER_USER)
        assert OTHER_TOWN in text_of(browser, "#whoami")
        browser.get(f"{portal.base_url}/reports")
        assert browser.find_elements(By.ID, "reports")
        assert caseworker_report.child_name not in browser.page_source
        assert caseworker_report.report_id not in browser.page_source
        browser.get(f"{portal.base_url}/reports/{caseworker_report.report_id}")
        assert "未找到" in browser.title
        assert caseworker_report.narrative not in browser.page_source
