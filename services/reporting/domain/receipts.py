"""Receipts for reporters: unguessable numbers, what a lookup may show, and lookup rate limiting.

A receipt is a bearer secret: whoever holds it sees the status and the outcome notice, so it carries
100 random bits, and a lookup shows nothing about the child or the family.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

from platform_runtime.vocabulary import LabelledEnum, set_labels
from services.reporting.domain.errors import InvalidInput, RateLimited
from services.reporting.domain.model import CHINA_STANDARD_TIME, Report, ReportStatus

# Crockford base32: no I, L, O, U, so it reads aloud and copies by hand without ambiguity.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_CHARS = 20
RANDOM_BITS = RANDOM_CHARS * 5  # 100 bits
PREFIX = "R"
GROUP_SIZE = 7  # 20 random + 1 check character = three groups of seven
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})  # Crockford's decoding of look-alikes
_GF32_MODULUS = 0b100101  # x^5 + x^2 + 1, irreducible over GF(2)


def new_receipt() -> str:
    """A fresh receipt such as `R-T242F2X-Q4KERV3-R7HPCPW`, from the OS's secure random source."""
    value = secrets.randbits(RANDOM_BITS)
    body = "".join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(RANDOM_CHARS)))
    return _format(body + _check_char(body))


def parse_receipt(text: str) -> str:
    """The canonical form of a receipt as a person typed it; raises `InvalidInput` before any lookup.

    Accepts lower case, spaces, missing or misplaced hyphens, a missing `R-`, and O/I/L for 0/1/1.
    """
    chars = "".join(text.split()).upper().replace("-", "")
    if len(chars) == RANDOM_CHARS + 2 and chars.startswith(PREFIX):
        chars = chars[1:]
    chars = chars.translate(_READ_AS)
    if len(chars) != RANDOM_CHARS + 1 or any(char not in ALPHABET for char in chars):
        raise InvalidInput.single("receipt", "is not a receipt number (R- and 21 letters or digits)")
    if _check_char(chars[:-1]) != chars[-1]:
        raise InvalidInput.single("receipt", "has a typo: please check the receipt number")
    return _format(chars)


def _format(chars: str) -> str:
    groups = [chars[i : i + GROUP_SIZE] for i in range(0, len(chars), GROUP_SIZE)]
    return "-".join([PREFIX, *groups])


def _check_char(body: str) -> str:
    """Check character catching every single substitution and every adjacent transposition.

    The body's digits are the coefficients of a polynomial over GF(32), evaluated at x (Horner's
    rule); the check character makes the whole receipt evaluate to zero. A substitution adds
    e * x^k, a transposition (a - b) * x^k * (x + 1): never zero, so never missed.
    """
    acc = 0
    for char in body:
        acc = _times_x(acc) ^ ALPHABET.index(char)
    return ALPHABET[_times_x(acc)]


def _times_x(value: int) -> int:
    value <<= 1
    return value ^ _GF32_MODULUS if value & 0b100000 else value


class ReporterStatus(LabelledEnum):
    """The coarse status a reporter sees; internal steps and failures are not shown."""

    RECEIVED = "received"
    IN_HANDLING = "in_handling"
    CLOSED = "closed"


set_labels(
    ReporterStatus,
    {ReporterStatus.RECEIVED: "已受理", ReporterStatus.IN_HANDLING: "处理中", ReporterStatus.CLOSED: "已办结"},
)
_REPORTER_STATUS = {
    ReportStatus.RECEIVED: ReporterStatus.RECEIVED,
    ReportStatus.TRIAGED: ReporterStatus.RECEIVED,
    ReportStatus.LINKED: ReporterStatus.IN_HANDLING,
    ReportStatus.IN_PROGRESS: ReporterStatus.IN_HANDLING,
    ReportStatus.NEEDS_ATTENTION: ReporterStatus.IN_HANDLING,
    ReportStatus.CLOSED: ReporterStatus.CLOSED,
}


@dataclass(frozen=True)
class ReporterView:
    """Everything a receipt lookup returns. Never add child, family, place or reporter data here."""

    receipt: str
    received_on: date
    status: ReporterStatus
    outcome_notice: str | None


def reporter_view(report: Report) -> ReporterView:
    return ReporterView(
        receipt=report.receipt,
        received_on=report.received_at.astimezone(CHINA_STANDARD_TIME).date(),
        status=_REPORTER_STATUS[report.status],
        outcome_notice=report.outcome_notice,
    )


class TokenBucketLimiter:
    """In-memory token bucket per client key (e.g. the caller's IP address), for receipt lookups.

    `now` is a monotonic clock reading in seconds, passed in so tests control time. Memory is bounded:
    beyond `max_clients` the least recently seen clients are forgotten.
    """

    def __init__(self, capacity: float, refill_per_second: float, max_clients: int = 100_000) -> None:
        if capacity < 1 or refill_per_second <= 0 or max_clients < 1:
            raise ValueError("capacity >= 1, refill_per_second > 0 and max_clients >= 1 are required")
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last seen)

    def acquire(self, client: str, now: float) -> None:
        """Take one token for `client`, or raise `RateLimited` saying when the next one is due."""
        tokens, last_seen = self._buckets.pop(client, (self.capacity, now))
        now = max(now, last_seen)  # a clock that went backwards must not earn tokens later
        tokens = min(self.capacity, tokens + (now - last_seen) * self.refill_per_second)
        allowed = tokens >= 1
        self._buckets[client] = (tokens - 1 if allowed else tokens, now)  # re-inserted: most recent
        while len(self._buckets) > self.max_clients:
            del self._buckets[next(iter(self._buckets))]
        if not allowed:
            raise RateLimited((1 - tokens) / self.refill_per_second)
