"""The portal's register pages under load: p95 of the dashboard, the register search (by village, and by
name through the matcher) and the child's case file, with BENCH_PORTAL_USERS concurrent signed-in users
against a register of BENCH_PORTAL_CHILDREN children, beside the stylesheet served by the same gateway.

The whole platform runs as for `make up` (each service its own process, SQLite, the local Kafka). The register
is written by bench/register_loader.py before the services start (the registry's own bulk path: case files,
categories, family, match keys, history and events for every child; 100,000 children in a few minutes where
the survey import took most of an hour); once they run, the registry's events are published and consumed
before anything is timed. The defaults are the issue's size, 100,000 children and 50 users (`make bench`);
`make bench-smoke` runs it small. Every page must answer 200: a user whose page fails fails the run.
"""

from __future__ import annotations

import copy
import http.cookiejar
import os
import re
import sqlite3
import statistics
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from contextlib import closing
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.register_loader import load_register
from bench.runner import Figure, print_figures
from gateway import second_factor
from platform_runtime.local_stack import SERVICES, Stack, StackConfig, dev_secrets
from tests.support.infra import isolated_kafka_env, start_kafka

CHILDREN = int(os.environ.get("BENCH_PORTAL_CHILDREN", "100000"))
USERS = int(os.environ.get("BENCH_PORTAL_USERS", "50"))
REQUESTS = int(os.environ.get("BENCH_PORTAL_REQUESTS", "20"))  # per user and page
TOWN, DISTRICT = "110111008", "110111"
PORT_OFFSET = 520  # clear of `make up`, the test stacks (100-460) and the other benches (300-400)
TIMEOUT_SECONDS = 60  # a browser's wait for a page before the person gives up
SETTLED_SECONDS = 15.0  # no event consumed for this long, none waiting: the platform is idle
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CHILD = re.compile(r'data-child-id="([0-9a-f]+)"')


class Browser:
    """One signed-in user: a cookie jar and the CSRF token, as a browser keeps them."""

    def __init__(self, base_url: str, cookies: http.cookiejar.CookieJar | None = None) -> None:
        self.base = base_url
        self.cookies = cookies if cookies is not None else http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def another_tab(self) -> Browser:
        """The same signed-in user in another tab: a copy of the cookies. Signing in again would want a fresh
        second-factor code, and a code is accepted once (one sign-in per account per 30 s)."""
        jar = http.cookiejar.CookieJar()
        for cookie in self.cookies:
            jar.set_cookie(copy.copy(cookie))
        return Browser(self.base, jar)

    def sign_in(self, username: str, password: str) -> Browser:
        page = self.get("/login")
        token = self.csrf(page)
        after = self.post("/login", {"username": username, "password": password, "csrf_token": token})
        if 'name="code"' in after:  # the demo users' second factor (seed-demo derives it from the password)
            code = second_factor.code_at(second_factor.demo_secret(password), time.time())
            self.post("/login/code", {"code": code, "csrf_token": token})
        return self

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=TIMEOUT_SECONDS) as reply:
            return str(reply.read().decode())

    def post(self, path: str, form: dict[str, str]) -> str:
        data = urllib.parse.urlencode(form).encode()
        with self.opener.open(self.base + path, data=data, timeout=TIMEOUT_SECONDS) as reply:
            return str(reply.read().decode())

    @staticmethod
    def csrf(page: str) -> str:
        found = _CSRF.search(page)
        if not found:
            raise RuntimeError("no CSRF token on the page")
        return found.group(1)


def _wait_settled(data_dir: Path, components: list[str], timeout: float = 3600.0) -> None:
    """Until every outbox is published and no service's inbox has grown for SETTLED_SECONDS: the events of
    the loaded register published and consumed (benefits keeps its own view of the children)."""
    started = time.monotonic()
    seen: tuple[int, ...] = ()
    still_since = started
    while time.monotonic() - started < timeout:
        waiting, consumed = 0, []
        for component in components:
            with closing(sqlite3.connect(f"file:{data_dir / component}.db?mode=ro", uri=True)) as db:
                waiting += db.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()[0]
                consumed.append(db.execute("SELECT count(*) FROM inbox").fetchone()[0])
        if waiting or tuple(consumed) != seen:
            if int(time.monotonic() - started) % 30 == 0:
                print(f"events: {waiting} to publish, inbox rows {consumed}", flush=True)
            seen, still_since = tuple(consumed), time.monotonic()
        elif time.monotonic() - still_since >= SETTLED_SECONDS:
            print(f"events settled after {time.monotonic() - started:.0f} s (inbox rows {consumed})", flush=True)
            return
        time.sleep(1.0)
    raise RuntimeError(f"the events had not settled after {timeout:.0f} s")


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _load(
    signed_in: Browser, pages: dict[str, str], child_id: str
) -> tuple[dict[str, list[float]], Counter[str], Counter[str]]:
    """USERS threads, each a tab of the signed-in caseworker, each asking every page REQUESTS times. A page
    that answers an error (a 504 when the gateway's call to a service ran out of time), or none within the
    browser's TIMEOUT_SECONDS, is counted, and its time is kept: it is how long the person waited."""
    timings: dict[str, list[float]] = {name: [] for name in pages}
    failed: Counter[str] = Counter()
    timed_out: Counter[str] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def user() -> None:
        try:
            browser = signed_in.another_tab()
            opened = browser.get(f"/register/children/{child_id}")
            browser.post(
                f"/register/children/{child_id}", {"purpose": "压力测试 benchmark", "csrf_token": browser.csrf(opened)}
            )
            for _ in range(REQUESTS):
                for name, path in pages.items():
                    started = time.perf_counter()
                    try:
                        browser.get(path)
                    except urllib.error.HTTPError:
                        with lock:
                            failed[name] += 1
                    except TimeoutError:
                        with lock:
                            failed[name] += 1
                            timed_out[name] += 1
                    elapsed = (time.perf_counter() - started) * 1000.0
                    with lock:
                        timings[name].append(elapsed)
        except BaseException as exc:  # a failed user fails the benchmark, below
            errors.append(exc)

    threads = [threading.Thread(target=user) for _ in range(USERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} users failed: {errors[0]!r}")
    return timings, failed, timed_out


def run() -> tuple[list[Figure], int]:
    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    kafka = start_kafka()
    with TemporaryDirectory(prefix="bench-portal-") as folder:
        data_dir = Path(folder)
        config = StackConfig(
            data_dir=data_dir,
            kafka_bootstrap=kafka.bootstrap_servers,
            port_offset=PORT_OFFSET,
            extra_env=isolated_kafka_env(kafka) | {"LOG_LEVEL": "WARNING"},
        )
        stack = Stack(config)
        components = [*SERVICES, "gateway"]
        password = dev_secrets(data_dir)["DEMO_PASSWORD"]
        stack.migrate(components)
        stack.run_once("registry", "onboard-tenant", "--code", TOWN, "--name", "良乡镇", "--district", DISTRICT)
        stack.run_once("gateway", "seed-demo", "--tenant", TOWN, extra_env={"DEMO_PASSWORD": password})
        load_register(config.environment("registry"), TOWN, DISTRICT, CHILDREN)
        stack.start(components)
        try:
            stack.wait_healthy(timeout=120)
            _wait_settled(data_dir, list(SERVICES))
            base_url = f"http://127.0.0.1:{config.gateway_port}"
            caseworker = Browser(base_url).sign_in("caseworker", password)
            listing = caseworker.get("/register")
            child_id = _CHILD.findall(listing)[0]
            first = re.search(r'data-child-id="[0-9a-f]+">\s*<td[^>]*><a[^>]*>([^<]+)<', listing)
            pages = {
                "static stylesheet": "/static/style.css",
                "dashboard": "/dashboard",
                "register by village": f"/register?village={TOWN}",
                "register by name": "/register?name=" + urllib.parse.quote(first.group(1) if first else "王"),
                "child's case file": f"/register/children/{child_id}?tab=profile",
            }
            timings, failed, timed_out = _load(caseworker, pages, child_id)
        finally:
            stack.stop()
    static = _p95(timings.pop("static stylesheet"))
    unit = f"ms p95, {USERS} users, {CHILDREN} children"
    figures = [
        Figure(f"{name} p95", _p95(samples), "static page p95", static, unit) for name, samples in timings.items()
    ]
    for name, samples in timings.items():
        print(
            f"{name}: median {statistics.median(samples):.1f} ms over {len(samples)} requests, {failed[name]} failed"
            f" ({timed_out[name]} of them no answer within {TIMEOUT_SECONDS} s)"
        )
    return figures, sum(failed.values())


def main() -> None:
    figures, failed = run()
    print_figures("Portal pages under load (p95, beside a static page of the same gateway)", figures)
    if failed:
        raise RuntimeError(f"{failed} page requests failed (see above)")
