"""X-Forwarded-For is believed only from the configured proxies."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import Client

from gateway.proxies import TrustedProxyFix, parse_networks


def seen_address(peer: str, forwarded_for: str) -> str:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [environ["REMOTE_ADDR"].encode()]

    wrapped = TrustedProxyFix(app, 1, parse_networks("10.0.0.0/8, 192.168.1.5"))
    reply = Client(wrapped).get("/", headers={"X-Forwarded-For": forwarded_for}, environ_base={"REMOTE_ADDR": peer})
    return reply.get_data(as_text=True)


def test_a_trusted_proxy_passes_on_the_client_address() -> None:
    assert seen_address("10.1.2.3", "203.0.113.9") == "203.0.113.9"
    assert seen_address("192.168.1.5", "203.0.113.9") == "203.0.113.9"


def test_anyone_else_cannot_choose_their_address() -> None:
    assert seen_address("198.51.100.7", "10.0.0.1") == "198.51.100.7"
    assert seen_address("192.168.1.6", "203.0.113.9") == "192.168.1.6"


def test_a_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300/8'"):
        parse_networks("10.0.0.0/8, 10.0.0.300/8")
