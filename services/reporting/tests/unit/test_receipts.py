import dataclasses
import re
import secrets
from collections import Counter
from datetime import UTC, date, datetime

import pytest

from services.reporting.domain.errors import InvalidInput, RateLimited
from services.reporting.domain.model import (
    AgencyKind,
    Channel,
    Fact,
    Place,
    Reporter,
    ReporterRole,
    ReportStatus,
    SituationType,
    Urgency,
)
from services.reporting.domain.receipts import (
    ALPHABET,
    RANDOM_BITS,
    RANDOM_CHARS,
    ReporterStatus,
    ReporterView,
    TokenBucketLimiter,
    new_receipt,
    parse_receipt,
    reporter_view,
)
from services.reporting.tests.unit.builders import child, identity_number, report, submission

FORMAT = re.compile(r"R-[0-9A-HJKMNP-TV-Z]{7}-[0-9A-HJKMNP-TV-Z]{7}-[0-9A-HJKMNP-TV-Z]{7}")
SAMPLE = [new_receipt() for _ in range(20)]


def compact(receipt: str) -> str:
    return receipt.removeprefix("R-").replace("-", "")


def is_accepted(text: str) -> bool:
    try:
        parse_receipt(text)
    except InvalidInput:
        return False
    return True


# --- unguessable ------------------------------------------------------------------------------------------


def test_format_and_entropy():
    assert len(ALPHABET) == len(set(ALPHABET)) == 32
    assert RANDOM_BITS == 5 * RANDOM_CHARS >= 80
    for receipt in SAMPLE:
        assert FORMAT.fullmatch(receipt), receipt


def test_receipts_come_from_the_secure_random_source(monkeypatch):
    asked = []

    def fake_randbits(bits: int) -> int:
        asked.append(bits)
        return (1 << bits) - 1

    monkeypatch.setattr(secrets, "randbits", fake_randbits)
    assert compact(new_receipt())[:RANDOM_CHARS] == "Z" * RANDOM_CHARS
    assert asked == [RANDOM_BITS]


def test_receipts_are_unique_and_every_position_uses_the_whole_alphabet():
    many = [compact(new_receipt()) for _ in range(5000)]
    assert len(set(many)) == len(many)
    for position in range(RANDOM_CHARS):
        counts = Counter(receipt[position] for receipt in many)
        assert set(counts) == set(ALPHABET)
        # 5000 / 32 = 156 expected; a fixed or biased position would fall far outside this band.
        assert min(counts.values()) > 80 and max(counts.values()) < 240


# --- parsing and the check character ------------------------------------------------------------------------


def test_a_receipt_parses_to_itself():
    for receipt in SAMPLE:
        assert parse_receipt(receipt) == receipt


def test_parsing_forgives_how_people_type():
    receipt = SAMPLE[0]
    body = compact(receipt)
    for typed in [
        receipt.lower(),
        body,
        "r" + body,
        " ".join(body[i : i + 4] for i in range(0, len(body), 4)),
        f"  {receipt}\n",
    ]:
        assert parse_receipt(typed) == receipt


def test_look_alike_letters_are_read_as_digits():
    receipt = next(r for r in (new_receipt() for _ in range(1000)) if "0" in compact(r) and "1" in compact(r))
    typed = receipt.replace("0", "O").replace("1", "l", 1).replace("1", "I")
    assert parse_receipt(typed) == receipt


@pytest.mark.parametrize("text", ["", "R-", "R-123", "hello world", "R-" + "U" * 21, "R-" + "0" * 22])
def test_garbage_is_rejected(text):
    with pytest.raises(InvalidInput) as error:
        parse_receipt(text)
    assert error.value.violations[0].field == "receipt"


def test_every_single_character_typo_is_caught():
    for receipt in SAMPLE:
        body = compact(receipt)
        for position, original in enumerate(body):
            for typo in ALPHABET.replace(original, ""):
                assert not is_accepted(body[:position] + typo + body[position + 1 :])


@pytest.mark.parametrize("distance", [1, 2])
def test_every_transposition_of_neighbours_is_caught(distance):
    for receipt in SAMPLE:
        body = compact(receipt)
        for i in range(len(body) - distance):
            j = i + distance
            if body[i] == body[j]:
                continue
            swapped = list(body)
            swapped[i], swapped[j] = swapped[j], swapped[i]
            assert not is_accepted("".join(swapped)), (receipt, i, j)


# --- what a reporter sees -------------------------------------------------------------------------------------


def test_reporter_view_has_only_the_allowed_fields():
    assert [f.name for f in dataclasses.fields(ReporterView)] == [
        "receipt",
        "received_on",
        "status",
        "outcome_notice",
    ]


def test_reporter_view_leaks_nothing_about_the_child_the_family_or_the_reporter():
    secrets_in_report = {
        "child_name": "张小明",
        "identity_number": identity_number("11011120150301123"),
        "description": "左臂有淤青的男孩",
        "school": "良乡中心小学",
        "guardian": "张大山",
        "place_text": "良乡镇西路村12号",
        "division_code": "110111008001",
        "narrative": "邻居说孩子的父亲经常打他,昨晚又听到哭声。",
        "reporter_name": "王老师",
        "reporter_phone": "13800138000",
        "organisation": "良乡中心小学教务处",
        "child_id": "child-7f3a",
        "group_id": "group-19c2",
        "tenant_id": "110111008",
        "attention_reason": "registry matching timed out",
    }
    s = secrets_in_report
    sub = submission(
        Channel.MANDATED_REPORTER,
        child=child(
            name=s["child_name"],
            identity_number=s["identity_number"],
            description=s["description"],
            school=s["school"],
            guardian_names=(s["guardian"],),
        ),
        place=Place(s["division_code"], s["place_text"]),
        narrative=s["narrative"],
        reporter=Reporter(s["reporter_name"], s["reporter_phone"], s["organisation"], role=ReporterRole.TEACHER),
        situations=frozenset({SituationType.VIOLENCE_INJURY_SIGNS}),
        facts=frozenset({Fact.INJURED}),
    )
    rep = report(
        sub,
        tenant_id=s["tenant_id"],
        child_id=s["child_id"],
        group_id=s["group_id"],
        urgency=Urgency.CRISIS,
        status=ReportStatus.NEEDS_ATTENTION,
        attention_reason=s["attention_reason"],
        outcome_notice="您反映的情况已转交属地政府处理。",
    )
    view = reporter_view(rep)
    shown = repr(view) + repr(dataclasses.asdict(view)) + view.status.label
    for name, value in secrets_in_report.items():
        assert value not in shown, name
    for internal in ["crisis", "危机", "needs_attention", "violence", "injur", AgencyKind.POLICE.value]:
        assert internal not in shown
    assert view == ReporterView(rep.receipt, rep.received_at.date(), ReporterStatus.IN_HANDLING, rep.outcome_notice)


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (ReportStatus.RECEIVED, ReporterStatus.RECEIVED),
        (ReportStatus.TRIAGED, ReporterStatus.RECEIVED),
        (ReportStatus.LINKED, ReporterStatus.IN_HANDLING),
        (ReportStatus.IN_PROGRESS, ReporterStatus.IN_HANDLING),
        (ReportStatus.NEEDS_ATTENTION, ReporterStatus.IN_HANDLING),
        (ReportStatus.CLOSED, ReporterStatus.CLOSED),
    ],
)
def test_status_is_coarse(status, shown):
    assert reporter_view(report(status=status)).status is shown
    assert shown.label in {"已受理", "处理中", "已办结"}


def test_received_date_is_the_date_in_beijing():
    late_utc = datetime(2024, 5, 20, 17, 0, tzinfo=UTC)  # 01:00 on the 21st in Beijing
    assert reporter_view(report(received_at=late_utc)).received_on == date(2024, 5, 21)


# --- rate limiter ---------------------------------------------------------------------------------------------


def test_bucket_allows_a_burst_then_limits():
    limiter = TokenBucketLimiter(capacity=3, refill_per_second=0.5)
    for _ in range(3):
        limiter.acquire("1.2.3.4", now=100.0)
    with pytest.raises(RateLimited) as error:
        limiter.acquire("1.2.3.4", now=100.0)
    assert error.value.retry_after_seconds == pytest.approx(2.0)


def test_bucket_refills_over_time_up_to_its_capacity():
    limiter = TokenBucketLimiter(capacity=2, refill_per_second=1.0)
    limiter.acquire("a", now=0.0)
    limiter.acquire("a", now=0.0)
    with pytest.raises(RateLimited) as error:
        limiter.acquire("a", now=0.5)
    assert error.value.retry_after_seconds == pytest.approx(0.5)
    limiter.acquire("a", now=1.0)  # refilled one token in total
    limiter.acquire("a", now=1000.0)
    limiter.acquire("a", now=1000.0)
    with pytest.raises(RateLimited):
        limiter.acquire("a", now=1000.0)  # never more than the capacity


def test_clients_have_separate_buckets():
    limiter = TokenBucketLimiter(capacity=1, refill_per_second=0.1)
    limiter.acquire("a", now=0.0)
    limiter.acquire("b", now=0.0)
    with pytest.raises(RateLimited):
        limiter.acquire("a", now=0.0)


def test_refused_attempts_do_not_earn_tokens_and_a_clock_going_back_refills_nothing():
    limiter = TokenBucketLimiter(capacity=1, refill_per_second=1.0)
    limiter.acquire("a", now=10.0)
    with pytest.raises(RateLimited):
        limiter.acquire("a", now=5.0)
    with pytest.raises(RateLimited):
        limiter.acquire("a", now=10.5)


def test_memory_is_bounded_by_forgetting_the_least_recently_seen_clients():
    limiter = TokenBucketLimiter(capacity=1, refill_per_second=0.001, max_clients=2)
    limiter.acquire("a", now=0.0)
    limiter.acquire("b", now=0.0)
    with pytest.raises(RateLimited):
        limiter.acquire("a", now=1.0)  # "a" is now the most recently seen
    limiter.acquire("c", now=1.0)  # forgets "b"
    limiter.acquire("b", now=1.0)  # a fresh bucket; forgets "a"
    with pytest.raises(RateLimited):
        limiter.acquire("c", now=1.0)


@pytest.mark.parametrize(("capacity", "rate", "clients"), [(0, 1.0, 10), (1, 0.0, 10), (1, 1.0, 0)])
def test_limiter_rejects_meaningless_settings(capacity, rate, clients):
    with pytest.raises(ValueError):
        TokenBucketLimiter(capacity, rate, clients)
