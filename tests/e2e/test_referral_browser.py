"""A referral's life in a real browser (headless Chromium) against the whole portal: every service as its own
process on SQLite, the real local Kafka, the gateway under waitress.

A caseworker reports a child out of school; the education commission's officer finds the referral in the inbox,
sees the minimum facts (never the child's name), returns it with a question; the caseworker answers; the officer
accepts, records progress and completes it; the leading group office sees it in the district's view; the district
administrator previews where a wandering child would be routed and why, and issues and revokes a credential for
the education commission's own system.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from platform_runtime.local_stack import ROOT, SERVICES, Stack, StackConfig, dev_secrets
from platform_runtime.settings import KafkaSettings
from tests.e2e.browsing import goes_to_next_page
from tests.e2e.test_portal_browser import (  # the browser and its steps, shared with the portal's test
    Portal,
    browser,
    fill,
    poll,
    screenshot_on_failure,
    sign_in,
    text_of,
    tick,
)
from tests.support.infra import isolated_kafka_env

pytestmark = pytest.mark.e2e

__all__ = ["browser"]  # a fixture, used by name

TOWN, TOWN_NAME = "110111008", "良乡镇"
PORT_OFFSET = 260  # clear of `make up` (0), the other browser tests (100, 160), the e2e stack (200), bench (300)
USERS = (
    ("edu_officer", "钱老师", "agency_officer", "education"),
    ("office_lgo", "领导小组办公室", "leading_group_office", ""),
    ("district_admin", "区管理员", "district_admin", ""),
)


@pytest.fixture(scope="module")
def portal(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    data_dir = tmp_path_factory.mktemp("referral-stack")
    config = StackConfig(
        data_dir=data_dir,
        kafka_bootstrap=kafka.bootstrap_servers,
        port_offset=PORT_OFFSET,
        extra_env=isolated_kafka_env(kafka),
    )
    stack = Stack(config)
    components = [*SERVICES, "gateway"]
    password = dev_secrets(data_dir)["DEMO_PASSWORD"]
    stack.migrate(components)
    stack.run_once("registry", "onboard-tenant", "--code", TOWN, "--name", TOWN_NAME, "--district", TOWN[:6])
    stack.run_once("gateway", "seed-demo", "--tenant", TOWN, extra_env={"DEMO_PASSWORD": password})
    for username, name, role, agency in USERS:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway",
                "create-user",
                "--username",
                username,
                "--display-name",
                name,
                "--role",
                role,
                "--tenant",
                TOWN,
                "--agency",
                agency,
            ],
            cwd=ROOT,
            env=config.environment("gateway") | {"NEW_USER_PASSWORD": password},
            check=True,
        )
    stack.start(components)
    try:
        stack.wait_healthy(timeout=120)
        yield Portal(f"http://127.0.0.1:{config.gateway_port}", password, data_dir, components)
    finally:
        stack.stop()


def submit(driver: WebDriver, portal: Portal, child_name: str) -> str:
    sign_in(driver, portal, "caseworker")
    driver.get(f"{portal.base_url}/reports/new")
    fill(
        driver,
        {
            "child.name": child_name,
            "child.approximate_age": "13",
            "place.text": "良乡东关村",
            "narrative": f"{child_name}已连续三周未到校上课。",
        },
    )
    tick(driver, "situation_types", "out_of_school")
    driver.find_element(By.ID, "submit-report").click()
    driver.find_element(By.ID, "report-link").click()
    return str(driver.find_element(By.ID, "report").get_attribute("data-report-id"))


def act(driver: WebDriver, action: str, text: str = "") -> None:
    form = driver.find_element(By.ID, f"form-{action}")
    if text:
        field = form.find_element(By.NAME, "text")
        field.clear()
        field.send_keys(text)
    # The form posts and the page comes back: wait for the new one before anyone reads it (slow machines).
    goes_to_next_page(driver, form.find_element(By.ID, f"do-{action}"))


def status(driver: WebDriver) -> str:
    return str(driver.find_element(By.ID, "referral").get_attribute("data-status"))


def test_a_referral_from_report_to_completion_in_the_browser(portal: Portal, browser: WebDriver) -> None:
    child_name = f"测试{uuid.uuid4().hex[:4].upper()}"
    with screenshot_on_failure(browser, portal.data_dir, "referral-lifecycle"):
        report_id = submit(browser, portal, child_name)

        # The education commission's officer: the new referral in the inbox.
        sign_in(browser, portal, "edu_officer")

        def in_inbox() -> str:
            browser.get(f"{portal.base_url}/agency/referrals?view=new")
            rows = browser.find_elements(By.CSS_SELECTOR, "#referrals tr[data-referral-id]")
            return str(rows[0].get_attribute("data-referral-id")) if rows else ""

        referral_id = poll(in_inbox, 90, "the referral in the education officer's inbox")
        browser.get(f"{portal.base_url}/referral/{referral_id}")
        assert status(browser) == "sent"
        facts = text_of(browser, "#case-facts")
        assert "失学" in facts or "out_of_school" in facts
        assert "良乡东关村" in facts and "13" in facts
        assert child_name not in browser.page_source  # the minimum necessary: never the name
        act(browser, "return", "请提供监护人联系方式 the guardian's phone, please")
        assert status(browser) == "returned"

        # The caseworker answers from the referral page.
        sign_in(browser, portal, "caseworker")
        browser.get(f"{portal.base_url}/referrals?report_id={report_id}")
        browser.find_element(By.CSS_SELECTOR, f'tr[data-referral-id="{referral_id}"] a').click()
        act(browser, "answer", "外婆 13900000099")
        assert status(browser) == "sent"

        # The officer accepts, records progress, completes.
        sign_in(browser, portal, "edu_officer")
        browser.get(f"{portal.base_url}/referral/{referral_id}")
        assert "外婆 13900000099" in text_of(browser, "#last-note")
        act(browser, "accept", "劝返小组负责")
        assert status(browser) == "accepted"
        act(browser, "progress", "已家访,家长同意送孩子回校")
        assert status(browser) == "in_progress"
        act(browser, "complete", "已复学 back at school")
        assert status(browser) == "completed"
        assert text_of(browser, "#outcome") == "已复学 back at school"
        actions = [
            row.get_attribute("data-action") for row in browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
        ]
        assert actions == ["open", "send", "return", "answer", "accept", "progress", "complete"]

        # The leading group office sees it among the district's referrals.
        sign_in(browser, portal, "office_lgo")
        browser.find_element(By.ID, "nav-district-referrals").click()
        row = browser.find_element(By.CSS_SELECTOR, f'#referrals tr[data-referral-id="{referral_id}"]')
        assert row.get_attribute("data-status") == "completed"


def test_the_district_administrator_previews_routing_and_manages_credentials(
    portal: Portal, browser: WebDriver
) -> None:
    with screenshot_on_failure(browser, portal.data_dir, "referral-admin"):
        sign_in(browser, portal, "district_admin")
        browser.find_element(By.ID, "nav-routing-rules").click()
        assert browser.find_elements(By.CSS_SELECTOR, '#rule-sets tr[data-version="0"]')
        tick(browser, "situation_types", "wandering")
        tick(browser, "facts", "child_alone", "minor_offences")
        fill(browser, {"age": "7"})
        browser.find_element(By.ID, "preview-button").click()
        routes = browser.find_elements(By.CSS_SELECTOR, "#preview-routes li[data-agency]")
        assert {(r.get_attribute("data-agency"), r.get_attribute("data-rule")) for r in routes} >= {
            ("police", "ESCORT_SECOND_CENTRE"),
            ("city_second_minor_rescue_centre", "RECEIVE_SECOND_CENTRE"),
        }
        skipped = browser.find_element(By.CSS_SELECTOR, '#preview-verdicts tr[data-rule="ESCORT_RESCUE_CENTRE"]')
        assert skipped.get_attribute("data-applied") == "no" and "applied first" in skipped.text

        browser.find_element(By.ID, "nav-credentials").click()
        browser.find_element(
            By.CSS_SELECTOR, '#issue-form select[name="agency_code"] option[value="education"]'
        ).click()
        fill(browser, {"name": "教委学籍系统"})
        goes_to_next_page(browser, browser.find_element(By.ID, "issue-credential"))
        token = browser.find_element(By.ID, "issued-token").get_attribute("value") or ""
        assert token.count(".") == 2  # a signed token, shown this once
        credential_id = text_of(browser, "#issued-id")
        goes_to_next_page(browser, browser.find_element(By.ID, f"revoke-{credential_id}"))
        row = browser.find_element(By.CSS_SELECTOR, f'#credentials tr[data-credential-id="{credential_id}"]')
        assert "已吊销" in row.text
        assert token not in browser.page_source  # never shown again
