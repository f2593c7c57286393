"""The columns a table really has: so kkobot can write to operators' existing tables as they are."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from twisted.internet import defer


class Column(NamedTuple):
    """One column as the database describes it."""

    name: str
    dataType: str  # lower case: varchar, int, datetime, enum, text, ...
    nullable: bool
    hasDefault: bool  # a DEFAULT, or filled by the database (AUTO_INCREMENT)
    maxLength: int | None  # characters, for text columns
    columnType: str  # the full type, e.g. "enum('success','timeout','error')"


Shape = dict[str, Column]


class TableInfo(NamedTuple):
    """A table's columns and its unique keys (the primary key among them)."""

    columns: Shape
    uniqueKeys: list[tuple[str, ...]]


def readShape(txn: Any, engine: str, table: str) -> Shape | None:
    """Runs in a pool thread: the columns of C{table}, or None when it does not exist."""
    if engine == "sqlite":
        txn.execute(f"PRAGMA table_info({table})")
        rows = txn.fetchall()
        if not rows:
            return None
        shape: Shape = {}
        for _cid, name, declared, notnull, default, pk in rows:
            declared = (declared or "").lower()
            shape[name] = Column(
                name=name,
                dataType=declared.split("(")[0].strip() or "text",
                nullable=not notnull,
                hasDefault=default is not None or bool(pk),
                maxLength=None,
                columnType=declared,
            )
        return shape
    txn.execute(
        "SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE, COLUMN_DEFAULT, "
        "CHARACTER_MAXIMUM_LENGTH, COLUMN_TYPE, EXTRA FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (table,),
    )
    rows = txn.fetchall()
    if not rows:
        return None
    shape = {}
    for name, dataType, nullable, default, maxLength, columnType, extra in rows:
        shape[name] = Column(
            name=name,
            dataType=str(dataType).lower(),
            nullable=nullable == "YES",
            # MariaDB reports a nullable column without DEFAULT as default 'NULL'.
            hasDefault=default is not None or nullable == "YES"
            or "auto_increment" in str(extra).lower(),
            maxLength=int(maxLength) if maxLength is not None else None,
            columnType=str(columnType).lower(),
        )
    return shape


def shapeOf(database: Any, table: str) -> defer.Deferred[Shape | None]:
    """The columns of C{table} in C{database} (a L{kkobot.db.pool.Database}), or None."""
    return database.runInteraction(readShape, database.engine, table)


def missingRequired(shape: Shape, written: set[str]) -> list[str]:
    """Columns that need a value (NOT NULL, no default) which a writer of C{written} leaves out."""
    return sorted(
        name for name, column in shape.items()
        if name not in written and not column.nullable and not column.hasDefault
    )


def readUniqueKeys(txn: Any, engine: str, table: str) -> list[tuple[str, ...]]:
    """Runs in a pool thread: the column lists of C{table}'s primary and unique keys."""
    if engine == "sqlite":
        keys: list[tuple[str, ...]] = []
        txn.execute(f"PRAGMA index_list(\"{table}\")")
        for row in txn.fetchall():
            name, unique, partial = row[1], row[2], row[4] if len(row) > 4 else 0
            if not unique or partial:
                continue
            txn.execute(f"PRAGMA index_info(\"{name}\")")
            keys.append(tuple(column for _, _, column in sorted(txn.fetchall())))
        # An INTEGER PRIMARY KEY is the rowid: it has no entry in index_list.
        txn.execute(f"PRAGMA table_info(\"{table}\")")
        primary = sorted((pk, name) for _, name, _, _, _, pk in txn.fetchall() if pk)
        if primary:
            key = tuple(name for _, name in primary)
            if key not in keys:
                keys.append(key)
        return keys
    txn.execute(
        "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND NON_UNIQUE = 0 "
        "ORDER BY INDEX_NAME, SEQ_IN_INDEX",
        (table,),
    )
    byIndex: dict[str, list[str]] = {}
    for index, column in txn.fetchall():
        byIndex.setdefault(index, []).append(column)
    return [tuple(columns) for columns in byIndex.values()]


def readTable(txn: Any, engine: str, table: str) -> TableInfo | None:
    """Runs in a pool thread: C{table}'s columns and unique keys, or None when it does not exist."""
    columns = readShape(txn, engine, table)
    if columns is None:
        return None
    return TableInfo(columns, readUniqueKeys(txn, engine, table))


def enumValues(column: Column) -> tuple[str, ...] | None:
    """The values an enum (or set) column accepts; None for any other type."""
    if column.dataType not in ("enum", "set"):
        return None
    inside = column.columnType[column.columnType.index("(") + 1: column.columnType.rindex(")")]
    return tuple(v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", inside))
