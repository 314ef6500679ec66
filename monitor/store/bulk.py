"""Many rows as one bound parameter: the table of values batched statements read from.

Responsible for one thing: turning a list of rows into a derived table that an
``INSERT … SELECT``, an ``UPDATE … FROM`` or a ``WHERE … IN (SELECT …)`` can read, with the
rows sent as a single JSON parameter (``jsonb_to_recordset`` on PostgreSQL, ``json_each``
on SQLite).  Why not executemany: SQLAlchemy's "insertmanyvalues" splits a batch into
pages of 1,000 rows, and on SQLite into pages of at most 32,766 parameters (about 2,300
item rows, 16,000 band rows), so the number of statements grew with the number of items;
one JSON parameter keeps every batched statement at one round trip and one cached plan,
whatever the batch holds.  Values are encoded as each column's type binds them on the
dialect (SQLite keeps timestamps as text in SQLAlchemy's own format, so the stored
values are byte-identical to those written by ordinary inserts).  It must not know any
table or any business rule.

The payloads are encoded with orjson: a cold poll's batches send every item's text and
about 25 band rows per item through here, and the standard library's encoder was 6-8 % of
the ingesting process's samples; orjson writes the same JSON (compact, UTF-8, no ASCII
escapes) 4-7 times faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import BigInteger, Text, bindparam, cast, column, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Subquery
from sqlalchemy.types import TypeEngine


def _json(data: Any) -> str:
    """``data`` as compact JSON text (tuples as arrays; integers up to 64 bits, as band keys are)."""
    return orjson.dumps(data).decode()


def json_rows(
    dialect: Dialect, columns: Sequence[tuple[str, TypeEngine[Any]]], rows: Sequence[Sequence[Any]], name: str = "v"
) -> Subquery:
    """A derived table ``name`` with ``columns``, holding ``rows`` (each a sequence in column order)."""
    names = [n for n, _ in columns]
    width = len(names)
    if any(len(row) != width for row in rows):
        raise ValueError(f"every row of {name} needs {width} values")
    postgres = dialect.name == "postgresql"
    if postgres:
        # jsonb_to_recordset reads objects: zipping arrays with the names server-side would
        # cost more than sending the names once per row here.
        data: list[Any] = [
            {n: (v.isoformat() if isinstance(v, datetime) else v) for n, v in zip(names, row, strict=True)}
            for row in rows
        ]
    else:
        # Only the columns whose type converts a value (timestamps) pay a call per row.
        processors = [
            (i, process)
            for i, (_, type_) in enumerate(columns)
            if (process := type_.dialect_impl(dialect).bind_processor(dialect)) is not None
        ]
        if processors:
            data = []
            for row in rows:
                values = list(row)
                for i, process in processors:
                    values[i] = process(values[i])
                data.append(values)
        else:
            data = list(rows)  # the encoder writes tuples as arrays: no copy of each row
    payload = bindparam(f"{name}_rows", _json(data), type_=Text)
    if postgres:
        from sqlalchemy.dialects.postgresql import JSONB  # loaded only where it is used

        table = (
            func.jsonb_to_recordset(cast(payload, JSONB))
            .table_valued(*(column(n, type_) for n, type_ in columns))
            .render_derived(name=f"{name}_r", with_types=True)
        )
        return select(*(table.c[n] for n in names)).subquery(name)
    each = func.json_each(payload).table_valued("value").alias(f"{name}_r")
    return select(*(func.json_extract(each.c.value, f"$[{i}]").label(n) for i, n in enumerate(names))).subquery(name)


def id_list(dialect: Dialect, values: Sequence[int], name: str = "ids") -> Subquery:
    """A derived table ``name`` with one BIGINT column ``id``: a cheaper :func:`json_rows` for a list of integers.

    PostgreSQL gets a native ``bigint[]`` parameter and ``unnest`` (no JSON to parse: it
    halved the cost of the story-lock statement); SQLite reads a JSON array.
    """
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        param = bindparam(f"{name}_ids", list(values), type_=ARRAY(BigInteger()))
        return select(func.unnest(param).column_valued("id").label("id")).subquery(name)
    payload = bindparam(f"{name}_ids", _json(list(values)), type_=Text)
    each = func.json_each(payload).table_valued("value").alias(f"{name}_r")
    return select(each.c.value.label("id")).subquery(name)


def text_list(dialect: Dialect, values: Sequence[str], name: str = "texts") -> Subquery:
    """A derived table ``name`` with one text column ``value``: :func:`id_list` for strings.

    For ``WHERE name IN (SELECT value FROM …)`` over a whole config's source names: as a
    literal ``IN`` list, 10,000 names were 10,000 bound parameters for SQLAlchemy to expand
    and process on every scheduler tick.
    """
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        param = bindparam(f"{name}_texts", list(values), type_=ARRAY(Text()))
        return select(func.unnest(param).column_valued("value").label("value")).subquery(name)
    payload = bindparam(f"{name}_texts", _json(list(values)), type_=Text)
    each = func.json_each(payload).table_valued("value").alias(f"{name}_r")
    return select(each.c.value.label("value")).subquery(name)
