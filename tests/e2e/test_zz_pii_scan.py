"""After the end-to-end flows: nothing that identifies a child lies in plaintext where it must not.

Named `zz` so it runs last in tests/e2e (pytest takes the files in order): by then every stack of the
session has run its flows, with the registry's synthetic children seeded. It scans
- a pg_dump of every database this test process made: no full identity number (they are stored
  encrypted, found by a blind index, shown masked — docs/data-protection.md); names and contact phones
  have plaintext columns by design;
- every message of this process's Kafka topics (read through the client: the producers compress with
  lz4, so the segment files themselves hide nothing from a reader but also show nothing to a grep):
  no identity number, no phone number, no seeded child's name;
- every process log of the stacks: the same.
A finding is reported by place and kind with the value masked, never in full.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from gateway.accounts import DEMO_USERS
from platform_runtime.settings import KafkaSettings
from services.registry.domain.synthetic import generate_children
from tests.support import infra

pytestmark = pytest.mark.e2e

_IDENTITY = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_PHONE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# `python -m services.registry seed-demo` defaults (services/registry/entrypoints/demo.py).
SEEDED_CHILDREN, SEED = 40, 2014
# The demo staff accounts' invented phone numbers: a member of staff's work contact, not a child's.
STAFF_PHONES = frozenset(user.phone for user in DEMO_USERS if user.phone)


def is_identity_number(candidate: str) -> bool:
    """GB 11643: a real calendar birth date and the ISO 7064 MOD 11-2 check character."""
    try:
        born = datetime.strptime(candidate[6:14], "%Y%m%d").date()
    except ValueError:
        return False
    check = "10X98765432"[sum(int(d) * w for d, w in zip(candidate[:17], _WEIGHTS, strict=True)) % 11]
    return born.year > 1900 and born <= date.today() and candidate[17].upper() == check


def identity_numbers(text: str) -> list[str]:
    return [match for match in _IDENTITY.findall(text) if is_identity_number(match)]


def seeded_names() -> list[str]:
    """The names `seed-demo` gave the synthetic children (the same generator, seed and day)."""
    children = generate_children(SEEDED_CHILDREN, rng=random.Random(SEED), as_of=date.today())
    return sorted({child.name for child in children})


def masked(value: str) -> str:
    return value[:1] + "*" * (len(value) - 1) if len(value) < 4 else value[:1] + "*" * (len(value) - 2) + value[-1:]


def findings(place: str, text: str, *, everything: bool, names: Iterable[str]) -> list[str]:
    """What `text` gives away: identity numbers always; phones and seeded names too where `everything`."""
    found = [f"{place}: identity number {masked(number)}" for number in identity_numbers(text)]
    if everything:
        phones = [phone for phone in _PHONE.findall(text) if phone not in STAFF_PHONES]
        found += [f"{place}: phone number {masked(phone)}" for phone in phones]
        found += [f"{place}: seeded child's name {masked(name)}" for name in names if name in text]
    return found


# -- the places --------------------------------------------------------------------------------------------


def _pg_dump() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))
    tool = str(found[-1]) if found else shutil.which("pg_dump")
    if not tool:
        pytest.fail("pg_dump is needed (scripts/postgres.sh install)")
    return tool


def database_dumps(postgres_url: str) -> Iterator[tuple[str, str]]:
    libpq_url = postgres_url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0]
    tool = _pg_dump()

    def dump(name: str) -> tuple[str, str]:
        done = subprocess.run(
            [tool, "--no-owner", "--no-privileges", f"{libpq_url}/{name}"], capture_output=True, check=True
        )
        return name, done.stdout.decode("utf-8", "replace")

    # A test may have dropped its own database since: dump those that are left.
    with psycopg.connect(f"{libpq_url}/postgres") as connection:
        existing = {name for (name,) in connection.execute("SELECT datname FROM pg_database")}
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield from pool.map(dump, [name for name in infra.CREATED_DATABASES if name in existing])


def kafka_messages(kafka: KafkaSettings) -> Iterator[tuple[str, str]]:
    """Every record of this process's topics, key, value and headers, as text."""
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    topics = admin.list_topics(timeout=30).topics
    mine = tuple(infra._CREATED_PREFIXES)
    consumer = Consumer(
        {"bootstrap.servers": kafka.bootstrap_servers, "group.id": "pii-scan", "enable.auto.commit": False}
    )
    try:
        remaining: dict[tuple[str, int], int] = {}
        for name, metadata in topics.items():
            if name.startswith(mine):
                for partition in metadata.partitions:
                    low, high = consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=10)
                    if high > low:
                        remaining[(name, partition)] = high
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in remaining])
        while remaining:
            batch = consumer.consume(num_messages=1000, timeout=10)
            if not batch:
                pytest.fail(f"Kafka stopped answering with {len(remaining)} partitions unread")
            for message in batch:
                topic, partition, offset = message.topic() or "", message.partition() or 0, message.offset() or 0
                if message.error():
                    continue
                parts: list[str | bytes | None] = [message.key(), message.value()]
                parts += [header[1] for header in message.headers() or []]
                yield topic, "\n".join(_text(part) for part in parts)
                if offset + 1 >= remaining.get((topic, partition), offset + 2):
                    del remaining[(topic, partition)]
    finally:
        consumer.close()


def _text(part: str | bytes | None) -> str:
    return part.decode("utf-8", "replace") if isinstance(part, bytes) else (part or "")


def process_logs(base: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(base.rglob("logs/*.log")):
        yield str(path.relative_to(base)), path.read_text(encoding="utf-8", errors="replace")


# -- the scan ----------------------------------------------------------------------------------------------


def test_the_detector_knows_an_identity_number_from_other_digits() -> None:
    assert identity_numbers("id=11010519491231002X, ts=17649001234567890") == ["11010519491231002X"]
    assert identity_numbers("a11010519491231002Xb 110105194912310021") == []  # glued to text; wrong check


def test_nothing_identifying_lies_in_plaintext_after_the_flows(
    postgres_url: str, kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    names = seeded_names()
    if not infra.CREATED_DATABASES:
        pytest.skip("scans what the end-to-end tests left: no stack has run in this session")
    problems: list[str] = []
    for database, dump in database_dumps(postgres_url):
        problems += findings(f"database {database}", dump, everything=False, names=names)
    messages = 0
    for topic, text in kafka_messages(kafka):
        messages += 1
        problems += findings(f"Kafka {topic}", text, everything=True, names=names)
    logs = list(process_logs(tmp_path_factory.getbasetemp()))
    for log, text in logs:
        problems += findings(f"log {log}", text, everything=True, names=names)
    assert messages and logs, f"nothing scanned: {messages} Kafka messages, {len(logs)} logs"
    found = sorted(set(problems))
    assert not found, f"{len(found)} plaintext findings:\n" + "\n".join(found[:50])
