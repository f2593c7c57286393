"""Database errors sorted into "try again later" and "this row will never be accepted"."""

from __future__ import annotations

# The server or the connection is away or busy: the same rows may succeed later.
TRANSIENT_CODES = frozenset({
    2002, 2003, 2006, 2013, 2014, 2045, 2055,  # cannot connect, gone away, lost
    1040,  # too many connections
    1053,  # server shutdown in progress
    1205, 1213,  # lock wait timeout, deadlock
    1290, 1792, 1836,  # read-only server / transaction / mode
    1317, 1927,  # query interrupted, connection killed
    1158, 1159, 1160, 1161,  # network read/write errors and timeouts
    1021, 1037, 1038, 1041,  # disk full, out of memory
    1180, 1181,  # commit / rollback failed
})

# Two transactions wanted the same locks: one of them is rolled back (or gives up
# waiting). Retried at once, the same work succeeds.
LOCK_CODES = frozenset({1205, 1213})

# Wrong for every row, not for one: the table or the grants changed. Rejecting rows
# one by one would empty the queue into the rejected file, so these are retried
# (with backoff) until an operator fixes the schema.
SCHEMA_CODES = frozenset({
    1044, 1045, 1049, 1142, 1143,  # access denied, unknown database
    1054, 1064, 1146,  # unknown column, syntax error, no such table
    # "Field doesn't have a default value": our INSERTs name every column we know,
    # so this is a column added to the table without a default, refusing every row.
    1364,
})

# The values of some row: the same row fails the same way every time.
ROW_CODES = frozenset({
    1048, 1263,  # NULL into NOT NULL
    1062, 1586, 1557,  # duplicate key
    1216, 1217, 1451, 1452,  # foreign keys
    1264, 1265, 1292, 1366, 1367, 1300, 1406, 1411, 1690,  # value does not fit
    1644,  # SIGNAL from a trigger or procedure
    3819, 4025,  # CHECK constraint
})

# PyMySQL's (and sqlite3's) classes for errors about the data sent.
_ROW_CLASSES = frozenset({"DataError", "IntegrityError", "ProgrammingError"})


def errorCode(error: BaseException) -> int | None:
    """The server's error number (PyMySQL puts it first in args), or None."""
    args = getattr(error, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def isRowError(error: BaseException) -> bool:
    """
    True when the rows themselves are refused: retrying them as they are cannot succeed.

    Anything not known to be about the rows (connections, locks, the schema, errors of
    unknown kind) is False: those rows are kept and retried, never set aside.
    """
    code = errorCode(error)
    if code in TRANSIENT_CODES or code in SCHEMA_CODES:
        return False
    if code in ROW_CODES:
        return True
    name = type(error).__name__
    if type(error).__module__ == "sqlite3":
        # "no such table" and "database is locked" are OperationalErrors in sqlite3.
        return name in {"IntegrityError", "DataError"}
    return name in _ROW_CLASSES


def isSchemaError(error: BaseException) -> bool:
    """
    The table (or its grants) refuses every row of its kind: a column or the table
    missing, a NOT NULL column without default, access denied; or no table could be
    decided for the kind (L{kkobot.db.tablemap.TableError}). The database answers.
    """
    return errorCode(error) in SCHEMA_CODES or type(error).__name__ == "TableError"


def isLockConflict(error: BaseException) -> bool:
    """A deadlock (1213) or lock wait timeout (1205): the same statements succeed when retried."""
    return errorCode(error) in LOCK_CODES


def isDuplicateKey(error: BaseException) -> bool:
    """A unique key refused the insert (MySQL 1062, sqlite3's UNIQUE constraint)."""
    if type(error).__name__ != "IntegrityError":
        return False
    args = getattr(error, "args", ())
    return bool(args) and (args[0] == 1062 or "UNIQUE" in str(args[0]))


def describeError(error: BaseException) -> str:
    """The error's number and class, without its message (which may quote chat text)."""
    code = errorCode(error)
    name = type(error).__name__
    return f"error {code} ({name})" if code is not None else name
