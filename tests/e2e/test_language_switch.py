"""The portal in English and back, in a real browser (headless Chromium) against the whole platform.

Each seeded role of the pilot town signs in (the browser asks for zh-CN, so the pages are Chinese), switches
to English with the header's switch, and walks every page its menu offers (the caseworker also every tab of a
seeded child's case file), then an error page (the town administrator also a refused form's flash): no
Chinese may be left in the chrome — the text, the page title, placeholders, labels and the cards'
`data-label`s. Data (names, villages, the town) is marked `translate="no"` and stays as entered. Switching
back restores zh-CN. One role does it at a phone's width (360 px), where the switch must be on screen.
Screenshots of the English pages are kept in the stack's data folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.browsing import goes_to_next_page, headless_chromium, sign_in_as
from tests.e2e.conftest import RunningStack
from tests.support.infra import PILOT_TENANT

pytestmark = pytest.mark.e2e

DESKTOP, PHONE = (1280, 1000), (360, 780)
ROLES = (
    "caseworker",
    "child_director",
    "town_admin",
    "district_officer",
    "teacher",
    "police_officer",
    "finance_auditor",
)
CHINESE = re.compile(r"[\u3400-\u9fff]+")
# Every visible text and every attribute a person reads or hears, outside what is marked as data.
CHROME_TEXT = """
const data = (node) => node.closest('[translate="no"]');
const found = [];
let title = document.title;  // a page's title may name its data (a child's case file): take that out
for (const element of document.querySelectorAll('[translate="no"]')) title = title.replace(element.textContent.trim(), '');
if (/[\\u3400-\\u9fff]/.test(title)) found.push('title: ' + document.title);
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const parent = node.parentElement;
  if (!parent || data(parent) || ['SCRIPT', 'STYLE', 'TEXTAREA'].includes(parent.tagName)) continue;
  if (/[\\u3400-\\u9fff]/.test(node.textContent)) found.push(parent.tagName + ': ' + node.textContent.trim());
}
for (const element of document.body.querySelectorAll('[placeholder], [data-label], [aria-label], [title]')) {
  if (data(element)) continue;
  for (const name of ['placeholder', 'data-label', 'aria-label', 'title']) {
    const value = element.getAttribute(name) || '';
    if (/[\\u3400-\\u9fff]/.test(value)) found.push(name + ': ' + value);
  }
}
return found;
"""


@pytest.fixture(scope="module")
def portal(platform: RunningStack) -> RunningStack:
    platform.stack.run_once("registry", "seed-demo", "--tenant", PILOT_TENANT)  # children for the register pages
    return platform


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    with headless_chromium(tmp_path_factory.mktemp("chromium-profile"), None) as driver:
        yield driver


def language(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "html").get_attribute("lang"))


def switch(driver: WebDriver, to: str) -> None:
    link = driver.find_element(By.ID, "language-switch")
    assert link.is_displayed() and link.get_attribute("hreflang") == to
    width = driver.execute_script("return window.innerWidth")
    assert link.rect["x"] >= 0 and link.rect["x"] + link.rect["width"] <= width, "the switch is on screen"
    goes_to_next_page(driver, link)
    assert language(driver) == to


def chinese_in_the_chrome(driver: WebDriver) -> list[str]:
    return list(driver.execute_script(CHROME_TEXT))


def menu(driver: WebDriver) -> list[str]:
    return [str(a.get_attribute("href")) for a in driver.find_elements(By.CSS_SELECTOR, "header nav a")]


def case_file_pages(driver: WebDriver) -> list[str]:
    """The purpose page of the first child of the register, then each tab of the case file."""
    children = driver.find_elements(By.CSS_SELECTOR, "#children tr[data-child-id] a")
    assert children, "the seeded children are in the register"
    goes_to_next_page(driver, children[0])
    assert not chinese_in_the_chrome(driver), chinese_in_the_chrome(driver)
    driver.find_element(By.NAME, "purpose").send_keys("language check")
    goes_to_next_page(driver, driver.find_element(By.ID, "open-case-file"))
    return [str(a.get_attribute("href")) for a in driver.find_elements(By.CSS_SELECTOR, "#tabs a")]


def refused_in_english(driver: WebDriver, portal: RunningStack) -> list[str]:
    """The town administrator saves the villages with a line that has no name (refused before the registry is
    asked, so nothing changes): the Chinese left in the chrome of the page that shows the refusal's flash."""
    driver.get(portal.base_url + "/admin")
    driver.find_element(By.NAME, "villages").send_keys("\n110111008299")
    goes_to_next_page(driver, driver.find_element(By.ID, "save-villages"))
    flashes = [element.text for element in driver.find_elements(By.CSS_SELECTOR, ".flash")]
    assert flashes, "the line without a name is refused"
    return chinese_in_the_chrome(driver)


def walk_in_english(driver: WebDriver, portal: RunningStack, username: str, artifacts: Path) -> int:
    sign_in_as(driver, portal.base_url, username, portal.password)
    assert language(driver) == "zh-CN" and CHINESE.search(driver.find_element(By.TAG_NAME, "header").text)
    switch(driver, "en")
    pages = menu(driver)
    leftovers: dict[str, list[str]] = {}
    for number, page in enumerate(pages):
        driver.get(page)
        leftovers[page] = chinese_in_the_chrome(driver)
        driver.save_screenshot(str(artifacts / f"{username}-{number}.png"))
        if page.endswith("/register") and username == "caseworker":
            pages += case_file_pages(driver)
    driver.get(portal.base_url + "/no-such-page")
    leftovers["an error page"] = chinese_in_the_chrome(driver)
    if username == "town_admin":
        leftovers["a refusal's flash"] = refused_in_english(driver, portal)
    left = [f"{page}: {text}" for page, found in leftovers.items() for text in found]
    assert not left, "Chinese left in the chrome:\n" + "\n".join(left)
    switch(driver, "zh-CN")
    assert CHINESE.search(driver.find_element(By.TAG_NAME, "header").text), "Chinese again after switching back"
    driver.get(pages[0])
    assert language(driver) == "zh-CN", "the choice is remembered"
    return len(pages)


@pytest.mark.parametrize("username", ROLES)
def test_each_role_walks_its_pages_in_english_and_back(
    browser: WebDriver, portal: RunningStack, username: str, tmp_path: Path
) -> None:
    browser.set_window_size(*DESKTOP)
    walked = walk_in_english(browser, portal, username, tmp_path)
    assert walked >= 2


def test_the_switch_is_on_a_phones_screen(browser: WebDriver, portal: RunningStack, tmp_path: Path) -> None:
    browser.set_window_size(*PHONE)
    assert walk_in_english(browser, portal, "child_director", tmp_path) >= 2
