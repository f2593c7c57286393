"""One retention batch, run in a pool thread: the next rows by primary key, the old ones among them deleted."""

from __future__ import annotations

from typing import Any, Callable

from kkobot.db.shape import readShape
from kkobot.retention.targets import Target


def firstId(txn: Any, engine: str, target: Target) -> int | None:
    """The lowest id of the table; None when it is empty or does not exist (yet)."""
    shape = readShape(txn, engine, target.table)
    if shape is None or target.timeColumn not in shape or target.idColumn not in shape:
        return None
    txn.execute(f"SELECT MIN({target.idColumn}) FROM {target.table}")
    row = txn.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def deleteBatch(txn: Any, sql: Callable[[str], str], target: Target, low: int, cutoff: str,
                size: int) -> tuple[int, int | None]:
    """
    Look at the C{size} rows from id C{low} up (a primary key range: no scan, no lock
    beyond it) and delete those older than C{cutoff}, in this one short transaction.
    Returns (rows deleted, the id to go on from, or None when the old rows are done:
    the range reached the table's end or a row not old yet; ids grow with time).
    """
    idc, tc, table = target.idColumn, target.timeColumn, target.table
    txn.execute(sql(f"SELECT {idc}, {tc} < %s FROM {table} WHERE {idc} >= %s "
                    f"ORDER BY {idc} LIMIT {int(size)}"), (cutoff, low))
    rows = txn.fetchall()
    if not rows:
        return 0, None
    high = int(rows[-1][0])
    old = sum(1 for _, isOld in rows if isOld)
    deleted = 0
    if old:
        txn.execute(sql(f"DELETE FROM {table} WHERE {idc} >= %s AND {idc} <= %s AND {tc} < %s"),
                    (low, high, cutoff))
        deleted = max(txn.rowcount, 0)
    if len(rows) < size or not rows[-1][1]:
        return deleted, None
    return deleted, high + 1
