"""Forwarded headers are believed only when the request really comes from one of our own proxies.

Werkzeug's ProxyFix alone trusts the last N X-Forwarded-For entries from any peer: a client that reaches the
gateway directly (a misrouted Service, a port-forward) could name any address and slip past the per-address
login and public-report throttles. Here the peer must be inside TRUSTED_PROXIES first.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """`10.0.0.0/8, 192.168.1.5` as networks; raises ValueError naming the bad entry."""
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not an address or network") from exc
    return tuple(networks)


class TrustedProxyFix:
    def __init__(self, app: Any, hops: int, trusted: Iterable[Network]) -> None:
        self._direct = app
        self._proxied = ProxyFix(app, x_for=hops, x_proto=hops)
        self._trusted = tuple(trusted)

    def _from_proxy(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._trusted)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self._from_proxy(environ.get("REMOTE_ADDR", "")):
            return self._proxied(environ, start_response)
        return self._direct(environ, start_response)
