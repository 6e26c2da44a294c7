"""Keyset paging for every service's lists: one page size rule and one opaque page token.

A page is the rows after the last row of the previous page in (sort key, id) order, so a page costs the same
at the end of a list as at its start and rows added meanwhile never shift a page. The token is the last row's
(sort key, id), base64 of JSON: opaque to callers, checked on the way back in.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from platform_runtime import errors

DEFAULT_PAGE_SIZE = 50
PAGE_SIZE_MAX = 200

Row = TypeVar("Row")
Selected = TypeVar("Selected", bound=tuple[Any, ...])


def page_size(size: int) -> int:
    """The page size a request asked for: 0 means the default; outside 0..PAGE_SIZE_MAX is the caller's error."""
    if not 0 <= size <= PAGE_SIZE_MAX:
        raise errors.InvalidInput.single("page_size", f"must be between 1 and {PAGE_SIZE_MAX}")
    return size or DEFAULT_PAGE_SIZE


def page_token(key: object, row_id: object) -> str:
    """The token naming the row with sort key `key` and id `row_id` (a naive time is UTC, as SQLite gives it)."""
    if isinstance(key, datetime) and key.tzinfo is None:
        key = key.replace(tzinfo=UTC)
    shown = key.isoformat() if isinstance(key, date) else key
    return base64.urlsafe_b64encode(json.dumps([shown, row_id]).encode()).decode()


def read_page_token(token: str, key: InstrumentedAttribute[Any], row_id: InstrumentedAttribute[Any]) -> tuple[Any, Any]:
    """The (sort key, id) a token names, as the columns' Python types; a token this list did not give is refused."""
    try:
        shown, last_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return _as(key, shown), _as(row_id, last_id)
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error):
        raise errors.InvalidInput.single("page_token", "is not a token this service gave") from None


def after(
    query: Select[Selected],
    key: InstrumentedAttribute[Any],
    row_id: InstrumentedAttribute[Any],
    *,
    newest_first: bool,
    size: int,
    token: str,
) -> Select[Selected]:
    """`query` narrowed to the rows after the one `token` names, ordered by `key` then id, one row more than a
    page (that row only tells whether a next page exists)."""
    if token:
        at, last_id = read_page_token(token, key, row_id)
        beyond = key < at if newest_first else key > at
        query = query.where(beyond | ((key == at) & (row_id > last_id)))
    return query.order_by(key.desc() if newest_first else key, row_id).limit(size + 1)


def split(rows: Sequence[Row], size: int, position: Callable[[Row], tuple[object, object]]) -> tuple[list[Row], str]:
    """The page's rows and the next page's token ("" on the last page) from what `after` fetched."""
    if len(rows) <= size:
        return list(rows), ""
    return list(rows[:size]), page_token(*position(rows[size - 1]))


def one_page(
    session: Session,
    query: Select[tuple[Row]],
    key: InstrumentedAttribute[Any],
    row_id: InstrumentedAttribute[Any],
    *,
    newest_first: bool,
    size: int,
    token: str,
) -> tuple[list[Row], str]:
    """One page of a query of ORM records (rows and the next page's token): `after` then `split`."""
    size = page_size(size)
    ordered = after(query, key, row_id, newest_first=newest_first, size=size, token=token)
    rows = session.scalars(ordered).all()
    return split(rows, size, lambda row: (getattr(row, key.key), getattr(row, row_id.key)))


def _as(column: InstrumentedAttribute[Any], value: Any) -> Any:
    python_type = column.type.python_type
    if python_type is datetime:
        return datetime.fromisoformat(value)
    if python_type is date:
        return date.fromisoformat(value)
    if not isinstance(value, python_type):
        raise TypeError(f"{value!r} is not a {python_type.__name__}")
    return value
