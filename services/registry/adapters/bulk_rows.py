"""Many new rows at once (the survey's batches): one INSERT from arrays on PostgreSQL, one multi-row insert
elsewhere (SQLite).

The rows are what an insert of them through SQLAlchemy would write: the columns' Python-side defaults fill
what a row leaves out, and each value goes through its column's type (JSON as the dialect writes it), so a
row written here reads back the same as one written by the ORM. Columns no row gives and without a Python
default are left to the database (its server default, an autoincrement id).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, String, Table, insert, inspect
from sqlalchemy.orm import Session
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.schema import Column


def insert_rows(session: Session, table: FromClause, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (column name -> value) into `table` (a model's __table__) in the session's transaction,
    in their order."""
    if not rows:
        return
    assert isinstance(table, Table)
    connection = session.connection()
    dialect = connection.dialect
    given = {name for row in rows for name in row}
    columns = [c for c in table.columns if c.name in given or _python_default(c) is not None]
    # Every row with the same columns (a multi-row insert takes its columns from the first row).
    full = [[row[c.name] if c.name in row else _default_value(c) for c in columns] for row in rows]
    if dialect.name != "postgresql":
        connection.execute(
            insert(table), [dict(zip([c.name for c in columns], values, strict=True)) for values in full]
        )
        return
    # One INSERT ... SELECT FROM unnest of one array a column: a single statement with as many parameters
    # as columns, however many rows (COPY would be faster still, but PostgreSQL refuses it under row-level
    # security, which every tenant table has).
    serialize = getattr(dialect, "_json_serializer", None) or json.dumps
    arrays = []
    for index, column in enumerate(columns):
        values = [row[index] for row in full]
        if isinstance(column.type, JSON):
            values = [None if value is None else serialize(value) for value in values]
        arrays.append(values)
    quote = dialect.identifier_preparer.quote
    # Text as text: a cast to varchar(n) would cut a value too long where the insert must refuse it. The
    # arrays go in binary (%b): psycopg escapes each element of a text array literal, ten times the CPU.
    casts = ", ".join(
        f"%b::{'text' if isinstance(c.type, JSON | String) else c.type.compile(dialect)}[]" for c in columns
    )
    targets = ", ".join(quote(c.name) for c in columns)
    selected = ", ".join(f"{quote(c.name)}::json" if isinstance(c.type, JSON) else quote(c.name) for c in columns)
    # The text holds the dialect's quoted names only; the values are parameters.
    name = dialect.identifier_preparer.format_table(table)
    statement = f"INSERT INTO {name} ({targets}) SELECT {selected} FROM unnest({casts}) AS given ({targets})"  # noqa: S608
    connection.exec_driver_sql(statement, tuple(arrays))


def insert_objects(session: Session, objects: Iterable[object]) -> None:
    """Insert new ORM objects (not yet flushed) with `insert_rows`, one table after another in the order the
    tables refer to each other, and take them out of the session so that no flush writes them again. They
    keep their values (ids included) for whoever holds them."""
    by_table: dict[Table, list[dict[str, Any]]] = {}
    taken = []
    for instance in objects:
        mapper = inspect(instance, raiseerr=True).mapper
        table = mapper.local_table
        assert isinstance(table, Table)
        values = vars(instance)
        by_table.setdefault(table, []).append(
            {
                column.name: values[prop.key]
                for prop in mapper.column_attrs
                for column in prop.columns
                if prop.key in values and column.table is table
            }
        )
        taken.append(instance)
    if not taken:
        return
    for table in inspect(taken[0]).mapper.local_table.metadata.sorted_tables:  # type: ignore[union-attr]
        if table in by_table:
            insert_rows(session, table, by_table[table])
    for instance in taken:
        session.expunge(instance)


def _python_default(column: Column[Any]) -> Any:
    default = column.default
    return default if default is not None and (default.is_scalar or default.is_callable) else None


def _default_value(column: Column[Any]) -> Any:
    default = _python_default(column)
    if default is None:
        return None
    return default.arg if default.is_scalar else default.arg(None)
