"""The page size rule and the page token every service's lists share (platform_runtime/paging.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Date, DateTime, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from platform_runtime import errors, paging


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    day: Mapped[date] = mapped_column(Date)


def test_zero_means_the_default_and_outside_the_range_is_the_callers_error() -> None:
    assert paging.page_size(0) == paging.DEFAULT_PAGE_SIZE
    assert paging.page_size(paging.PAGE_SIZE_MAX) == paging.PAGE_SIZE_MAX
    for wrong in (-1, paging.PAGE_SIZE_MAX + 1):
        with pytest.raises(errors.InvalidInput):
            paging.page_size(wrong)


def test_a_token_gives_back_the_key_and_id_in_their_columns_types() -> None:
    at = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
    assert paging.read_page_token(paging.page_token(at, 7), Row.at, Row.id) == (at, 7)
    naive = at.replace(tzinfo=None)  # as SQLite gives it: read back as UTC
    assert paging.read_page_token(paging.page_token(naive, 7), Row.at, Row.id) == (at, 7)
    assert paging.read_page_token(paging.page_token(date(2024, 5, 1), 1), Row.day, Row.id) == (date(2024, 5, 1), 1)
    assert paging.read_page_token(paging.page_token("b", 2), Row.name, Row.id) == ("b", 2)


@pytest.mark.parametrize("token", ["!!", "bm90IGpzb24=", "e30=", "WyJ4IiwgInkiXQ==", "WyJiIiwgIjIiXQ=="])
def test_a_token_the_list_did_not_give_is_refused(token: str) -> None:
    # not base64; not JSON; not a pair; not a time; an id of the wrong type
    with pytest.raises(errors.InvalidInput):
        paging.read_page_token(token, Row.at if token != "WyJiIiwgIjIiXQ==" else Row.name, Row.id)


def test_split_gives_the_next_token_only_when_a_row_is_left() -> None:
    assert paging.split([1, 2], 2, lambda n: (n, n)) == ([1, 2], "")
    rows, token = paging.split([1, 2, 3], 2, lambda n: (n, n))
    assert rows == [1, 2] and paging.read_page_token(token, Row.id, Row.id) == (2, 2)
