"""The applications page follows ListApplications' pages: it asks for 50 after the `page` token of its
"next page" link, and shows that link only while the service has a next page (issue 16)."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from gateway.clients import Caller
from gateway.tests.unit.conftest import login
from gateway.tests.unit.fakes import FakeBackends


def test_the_applications_page_follows_the_pages(client: FlaskClient, backends: FakeBackends) -> None:
    recorded = backends.benefits

    def benefits(caller: Caller, method: str, request: Any) -> Any:
        reply = recorded(caller, method, request)
        if method == "ListApplications" and not request.page_token:
            reply.next_page_token = "second-page"
        return reply

    backends.benefits = benefits  # type: ignore[method-assign]
    login(client)
    first = client.get("/benefits/applications?status=draft").get_data(as_text=True)
    assert 'id="next-page"' in first and "page=second-page" in first and "status=draft" in first
    _, request = backends.last("ListApplications")
    assert (request.page_size, request.page_token) == (50, "")
    last = client.get("/benefits/applications?status=draft&page=second-page").get_data(as_text=True)
    _, request = backends.last("ListApplications")
    assert (request.page_size, request.page_token, request.status) == (50, "second-page", "draft")
    assert 'id="next-page"' not in last
