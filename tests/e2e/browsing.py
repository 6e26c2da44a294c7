"""Waiting for the browser to reach the next page, one way for every browser test.

Selenium's `staleness_of` asks Chromium about an element of the old page; since Chromium 156 that question,
asked mid-navigation, may be answered with an inspector error ("Node with given id does not belong to the
document") instead of "stale", and a test failed on a page that had loaded fine. Here the old page's window
is marked before the click, and the wait is over when a window without the mark has finished loading: it
asks only the document, never a node.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from gateway.app import SESSION_COOKIE
from tests.support.second_factor import demo_code, enrolled

_MARK = "__leftBehind"


def _arrived(driver: WebDriver) -> bool:
    try:
        return bool(driver.execute_script(f"return window.{_MARK} === undefined && document.readyState === 'complete'"))
    except WebDriverException:  # asked while the next document is still being committed: ask again
        return False


def goes_to_next_page(driver: WebDriver, action: WebElement | Callable[[], object], timeout: float = 60) -> None:
    """Click `action` (or call it) and wait until the page it navigates to has loaded."""
    driver.execute_script(f"window.{_MARK} = true")
    if isinstance(action, WebElement):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", action)
        action.click()
    else:
        action()
    WebDriverWait(driver, timeout).until(_arrived)


CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@contextlib.contextmanager
def headless_chromium(profile: Path, window: tuple[int, int] | None = (1280, 2400)) -> Iterator[WebDriver]:
    """Debian's Chromium and chromedriver (scripts/install-browser.sh), headless, with its own profile."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.fail("Chromium and chromedriver are needed: run scripts/install-browser.sh")
    options = Options()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    if window:
        options.add_argument(f"--window-size={window[0]},{window[1]}")
    options.add_argument(f"--user-data-dir={profile}")
    # The portal follows Accept-Language on a first visit: the browser speaks the staff's language, as theirs do.
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(60)
    # A loaded CI machine may still be rendering the next page when the test looks for an element.
    driver.implicitly_wait(10)
    try:
        yield driver
    finally:
        driver.quit()


# (portal, username) -> the session cookie of the user's last sign-in. A person's browser stays signed in; and a
# second-factor code is good once, so signing in afresh for every test waited up to half a minute each time.
_sessions: dict[tuple[str, str], dict[str, Any]] = {}


def sign_in_as(driver: WebDriver, base_url: str, username: str, password: str) -> None:
    """Sign in as a person does: the password, then the authenticator's code when the role needs one (enrolling
    first if the user has none yet). The demo users' codes come from their password (tests.support.second_factor).
    A user signed in before on this portal is signed in again with the session the portal gave then, while it
    is still good; no other cookie (the language) comes back with it."""
    driver.delete_all_cookies()
    if (kept := _sessions.get((base_url, username))) is not None:
        driver.get(f"{base_url}/login")
        driver.add_cookie(kept)
        driver.get(f"{base_url}/")
        if "/login" not in driver.current_url and driver.find_elements(By.ID, "whoami"):
            return
        driver.delete_all_cookies()
    driver.get(f"{base_url}/login")
    for name, value in {"username": username, "password": password}.items():
        field = driver.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    goes_to_next_page(driver, driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    account = f"{base_url}/{username}"
    if "/login/code" in driver.current_url:
        driver.find_element(By.NAME, "code").send_keys(demo_code(password, account))
        goes_to_next_page(driver, driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    elif "/login/enrol" in driver.current_url:  # a user the test made: scans the key as a person would
        secret = driver.find_element(By.ID, "enrol-secret").text.strip()
        driver.find_element(By.NAME, "code").send_keys(enrolled(secret, account))
        goes_to_next_page(driver, driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
        goes_to_next_page(driver, driver.find_element(By.ID, "continue"))  # past the recovery codes
    assert driver.find_elements(By.ID, "whoami"), f"{username} could not sign in"
    if (session := driver.get_cookie(SESSION_COOKIE)) is not None:
        _sessions[(base_url, username)] = session
