"""The benefits pages in a real browser (headless Chromium) against the whole platform: every service as its own
process on SQLite, the real local Kafka, the gateway under waitress.

The district administrator loads the sample standards (marked as samples); a child registered in the registry
reaches the benefits service through Kafka; the town's caseworker completes the documents checklist and
submits, the town administrator approves, the district officer approves from last month (arrears follow).
The month's run: the maker computes and may not check; a second officer checks, a third approves and pays;
the payment file's control totals match its lines; the bank's return file fails one payment, which is re-issued
to a corrected account and reconciled; the run is closed. The finance auditor reads the ledger and exports
it as .xlsx and CSV. A caseworker reaching the run by URL is refused. A failing step leaves a screenshot.
"""

from __future__ import annotations

import contextlib
import csv
import io
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from minorprot.benefits.v1 import benefits_pb2, benefits_pb2_grpc
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc
from openpyxl import Workbook, load_workbook
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from platform_runtime.auth import Principal, Role
from platform_runtime.local_stack import ROOT, SERVICES, Stack, StackConfig, dev_secrets, dev_token_issuer
from platform_runtime.settings import KafkaSettings
from platform_runtime.vocabulary import china_today
from tests.e2e.browsing import headless_chromium, sign_in_as
from tests.support.infra import isolated_kafka_env

pytestmark = pytest.mark.e2e

TOWN, TOWN_NAME = "110111008", "良乡镇"
PORT_OFFSET = 240  # clear of `make up` and of the other browser tests' stacks
EXTRA_USERS = (
    ("district_admin", "区管理员", "district_admin"),
    ("officer_checker", "复核员", "district_officer"),
    ("officer_approver", "审批员", "district_officer"),
)
DOCUMENTS = ("申请书", "户口簿", "监护人身份证明", "父母死亡证明")


@dataclass
class Portal:
    base_url: str
    password: str
    data_dir: Path
    config: StackConfig


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
    stack.run_once("registry", "onboard-tenant", "--code", TOWN, "--name", TOWN_NAME, "--district", TOWN[:6])
    stack.run_once("gateway", "seed-demo", "--tenant", TOWN, extra_env={"DEMO_PASSWORD": password})
    for username, name, role in EXTRA_USERS:
        subprocess.run(
            [
                sys.executable,
                *("-m", "gateway", "create-user", "--username", username, "--display-name", name),
                *("--role", role, "--tenant", TOWN),
            ],
            cwd=ROOT,
            env=config.environment("gateway") | {"NEW_USER_PASSWORD": password},
            check=True,
        )
    stack.start(components)
    try:
        stack.wait_healthy(timeout=120)
        yield Portal(f"http://127.0.0.1:{config.gateway_port}", password, data_dir, config)
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


# -- steps ----------------------------------------------------------------------------------------------------


def sign_in(driver: WebDriver, portal: Portal, username: str) -> None:
    sign_in_as(driver, portal.base_url, username, portal.password)


def click(driver: WebDriver, css: str, *, navigates: bool = True) -> None:
    """Click, and when the click loads a page, wait until the old one is gone."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, css).click()
    if navigates:
        WebDriverWait(driver, 60).until(lambda _: _gone(page))


def _gone(element: Any) -> bool:
    """Chromium reports an element of an unloaded page as stale, or (mid-load) as not in the document."""
    try:
        element.tag_name  # noqa: B018 - touching it is the check
    except WebDriverException:
        return True
    return False


def text(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text.strip())


def flashes(driver: WebDriver) -> str:
    return " ".join(element.text for element in driver.find_elements(By.CSS_SELECTOR, ".flash"))


def download(driver: WebDriver, portal: Portal, path: str) -> tuple[int, bytes]:
    """A file the signed-in user downloads (the browser's session cookie, fetched outside the browser)."""
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
    request = urllib.request.Request(portal.base_url + path, headers={"Cookie": cookies})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - loopback only
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def registered_child(portal: Portal) -> str:
    """A child registered in the registry, once the benefits service has it from Kafka (a draft made for it)."""
    # Straight to the registry, with a token for it (an API token is for the gateway alone).
    caseworker = Principal("e2e-caseworker", "caseworker", Role.CASEWORKER, TOWN, TOWN[:6])
    issuer = dev_token_issuer(portal.config.data_dir)
    metadata = (("authorization", f"Bearer {issuer.issue(caseworker, 'registry')}"),)
    for_benefits = (("authorization", f"Bearer {issuer.issue(caseworker, 'benefits')}"),)
    with grpc.insecure_channel(f"127.0.0.1:{portal.config.grpc_port('registry')}") as channel:
        child = (
            registry_pb2_grpc.RegistryServiceStub(channel)
            .RegisterChild(
                registry_pb2.RegisterChildRequest(
                    legal_name="吴小雨",
                    birth_date=common_pb2.Date(year=2014, month=9, day=1),
                    household_division_code=TOWN + "201",
                ),
                metadata=metadata,
            )
            .child
        )
    with grpc.insecure_channel(f"127.0.0.1:{portal.config.grpc_port('benefits')}") as channel:
        stub = benefits_pb2_grpc.BenefitsServiceStub(channel)
        deadline = time.monotonic() + 60
        while True:
            try:
                stub.CreateApplication(
                    benefits_pb2.CreateApplicationRequest(
                        child_id=child.child_id, benefit_code="BLA_ORPHAN", reason="父母双亡", account_ref="6222-0001"
                    ),
                    metadata=for_benefits,
                )
                return str(child.child_id)
            except grpc.RpcError as error:
                if error.code() is not grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                    raise
                time.sleep(1)


def run_step(driver: WebDriver, step: str) -> None:
    """Click the step; a long one carries on by itself (the page clicks again) until the step is done."""
    click(driver, f"#step-{step}")
    deadline = time.monotonic() + 60
    while True:
        try:
            buttons = driver.find_elements(By.CSS_SELECTOR, f"#step-{step}")
            if not buttons or "continue" not in buttons[0].text:
                return
        except StaleElementReferenceException:
            pass
        assert time.monotonic() < deadline, f"the {step} step did not finish"
        time.sleep(0.5)


def test_benefits_from_policy_to_a_closed_run_and_the_auditors_report(portal: Portal, browser: WebDriver) -> None:
    driver = browser
    with screenshot_on_failure(driver, portal.data_dir, "benefits"):
        # the district administrator loads the sample standards
        sign_in(driver, portal, "district_admin")
        click(driver, "#nav-benefits")
        click(driver, "#load-sample button")
        assert "样例金额" in text(driver, 'section.policy[data-version="1"] h2')
        assert text(driver, 'section.policy tr[data-code="BLA_ORPHAN"] .amount') == "1,440.00"

        child = registered_child(portal)
        # the caseworker completes the checklist and submits
        sign_in(driver, portal, "caseworker")
        click(driver, "#nav-benefits")
        driver.find_element(By.CSS_SELECTOR, '#applications a[href*="/benefits/applications/"]').click()
        assert text(driver, "#status") == "draft"
        assert "父母死亡证明" in text(driver, "#missing")
        click(driver, "#submit button")
        assert "missing" in flashes(driver)  # refused: documents missing
        for name in DOCUMENTS:
            click(driver, f'#documents input[value="{name}"]', navigates=False)
        click(driver, "#documents button")
        assert not driver.find_elements(By.ID, "missing")
        click(driver, "#submit button")
        assert text(driver, "#status") == "submitted"
        application_url = driver.current_url

        sign_in(driver, portal, "town_admin")
        driver.get(application_url)
        click(driver, '#town-review button[value="approve"]')
        assert text(driver, "#status") == "town_approved"

        first_of_last_month = (china_today().replace(day=1) - timedelta(days=1)).replace(day=1)
        sign_in(driver, portal, "district_officer")
        driver.get(application_url)
        starts = driver.find_element(By.CSS_SELECTOR, '#district-decision input[name="starts_on"]')
        driver.execute_script("arguments[0].value = arguments[1]", starts, first_of_last_month.isoformat())
        click(driver, '#district-decision button[value="approve"]')
        assert text(driver, "#status") == "approved"

        # the month's run: the maker computes
        click(driver, "#nav-runs")
        month = driver.find_element(By.CSS_SELECTOR, '#open-run input[name="period"]')
        driver.execute_script("arguments[0].value = arguments[1]", month, china_today().strftime("%Y-%m"))
        click(driver, "#open-run button")
        run_url = driver.current_url
        run_step(driver, "compute")
        assert text(driver, "#run-status") == "computed"
        assert text(driver, "#line-count") == "2"  # last month as arrears, and this month
        assert text(driver, "#total") == "2,880.00"
        explanation = text(driver, "#lines tbody tr .explanation")
        assert "BLA_ORPHAN v1: 144000 fen/month" in explanation
        click(driver, "#step-check")
        assert "maker/checker" in flashes(driver)
        assert text(driver, "#run-status") == "computed"

        sign_in(driver, portal, "officer_checker")
        driver.get(run_url)
        run_step(driver, "check")
        assert text(driver, "#run-status") == "checked"

        sign_in(driver, portal, "officer_approver")
        driver.get(run_url)
        run_step(driver, "approve")
        run_step(driver, "pay")
        assert text(driver, "#run-status") == "paid"
        status, content = download(driver, portal, run_url.removeprefix(portal.base_url) + "/payment-file/1")
        assert status == 200
        rows = list(csv.reader(io.StringIO(content.decode())))
        details = [row for row in rows if row[0] == "D"]
        assert rows[0][5:] == ["2", "288000"] and rows[-1] == ["T", "2", "288000"]
        assert sum(int(row[3]) for row in details) == 288000 and {row[2] for row in details} == {"6222-0001"}

        # the bank fails one payment; it is re-issued to a corrected account
        failed_reference = details[0][1]
        bank = portal.data_dir / "return-1.csv"
        bank.write_text(
            "reference,result,reason\n"
            + "".join(f"{r[1]},{'FAILED,account frozen' if r[1] == failed_reference else 'PAID,'}\n" for r in details)
        )
        driver.find_element(By.CSS_SELECTOR, '#reconcile input[type="file"]').send_keys(str(bank))
        click(driver, "#reconcile button")
        assert "失败 1" in flashes(driver)
        assert text(driver, "#run-status") == "reconciled"
        failed = driver.find_element(By.CSS_SELECTOR, '#lines tr[data-status="failed"]')
        failed.find_element(By.CSS_SELECTOR, "input").send_keys("6222-0002")
        click(driver, "#reissue button[type=submit]")
        assert "批次 2" in flashes(driver)
        _, second = download(driver, portal, run_url.removeprefix(portal.base_url) + "/payment-file/2")
        (again,) = [row for row in csv.reader(io.StringIO(second.decode())) if row[0] == "D"]
        assert again[2:] == ["6222-0002", "144000"]
        bank.write_text(f"{again[1]},PAID,\n")
        driver.find_element(By.CSS_SELECTOR, '#reconcile input[type="file"]').send_keys(str(bank))
        click(driver, "#reconcile button")
        run_step(driver, "close")
        assert text(driver, "#run-status") == "closed"

        # the finance auditor's fund-usage report
        sign_in(driver, portal, "finance_auditor")
        click(driver, "#nav-benefits")
        assert text(driver, '#totals tr[data-kind="payment"] .amount') == "4,320.00"  # 2,880 + the re-issue
        assert text(driver, '#totals tr[data-kind="failure"] .amount') == "-1,440.00"
        assert text(driver, '#totals tr[data-kind="entitlement"] .amount') == "2,880.00"
        status, workbook = download(driver, portal, "/benefits/ledger.xlsx")
        assert status == 200
        sheet = load_workbook(io.BytesIO(workbook)).active
        assert sheet is not None
        values: list[Any] = [list(row) for row in sheet.iter_rows(values_only=True)]
        assert values[0][:5] == ["period", "fund", "town", "kind", "amount_fen"]
        assert sum(row[4] for row in values[1:] if row[3] == "payment") == 432000
        _, table = download(driver, portal, "/benefits/ledger.csv")
        assert (
            sum(int(r[4]) for r in csv.reader(io.StringIO(table.decode("utf-8-sig"))) if r[3] == "failure") == -144000
        )
        driver.get(run_url)
        assert not driver.find_elements(By.ID, "advance")  # the auditor reads only

        # a caseworker has no business with the district's runs
        sign_in(driver, portal, "caseworker")
        assert download(driver, portal, run_url.removeprefix(portal.base_url))[0] == 403
        assert child


def test_the_town_imports_the_infant_list_enrols_the_year_and_gets_the_insurers_file(
    portal: Portal, browser: WebDriver
) -> None:
    """After the first test (the sample policy is loaded): 45 yuan a child."""
    driver = browser
    today = china_today()
    babies = [today - timedelta(days=days) for days in (200, 400)]
    rows = [[_identity(born, f"{n:03d}"), "", TOWN + "201"] for n, born in enumerate(babies, start=101)]
    rows.append(["110111201001011230", "", TOWN + "201"])  # a bad check character
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["公民身份号码", "出生日期", "户籍地区划代码"])
    for row in rows:
        sheet.append(row)
    path = portal.data_dir / "infants.xlsx"
    book.save(path)
    with screenshot_on_failure(driver, portal.data_dir, "insurance"):
        sign_in(driver, portal, "town_admin")
        click(driver, "#nav-benefits")
        click(driver, "#nav-insurance")
        driver.find_element(By.CSS_SELECTOR, '#roster-import input[type="file"]').send_keys(str(path))
        click(driver, "#roster-import button")
        assert "导入 2 人（新增 2" in text(driver, "#roster-report")
        assert text(driver, "#roster-errors tbody tr td") == "4"  # the bad row, numbered as the sheet shows it
        click(driver, "#enrol-year button")
        assert "保费合计 90.00 元" in text(driver, "#enrolment")
        status, content = download(driver, portal, f"/benefits/insurance/{today.year}.csv")
        assert status == 200
        file = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
        assert file[-1][:2] == ["TOTAL", "2"] and file[-1][5] == "9000"
        assert all("*" * 8 in row[0] for row in file[1:-1])  # masked: the insurer never gets the full number


def _identity(born: date, sequence: str) -> str:
    from stdnum.cn import ric

    first17 = f"110111{born:%Y%m%d}{sequence}"
    return first17 + ric.calc_check_digit(first17 + "0")
