"""The register and case files in a real browser (headless Chromium) against the whole platform: every service
as its own process on SQLite, the real local Kafka, the gateway under waitress. At a desktop width and at a
phone's (360 px: a village child director).

The caseworker finds the town's seeded children, registers a child (the possible-duplicate check shown before
saving), opens the case file with a purpose, records the family, a category, an assessment and a visit, names
the staff from the town's users and reads the change history; the child director records a visit on a phone;
another town's caseworker reaching the pages by URL gets nothing. Each test saves a screenshot of where it
ended (and of a failure) in the stack's data folder.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from openpyxl import load_workbook
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from platform_runtime.local_stack import ROOT, SERVICES, Stack, StackConfig, dev_secrets
from platform_runtime.settings import KafkaSettings
from tests.e2e.browsing import goes_to_next_page, headless_chromium, sign_in_as
from tests.support.infra import isolated_kafka_env

pytestmark = pytest.mark.e2e

TOWN, TOWN_NAME = "110111008", "良乡镇"
OTHER_TOWN, OTHER_TOWN_NAME = "110111009", "周口店地区"
OTHER_USER = "zkd_register_caseworker"
VILLAGES = ((TOWN + "201", "东关村"), (TOWN + "202", "西关村"))
PORT_OFFSET = 160  # clear of `make up` and of the other browser test's stack
DESKTOP, PHONE = (1280, 1000), (360, 780)
CREATE_AS = ("--role", "caseworker", "--tenant", OTHER_TOWN)


@dataclass
class Portal:
    base_url: str
    password: str
    data_dir: Path


@pytest.fixture(scope="module")
def portal(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    data_dir = tmp_path_factory.mktemp("stack")
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
    for code, name in ((TOWN, TOWN_NAME), (OTHER_TOWN, OTHER_TOWN_NAME)):
        stack.run_once("registry", "onboard-tenant", "--code", code, "--name", name, "--district", code[:6])
    stack.run_once("registry", "seed-demo", "--tenant", TOWN)
    villages = data_dir / "villages.csv"
    villages.write_text("code,name\n" + "".join(f"{code},{name}\n" for code, name in VILLAGES), encoding="utf-8")
    stack.run_once("registry", "set-villages", "--tenant", TOWN, "--file", str(villages))
    stack.run_once("gateway", "seed-demo", "--tenant", TOWN, extra_env={"DEMO_PASSWORD": password})
    subprocess.run(
        [
            sys.executable,
            *("-m", "gateway", "create-user", "--username", OTHER_USER, "--display-name", "周社工"),
            *CREATE_AS,
        ],
        cwd=ROOT,
        env=config.environment("gateway") | {"NEW_USER_PASSWORD": password},
        check=True,
    )
    stack.start(components)
    try:
        stack.wait_healthy(timeout=120)
        yield Portal(f"http://127.0.0.1:{config.gateway_port}", password, data_dir)
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    with headless_chromium(tmp_path_factory.mktemp("chromium-profile"), None) as driver:
        yield driver


@contextlib.contextmanager
def recorded(driver: WebDriver, portal: Portal, name: str) -> Iterator[None]:
    """A screenshot of where the test ended, and of a failure, kept as the test's artifact."""
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


# -- browser steps ------------------------------------------------------------------------------------------


def sign_in(driver: WebDriver, portal: Portal, username: str, size: tuple[int, int]) -> None:
    driver.set_window_size(*size)
    sign_in_as(driver, portal.base_url, username, portal.password)


def fill(driver: WebDriver, fields: dict[str, str], within: str = "") -> None:
    for name, value in fields.items():
        element = driver.find_element(By.CSS_SELECTOR, f'{within} [name="{name}"]'.strip())
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        elif element.get_attribute("type") == "date":
            # Chromium's date input takes keystrokes in the locale's order: set the value directly.
            driver.execute_script("arguments[0].value = arguments[1]", element, value)
        else:
            element.clear()
            element.send_keys(value)


def press(driver: WebDriver, button_id: str) -> None:
    """Click a button or link that loads a page, and wait until the old page is gone."""
    goes_to_next_page(driver, driver.find_element(By.ID, button_id))


def open_case_file(driver: WebDriver, purpose: str) -> None:
    assert driver.find_elements(By.ID, "purpose-form"), "the purpose is asked before the case file opens"
    fill(driver, {"purpose": purpose})
    press(driver, "open-case-file")
    assert driver.find_elements(By.ID, "child-name"), driver.page_source[:2000]


def tab(driver: WebDriver, name: str) -> None:
    link = driver.find_element(By.CSS_SELECTOR, f'#tabs a[data-tab="{name}"]')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    link.click()
    assert driver.find_elements(By.ID, f"tab-{name}")


def no_horizontal_scroll(driver: WebDriver) -> None:
    width = driver.execute_script("return document.documentElement.scrollWidth")
    viewport = driver.execute_script("return window.innerWidth")
    assert width <= viewport, f"the page is {width}px wide in a {viewport}px window ({driver.current_url})"


SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜"
GIVEN = "春夏秋冬梅兰竹菊松柏桃李杏梨云雨雪霜星月晨曦浩宇博文思远嘉怡"


def unique_name() -> str:
    """A Chinese name of its own each run (the matcher compares names by their characters and sounds)."""
    number = uuid.uuid4().int
    return SURNAMES[number % 30] + GIVEN[(number // 30) % 30] + GIVEN[(number // 900) % 30]


def unique_birth_date(year: int) -> str:
    number = uuid.uuid4().int
    return f"{year}-{number % 12 + 1:02d}-{(number // 12) % 28 + 1:02d}"


def rows(driver: WebDriver, css: str) -> list[str]:
    return [str(row.get_attribute("data-child-id")) for row in driver.find_elements(By.CSS_SELECTOR, css)]


# -- the tests ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_caseworker_registers_a_child_and_works_the_case_file(
    portal: Portal, browser: WebDriver, size: tuple[int, int]
) -> None:
    name = unique_name()
    label = f"caseworker-{size[0]}"
    with recorded(browser, portal, label):
        sign_in(browser, portal, "caseworker", size)
        browser.find_element(By.ID, "nav-register").click()
        seeded = rows(browser, "#children tr[data-child-id]")
        assert len(seeded) == 20 and browser.find_elements(By.ID, "next-page"), "the 40 seeded children, paged"
        no_horizontal_scroll(browser)

        press(browser, "new-child")
        born = "2016-04-02" if size == DESKTOP else "2014-09-17"
        child = {"legal_name": name, "sex": "female", "birth_date": born, "school": "良乡中心小学"}
        fill(browser, child | {"residence_division_code": VILLAGES[0][0]})
        no_horizontal_scroll(browser)
        press(browser, "register-child")
        open_case_file(browser, "新登记儿童建档 opening the new file")
        assert name in browser.find_element(By.ID, "child-name").text
        child_id = str(browser.find_element(By.ID, "child-name").get_attribute("data-child-id"))

        # The same child again: the possible duplicate is shown before anything is saved.
        browser.get(f"{portal.base_url}/register/new")
        fill(browser, child | {"residence_division_code": VILLAGES[0][0]})
        press(browser, "register-child")
        duplicates = browser.find_elements(By.CSS_SELECTOR, f'#possible-duplicates tr[data-candidate-id="{child_id}"]')
        assert duplicates, "the child registered a moment ago is offered as a possible duplicate"
        assert browser.find_elements(By.ID, "confirm-register")

        # Found by name and by village; the purpose asked once is kept for this child's tabs.
        browser.get(f"{portal.base_url}/register?name={name}")
        assert child_id in rows(browser, "#children tr[data-child-id]")
        browser.get(f"{portal.base_url}/register?village={VILLAGES[0][0]}")
        assert child_id in rows(browser, "#children tr[data-child-id]")
        browser.find_element(By.CSS_SELECTOR, f'tr[data-child-id="{child_id}"] a').click()
        assert browser.find_elements(By.ID, "child-name"), "the purpose was given for this child already"

        tab(browser, "family")
        father = {"name": "王大强", "relationship": "father", "status": "imprisoned_or_detained"}
        fill(browser, father | {"status_since": "2023-03-01", "evidence": "法院判决书"}, "#family-form")
        press(browser, "add-family-member")
        mother = {"name": "李梅", "relationship": "mother", "status": "missing"}
        fill(browser, mother | {"status_since": "2024-05-01", "evidence": "派出所失联证明"}, "#family-form")
        press(browser, "add-family-member")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#family tr[data-member-id]")) == 2
        no_horizontal_scroll(browser)

        tab(browser, "categories")
        derived = browser.find_elements(By.CSS_SELECTOR, '#categories tr[data-category="de_facto_unattended_mca_2019"]')
        assert derived and "规则" in derived[0].text, "derived from the family, with the rule and its reason"
        fill(browser, {"category": "poverty", "source": "home_visit", "evidence": "低保证明"}, "#category-form")
        press(browser, "add-category")
        assert browser.find_elements(By.CSS_SELECTOR, '#categories tr[data-category="poverty"].current')

        tab(browser, "case")
        fill(browser, {"status": "assessing"}, "#status-form")
        press(browser, "change-status")
        assert browser.find_element(By.ID, "case-status").get_attribute("data-code") == "assessing"
        director = Select(browser.find_element(By.NAME, "child_director_user_id"))
        director.select_by_visible_text(next(o.text for o in director.options if o.text.startswith("赵儿童主任")))
        fill(browser, {"responsible_person": "村委会 王主任"}, "#staff-form")
        press(browser, "assign-staff")
        assert browser.find_element(By.ID, "child-director").text == "赵儿童主任"
        assert browser.find_element(By.ID, "responsible-person").text == "村委会 王主任"

        tab(browser, "assessments")
        fill(browser, {"score.safety": "3", "finding.safety": "独自在家过夜", "score.guardianship": "4"})
        fill(browser, {"finding.guardianship": "父亲服刑,母亲失联", "summary": "需尽快落实委托照护"})
        press(browser, "record-assessment")
        assert browser.find_element(By.ID, "risk-level").get_attribute("data-code") == "high"

        tab(browser, "visits")
        assert browser.find_elements(By.ID, "visit-schedule")
        fill(browser, {"findings": "祖母临时照看,孩子情绪稳定"}, "#visit-form")
        press(browser, "record-visit")
        assert "祖母临时照看" in browser.find_element(By.ID, "visits").text

        tab(browser, "history")
        history = browser.find_element(By.ID, "changes").text
        assert "family_member" in history and "case_file" in history
        tab(browser, "timeline")
        assert browser.find_elements(By.CSS_SELECTOR, "#timeline li[data-kind]")
        no_horizontal_scroll(browser)


def test_child_director_records_a_visit_on_a_phone(portal: Portal, browser: WebDriver) -> None:
    with recorded(browser, portal, "child-director-phone"):
        sign_in(browser, portal, "child_director", PHONE)
        browser.find_element(By.ID, "nav-register").click()
        # Tables become cards: no header row, each child a card with its labels.
        assert not browser.find_element(By.CSS_SELECTOR, "#children thead").is_displayed()
        no_horizontal_scroll(browser)
        first = browser.find_element(By.CSS_SELECTOR, "#children tr[data-child-id] a")
        first.click()
        open_case_file(browser, "入户随访 home visit")
        tab(browser, "visits")
        findings = f"孩子在家写作业,祖父照看 {uuid.uuid4().hex[:4]}"
        fill(browser, {"findings": findings}, "#visit-form")
        button = browser.find_element(By.ID, "record-visit")
        viewport = browser.execute_script("return window.innerWidth")
        assert button.size["width"] >= 0.75 * viewport, "the main action spans the phone's width"
        press(browser, "record-visit")
        assert findings in browser.find_element(By.ID, "visits").text
        assert not browser.find_elements(By.ID, "staff-form"), "naming the staff is the caseworker's"
        no_horizontal_scroll(browser)

        tab(browser, "profile")
        browser.find_element(By.CSS_SELECTOR, "#profile-edit summary").click()
        school = f"良乡第{uuid.uuid4().int % 9 + 1}小学"
        fill(browser, {"school": school, "contact_name": "孙奶奶", "contact_phone": "13900000009"}, "#profile-form")
        press(browser, "save-profile")
        assert school in browser.find_element(By.ID, "profile").text, "the profile edited on the phone"


def test_another_towns_caseworker_gets_nothing(portal: Portal, browser: WebDriver) -> None:
    with recorded(browser, portal, "other-town"):
        sign_in(browser, portal, "caseworker", DESKTOP)
        browser.get(f"{portal.base_url}/register")
        child_id = rows(browser, "#children tr[data-child-id]")[0]
        name = browser.find_element(By.CSS_SELECTOR, f'tr[data-child-id="{child_id}"] a').text

        sign_in(browser, portal, OTHER_USER, DESKTOP)
        browser.get(f"{portal.base_url}/register")
        assert not rows(browser, "#children tr[data-child-id]")
        browser.get(f"{portal.base_url}/register?name={name}")
        assert child_id not in browser.page_source
        browser.get(f"{portal.base_url}/register/children/{child_id}")
        fill(browser, {"purpose": "试图查阅 trying"})
        press(browser, "open-case-file")
        assert "未找到" in browser.title
        assert name not in browser.page_source


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_page_fits_the_screen(portal: Portal, browser: WebDriver, size: tuple[int, int]) -> None:
    with recorded(browser, portal, f"pages-{size[0]}"):
        sign_in(browser, portal, "caseworker", size)
        browser.get(f"{portal.base_url}/register")
        child_id = rows(browser, "#children tr[data-child-id]")[0]
        browser.get(f"{portal.base_url}/register/children/{child_id}")
        open_case_file(browser, "检查页面 checking the pages")
        pages = ["/", "/dashboard", "/register", "/register/new", "/reports", "/reports/new", "/referrals"]
        pages += [f"/register/children/{child_id}?tab={name}" for name in ("profile", "family", "case", "plan")]
        for path in pages:
            browser.get(portal.base_url + path)
            assert browser.find_elements(By.ID, "whoami"), path
            no_horizontal_scroll(browser)
        browser.get(f"{portal.base_url}/dashboard")
        assert browser.find_element(By.ID, "chart-category").is_displayed()
        assert int(browser.find_element(By.CSS_SELECTOR, "#stat-children strong").text) >= 40


def test_caseworker_merges_a_duplicate_side_by_side_and_undoes_it(portal: Portal, browser: WebDriver) -> None:
    name = unique_name()
    with recorded(browser, portal, "merge"):
        sign_in(browser, portal, "caseworker", DESKTOP)
        child = {"legal_name": name, "sex": "male", "birth_date": "2015-11-30", "school": "窦店小学"}
        ids = []
        for attempt in range(2):
            browser.get(f"{portal.base_url}/register/new")
            fill(browser, child | {"residence_division_code": VILLAGES[1][0]})
            press(browser, "register-child")
            if attempt:  # registered on purpose a second time, past the warning: the duplicate to merge
                press(browser, "confirm-register")
            open_case_file(browser, "核查重复记录 checking duplicates")
            ids.append(str(browser.find_element(By.ID, "child-name").get_attribute("data-child-id")))
        kept, duplicate = ids
        press(browser, "find-duplicates")
        goes_to_next_page(
            browser, browser.find_element(By.CSS_SELECTOR, f'#duplicates tr[data-candidate-id="{kept}"] a.compare')
        )
        assert len(browser.find_elements(By.CSS_SELECTOR, "#compare tbody tr")) >= 10
        browser.find_element(By.CSS_SELECTOR, f'#merge-form input[name="surviving"][value="{kept}"]').click()
        fill(browser, {"reason": "同一儿童重复登记 registered twice"}, "#merge-form")
        press(browser, "merge")
        assert browser.find_element(By.ID, "child-name").get_attribute("data-child-id") == kept
        assert browser.find_elements(By.CSS_SELECTOR, f'#merged li[data-merged-id="{duplicate}"]')
        browser.get(f"{portal.base_url}/register?name={name}")
        assert duplicate not in rows(browser, "#children tr[data-child-id]")

        browser.get(f"{portal.base_url}/register/children/{kept}")
        fill(browser, {"reason": "核实为两个孩子 two children after all"}, f"#unmerge-{duplicate}")
        goes_to_next_page(browser, browser.find_element(By.CSS_SELECTOR, f"#unmerge-{duplicate} button"))
        assert browser.find_element(By.ID, "child-name").get_attribute("data-child-id") == duplicate
        tab(browser, "history")
        assert "unmerged" in browser.find_element(By.ID, "changes").text


def portal_download(
    driver: WebDriver, portal: Portal, path: str, form: dict[str, str] | None = None
) -> tuple[str, bytes]:
    """A download the page links to (or its form posts), fetched with the browser's session (headless downloads
    are not kept)."""
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(portal.base_url + path, data=data, headers={"Cookie": cookie})  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as reply:  # noqa: S310
        return str(reply.headers["Content-Type"]), reply.read()


def survey_workbook(template: bytes, rows: list[dict[str, str]]) -> bytes:
    """The template's data sheet filled in: columns found by the field code in each header, e.g. *姓名(legal_name)."""
    book = load_workbook(io.BytesIO(template))
    sheet = book.worksheets[0]
    header = [str(cell.value or "") for cell in sheet[1]]
    columns = {title.rsplit("(", 1)[-1].rstrip(")"): index for index, title in enumerate(header)}
    for row in rows:
        cells = [""] * len(header)
        for field_code, value in row.items():
            cells[columns[field_code]] = value
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_town_admin_checks_a_survey_with_planted_errors_downloads_them_and_imports_the_rest(
    portal: Portal, browser: WebDriver, size: tuple[int, int]
) -> None:
    place = {"residence_division_code": VILLAGES[0][0], "household_division_code": TOWN}
    good = [
        {"legal_name": unique_name(), "sex": "女", "birth_date": unique_birth_date(2010 + n)} | place for n in range(3)
    ]
    planted = [
        {"legal_name": unique_name(), "sex": "男", "birth_date": "2999-01-01"} | place,  # born in the future
        {"legal_name": unique_name(), "sex": "男", "birth_date": "2014-02-02", "residence_division_code": "999"},
    ]
    with recorded(browser, portal, f"survey-{size[0]}"):
        sign_in(browser, portal, "town_admin", size)
        browser.find_element(By.ID, "nav-survey").click()
        kind, template = portal_download(browser, portal, "/survey/template.xlsx")
        assert kind.startswith("application/vnd.openxmlformats")
        path = portal.data_dir / f"survey-{size[0]}.xlsx"
        path.write_bytes(survey_workbook(template, [good[0], planted[0], good[1], planted[1], good[2]]))

        browser.find_element(By.CSS_SELECTOR, '#upload-form input[type="file"]').send_keys(str(path))
        press(browser, "upload")
        assert browser.find_elements(By.ID, "progress"), "the dry run's progress is shown"
        WebDriverWait(browser, 60, ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.find_element(By.ID, "job").get_attribute("data-state") != "running"
        )
        assert browser.find_element(By.ID, "job").get_attribute("data-state") == "done"
        assert browser.find_element(By.ID, "summary-rejected").text == "2"
        assert browser.find_element(By.ID, "summary-accepted").text == "3"
        no_horizontal_scroll(browser)

        href = str(browser.find_element(By.ID, "problems").get_attribute("href"))
        kind, problems = portal_download(browser, portal, href.removeprefix(portal.base_url))
        sheet = load_workbook(io.BytesIO(problems)).worksheets[0]
        flagged = {row[0] for row in sheet.iter_rows(min_row=2, values_only=True)}
        assert flagged == {3, 5}, "the planted errors, by the rows the spreadsheet shows"

        press(browser, "import-now")
        WebDriverWait(browser, 60, ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.find_element(By.ID, "job").get_attribute("data-state") != "running"
        )
        assert browser.find_element(By.ID, "summary-accepted").text == "3"
        browser.get(f"{portal.base_url}/register?name={good[1]['legal_name']}")
        assert rows(browser, "#children tr[data-child-id]"), "the imported child is in the register"
        browser.get(f"{portal.base_url}/survey")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#imports tr[data-import-id]")) >= 2

        # The register's export of the village, with its purpose (the same session posts the form).
        token = str(
            browser.find_element(By.CSS_SELECTOR, '#export-form input[name="csrf_token"]').get_attribute("value")
        )
        form = {"csrf_token": token, "purpose": "年度台账报送 annual report", "village": VILLAGES[0][0]}
        kind, exported = portal_download(browser, portal, "/survey/export", form)
        assert kind.startswith("application/vnd.openxmlformats")
        book = load_workbook(io.BytesIO(exported))
        cells = {str(c) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for c in row}
        assert good[1]["legal_name"] in cells and planted[0]["legal_name"] not in cells


def test_another_towns_caseworker_reaches_no_survey_or_dashboard_of_the_town(
    portal: Portal, browser: WebDriver
) -> None:
    with recorded(browser, portal, "other-town-survey"):
        sign_in(browser, portal, "town_admin", DESKTOP)
        browser.get(f"{portal.base_url}/survey")
        import_ids = [
            str(r.get_attribute("data-import-id"))
            for r in browser.find_elements(By.CSS_SELECTOR, "#imports tr[data-import-id]")
        ]
        sign_in(browser, portal, OTHER_USER, DESKTOP)
        browser.get(f"{portal.base_url}/survey")
        for import_id in import_ids:
            assert import_id not in browser.page_source
            browser.get(f"{portal.base_url}/survey/imports/{import_id}/problems.xlsx")
            assert "未找到" in browser.title
        browser.get(f"{portal.base_url}/dashboard")
        assert browser.find_element(By.CSS_SELECTOR, "#stat-children strong").text == "0"


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_town_admin_sees_who_read_a_case_file_and_why(
    portal: Portal, browser: WebDriver, size: tuple[int, int]
) -> None:
    purpose = f"核实监护情况 {uuid.uuid4().hex[:6]}"
    with recorded(browser, portal, f"audit-{size[0]}"):
        sign_in(browser, portal, "caseworker", size)
        assert not browser.find_elements(By.ID, "nav-admin")
        browser.get(f"{portal.base_url}/register")
        child_id = rows(browser, "#children tr[data-child-id]")[-1]
        browser.get(f"{portal.base_url}/register/children/{child_id}")
        open_case_file(browser, purpose)

        sign_in(browser, portal, "town_admin", size)
        browser.find_element(By.ID, "nav-admin").click()
        assert len(browser.find_elements(By.CSS_SELECTOR, "#villages tr[data-village]:not([data-retired])")) == len(
            VILLAGES
        )
        assert browser.find_elements(By.CSS_SELECTOR, '#users tr[data-username="child_director"]')
        no_horizontal_scroll(browser)
        press(browser, "audit-link")
        fill(browser, {"child_id": child_id}, "#audit-filters")
        press(browser, "filter-audit")
        reads = [r.text for r in browser.find_elements(By.CSS_SELECTOR, '#audit tr[data-action="read_case_file"]')]
        assert any(purpose in text and "王社工" in text for text in reads), reads
        no_horizontal_scroll(browser)

        browser.find_element(By.ID, "nav-admin").click()
        press(browser, "triage-link")
        in_effect = browser.find_element(By.ID, "in-effect")
        assert in_effect.find_elements(By.CSS_SELECTOR, "tr[data-rule]"), "the rules of the version in effect"
        assert browser.find_element(By.ID, "legal-minimum").text
        no_horizontal_scroll(browser)
