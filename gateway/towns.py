"""Which towns take public reports: those in the registry's tenant directory, cached for a few minutes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.clients import Backends, Caller
from gateway.tokens import Tokens, is_town_code

CACHE_SECONDS = 300.0


@dataclass(frozen=True)
class Town:
    code: str
    name: str


class TownDirectory:
    def __init__(self, backends: Backends, tokens: Tokens, clock: Callable[[], float] = time.monotonic) -> None:
        self._backends = backends
        self._tokens = tokens
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, Town]]] = {}  # district -> (fetched at, towns)

    def find(self, code: str, client_ip: str) -> Town | None:
        """The onboarded town with this code, or None. Raises BackendError if the registry cannot answer."""
        if not is_town_code(code):
            return None
        district = code[:6]
        fetched = self._cache.get(district)
        if fetched is None or self._clock() - fetched[0] > CACHE_SECONDS:
            caller = Caller(self._tokens.system_principal(code), client_ip)
            towns = {t.code: Town(t.code, t.name) for t in self._backends.list_tenants(caller, district)}
            fetched = (self._clock(), towns)
            self._cache[district] = fetched
        return fetched[1].get(code)
