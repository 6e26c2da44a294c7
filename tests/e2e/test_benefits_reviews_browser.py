"""The periodic review (复核) in a real browser, on the benefits portal's stack (tests/e2e/test_benefits_portal.py's
fixtures and steps): a child registered and an allowance applied for and approved in the portal from 13 months
ago is due for its yearly review once the review worker's round has run; the caseworker sees "review due" on the
applications list and the application, and records the review there, which moves the next one a year on.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from urllib.parse import urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from platform_runtime.db import Database
from platform_runtime.vocabulary import CHINA_STANDARD_TIME, china_today
from services.benefits.adapters.orm import metadata
from services.benefits.domain.policy import months_after
from services.benefits.service_layer.applications import Applications
from services.benefits.service_layer.register_events import RegisterFollower
from tests.e2e import test_benefits_portal as stack
from tests.e2e.test_benefits_portal import (
    DOCUMENTS,
    TOWN,
    Portal,
    click,
    screenshot_on_failure,
    sign_in,
    text,
)

pytestmark = pytest.mark.e2e

# The benefits portal's stack and browser, started again for this module (module-scoped fixtures).
portal = stack.portal
browser = stack.browser


def register_in_portal(driver: WebDriver, portal: Portal) -> str:
    """The signed-in caseworker registers a child (no API token: the portal signs for the registry); its id."""
    driver.get(f"{portal.base_url}/register/new")
    driver.find_element(By.NAME, "legal_name").send_keys(f"复核{time.monotonic_ns() % 100000}")
    born = driver.find_element(By.NAME, "birth_date")
    driver.execute_script("arguments[0].value = arguments[1]", born, "2014-09-01")
    click(driver, "#register-child")
    if driver.find_elements(By.ID, "confirm-register"):  # a seeded child looks alike: not the same child
        click(driver, "#confirm-register")
    return last_segment(driver.current_url)


def last_segment(url: str) -> str:
    return urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]


def draft_in_portal(driver: WebDriver, portal: Portal, child: str) -> str:
    """The caseworker drafts the child's application once the benefits service knows the child (from Kafka)."""
    deadline = time.monotonic() + 60
    while True:
        driver.get(f"{portal.base_url}/benefits/applications")
        driver.find_element(By.NAME, "child_id").send_keys(child)
        Select(driver.find_element(By.NAME, "benefit_code")).select_by_value("BLA_ORPHAN")
        driver.find_element(By.NAME, "account_ref").send_keys("6222-0009")
        click(driver, "#new-application button")
        if driver.find_elements(By.ID, "application"):  # the new draft's page
            return last_segment(driver.current_url)
        assert time.monotonic() < deadline, "the benefits service never learnt of the child"
        time.sleep(1)


def test_an_entitlement_due_for_review_shows_in_the_portal_and_the_town_records_the_review(
    portal: Portal, browser: WebDriver
) -> None:
    driver = browser
    with screenshot_on_failure(driver, portal.data_dir, "review"):
        sign_in(driver, portal, "district_admin")  # the sample standards, unless the district has a policy
        click(driver, "#nav-benefits")
        if driver.find_elements(By.CSS_SELECTOR, "#load-sample button"):
            click(driver, "#load-sample button")
        sign_in(driver, portal, "caseworker")
        child = register_in_portal(driver, portal)
        application = draft_in_portal(driver, portal, child)
        application_url = driver.current_url
        for name in DOCUMENTS:
            click(driver, f'#documents input[value="{name}"]', navigates=False)
        click(driver, "#documents button")
        click(driver, "#submit button")
        sign_in(driver, portal, "town_admin")
        driver.get(application_url)
        click(driver, '#town-review button[value="approve"]')
        sign_in(driver, portal, "district_officer")
        driver.get(application_url)
        started = (china_today().replace(day=1) - timedelta(days=370)).replace(day=1)  # 13 months ago
        starts = driver.find_element(By.CSS_SELECTOR, '#district-decision input[name="starts_on"]')
        driver.execute_script("arguments[0].value = arguments[1]", starts, started.isoformat())
        click(driver, '#district-decision button[value="approve"]')
        assert text(driver, "#status") == "approved"
        assert not driver.find_elements(By.ID, "review-due")  # due, but the worker has not marked it yet

        # one round of the supervised review worker (benefits-reviews), on the benefits service's own database
        database = Database.connect(portal.config.environment("benefits")["DATABASE_URL"], metadata)
        try:
            assert RegisterFollower(database, Applications(database)).reviews_due(TOWN) == 1
        finally:
            database.dispose()

        sign_in(driver, portal, "caseworker")
        click(driver, "#nav-benefits")
        row = f'#applications tr[data-application-id="{application}"]'
        assert text(driver, f"{row} .review-due")
        click(driver, f"{row} a")
        assert text(driver, "#review-due")
        click(driver, "#record-review button")
        assert not driver.find_elements(By.ID, "review-due")
        today = datetime.now(CHINA_STANDARD_TIME).date()  # the service's calendar
        assert months_after(today, 12).isoformat() in text(driver, "#review")
