"""A staff member's second factor in a real browser, against the whole platform: a new caseworker is sent
to enrolment after the password (QR code and key on the page), confirms with a first code, gets recovery
codes, and afterwards signs in with a code; a wrong code is refused; the API token needs the code too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.browsing import goes_to_next_page, headless_chromium
from tests.e2e.conftest import RunningStack
from tests.support.infra import PILOT_TENANT
from tests.support.second_factor import fresh_code

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    with headless_chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


def submit(driver: WebDriver) -> None:
    goes_to_next_page(driver, driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))


def password_step(driver: WebDriver, platform: RunningStack, username: str, password: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{platform.base_url}/login")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    submit(driver)


def test_a_new_caseworker_enrols_then_signs_in_with_a_code(platform: RunningStack, browser: WebDriver) -> None:
    username, password = f"sf_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    platform.stack.run_once(
        "gateway",
        "create-user",
        *("--username", username, "--display-name", "新社工", "--role", "caseworker", "--tenant", PILOT_TENANT),
        extra_env={"NEW_USER_PASSWORD": password},
    )
    account = f"{platform.base_url}/{username}"

    password_step(browser, platform, username, password)
    assert browser.current_url.endswith("/login/enrol")
    assert not browser.find_elements(By.ID, "whoami")
    qr = browser.find_element(By.CSS_SELECTOR, "#enrol-qr svg")
    assert qr.size["width"] > 50  # drawn by the gateway, no image fetched from anywhere
    assert browser.find_element(By.ID, "enrol-uri").text.startswith("otpauth://totp/")
    secret = browser.find_element(By.ID, "enrol-secret").text.strip()
    browser.find_element(By.NAME, "code").send_keys("000000" if fresh_code(secret, "probe") != "000000" else "1")
    submit(browser)
    assert browser.find_element(By.ID, "login-error").is_displayed()
    browser.find_element(By.NAME, "code").send_keys(fresh_code(secret, account))
    submit(browser)
    recovery = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#recovery-codes code")]
    assert len(recovery) == 10
    goes_to_next_page(browser, browser.find_element(By.ID, "continue"))
    assert browser.find_elements(By.ID, "whoami")

    # The next sign-in asks for a code; a used code is refused, a fresh one and a recovery code are accepted.
    password_step(browser, platform, username, password)
    assert browser.current_url.endswith("/login/code")
    browser.find_element(By.NAME, "code").send_keys(fresh_code(secret, account))
    submit(browser)
    assert browser.find_elements(By.ID, "whoami")
    password_step(browser, platform, username, password)
    browser.find_element(By.NAME, "code").send_keys(recovery[0])
    submit(browser)
    assert browser.find_elements(By.ID, "whoami")
    password_step(browser, platform, username, password)
    browser.find_element(By.NAME, "code").send_keys(recovery[0])
    submit(browser)
    assert not browser.find_elements(By.ID, "whoami") and browser.find_element(By.ID, "login-error")

    # The API: the password alone is not enough for this role.
    status, _ = platform.call("POST", "/api/v1/token", body={"username": username, "password": password})
    assert status == 401
    body = {"username": username, "password": password, "code": fresh_code(secret, account)}
    status, reply = platform.call("POST", "/api/v1/token", body=body)
    assert status == 200 and reply["access_token"]
