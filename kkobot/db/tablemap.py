"""Which column of an existing table takes which of kkobot's values, or a table of kkobot's own."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

from kkobot.db.shape import Column, TableInfo, enumValues, missingRequired, readTable

TEXT_TYPES = frozenset({
    "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set",
})
NUMBER_TYPES = frozenset({
    "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric",
    "float", "double", "real",
})
TIME_TYPES = frozenset({"datetime", "timestamp"}) | TEXT_TYPES
TYPES = {
    "text": TEXT_TYPES,
    "number": NUMBER_TYPES,
    "time": TIME_TYPES,
    "date": frozenset({"date", "datetime"}) | TEXT_TYPES,
    "clock": frozenset({"time"}) | TEXT_TYPES,  # a time of day
    "json": frozenset({"json"}) | TEXT_TYPES,  # MariaDB reports JSON columns as longtext
}


@dataclass(frozen=True)
class Field:
    """
    One value kkobot has for a row of some kind, and the columns that may take it,
    most wanted first.
    """

    name: str
    columns: tuple[str, ...]
    kind: str = "text"  # text | number | time | date | clock | json
    required: bool = False
    # kkobot's own width for text (values never exceed it); None: unbounded.
    width: int | None = None
    # Values the column must accept (an enum column lacking one cannot be used).
    values: tuple[str, ...] = ()
    # False when kkobot never has None for it.
    nullable: bool = True
    # False for a field only other shapes have a column for (kkobot's own table has none).
    own: bool = True
    # How log lines name it when it is not stored (default: its column in kkobot's table).
    label: str | None = None
    # Fields are given columns in this order (lower first), then in declared order:
    # a field that must have a column can claim one another field would also take.
    claimOrder: int = 0


@dataclass(frozen=True)
class Constant:
    """A column kkobot fills with one value where the table has it (e.g. a ping's status)."""

    column: str
    value: str


@dataclass(frozen=True)
class TableSpec:
    """
    How rows of one kind land in a table: kkobot's fields (in the order of its row
    tuples), the table it creates where none exists, and the table of its own name
    it uses where an existing table cannot take the rows.
    """

    name: str
    fallback: str
    what: str  # "ping rows", "devices": for log lines
    fields: tuple[Field, ...]
    mysql: Callable[[str], str]  # CREATE TABLE IF NOT EXISTS for a table name
    sqlite: Callable[[str], Sequence[str]]
    constants: tuple[Constant, ...] = ()
    # Field-name tuples, one of which must be a unique key of the table (devices are
    # updated in place, so the table must say what one device is).
    keys: tuple[tuple[str, ...], ...] = ()

    def fieldNames(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


class TableError(Exception):
    """Neither the existing table nor a table of kkobot's own can take the rows."""


@dataclass(frozen=True)
class TableMap:
    """The decision for one spec: the table written and the column each field goes to."""

    spec: TableSpec
    table: str
    columns: dict[str, str]  # field name -> column, for the fields the table takes
    widths: dict[str, int]  # field name -> characters the column holds (text fields)
    blankForNull: frozenset[str]  # NOT NULL text columns: None is written as ''
    constants: tuple[tuple[str, str], ...]  # (column, value)
    key: tuple[str, ...] = ()  # the fields of the unique key used (specs with keys)
    # Why the spec's own name was not used (None: it was).
    fallbackReason: str | None = None
    _indexes: tuple[int, ...] = field(default=(), repr=False)

    @property
    def insertColumns(self) -> tuple[str, ...]:
        return tuple(self.columns[name] for name in self._names()) + tuple(
            c for c, _ in self.constants
        )

    def _names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.spec.fields if f.name in self.columns)

    def column(self, fieldName: str) -> str | None:
        """The column that takes C{fieldName}, or None when the table has none for it."""
        return self.columns.get(fieldName)

    @property
    def identity(self) -> bool:
        """
        True when a row tuple goes in as it is: every field in its own column, in order,
        nothing to clip or fill. (Then the journal's JSON text makes the INSERT.)
        """
        if self.constants or self.blankForNull:
            return False
        if tuple(self.columns.get(f.name) for f in self.spec.fields) != self.spec.fieldNames():
            return False
        return all(
            f.width is not None and self.widths.get(f.name, f.width) >= f.width
            for f in self.spec.fields if f.name in self.widths
        )

    def project(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """A row tuple (the spec's field order) as the values of L{insertSql}'s columns."""
        out = []
        for i, name in zip(self._indexes, self._names()):
            value = values[i]
            if value is None:
                if name in self.blankForNull:
                    value = ""
            elif type(value) is str:
                width = self.widths.get(name)
                if width is not None and len(value) > width:
                    value = value[:width]
            out.append(value)
        out.extend(value for _, value in self.constants)
        return tuple(out)

    def insertSql(self) -> str:
        """INSERT INTO table (columns) VALUES (%s, ...), for L{project}ed rows."""
        columns = self.insertColumns
        return (
            f"INSERT INTO {self.table} ({', '.join(columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})"
        )

    @property
    def ownShape(self) -> bool:
        """Every field in the column kkobot's own table has for it, nothing else to fill."""
        return not self.constants and all(
            self.columns.get(f.name) == (f.columns[0] if f.own else None)
            for f in self.spec.fields
        )

    def describe(self) -> str:
        """What differs from kkobot's own table, for the log line that announces the mapping."""
        first = {f.name: f.columns[0] for f in self.spec.fields}
        moved = [
            f"{first[name]} -> {col}" for name, col in self.columns.items() if col != first[name]
        ]
        dropped = [
            f.label or f.columns[0] for f in self.spec.fields
            if f.own and f.name not in self.columns
        ]
        parts = []
        if moved:
            parts.append(", ".join(moved))
        parts.extend(f"{col} = '{value}'" for col, value in self.constants)
        if dropped:
            parts.append("not stored: " + ", ".join(dropped))
        return "; ".join(parts) or "the same columns"


def _usable(fieldSpec: Field, column: Column, engine: str) -> str | None:
    """Why C{column} cannot take C{fieldSpec}'s values, or None."""
    if engine == "sqlite":
        return None  # SQLite columns take any value
    if column.dataType not in TYPES[fieldSpec.kind]:
        return f"{column.name} is {column.columnType}, not a {fieldSpec.kind} column"
    accepted = enumValues(column)
    if accepted is not None:
        missing = [v for v in fieldSpec.values if v not in accepted]
        if missing or not fieldSpec.values:
            return f"{column.name} ({column.columnType}) does not accept {', '.join(missing) or 'free text'}"
    return None


def plan(spec: TableSpec, info: TableInfo, engine: str, table: str) -> TableMap | str:
    """The mapping of C{spec} onto C{table} (described by C{info}), or why there is none."""
    columns = info.columns
    claimed: dict[str, str] = {}
    taken: set[str] = set()
    ordered = sorted(enumerate(spec.fields), key=lambda pair: (pair[1].claimOrder, pair[0]))
    for _, f in ordered:
        why = None
        for name in f.columns:
            if name not in columns or name in taken:
                continue
            why = _usable(f, columns[name], engine)
            if why is None:
                claimed[f.name] = name
                taken.add(name)
                break
        if f.required and f.name not in claimed:
            return why or f"no column for {f.name} ({' or '.join(f.columns)})"
    constants = []
    for const in spec.constants:
        column = columns.get(const.column)
        if column is None or const.column in taken:
            continue
        accepted = enumValues(column)
        if accepted is not None and const.value not in accepted:
            continue  # left to the column's default (or refused below)
        constants.append((const.column, const.value))
        taken.add(const.column)
    missing = missingRequired(columns, taken)
    if missing:
        return f"column(s) {', '.join(missing)} NOT NULL without a default"
    key: tuple[str, ...] = ()
    if spec.keys:
        unique = {frozenset(k) for k in info.uniqueKeys}
        for candidate in spec.keys:
            cols = [claimed.get(name) for name in candidate]
            if None not in cols and frozenset(cols) in unique:
                key = candidate
                break
        else:
            wanted = " or ".join(
                "(" + ", ".join(claimed.get(n, n) for n in k) + ")" for k in spec.keys
            )
            return f"no unique key on {wanted}"
    widths: dict[str, int] = {}
    blank = set()
    for f in spec.fields:
        name = claimed.get(f.name)
        if name is None or f.kind == "number":
            continue
        column = columns[name]
        limit = column.maxLength if column.maxLength else f.width
        if limit is not None:
            widths[f.name] = limit
        if not column.nullable and f.kind == "text" and f.nullable:
            blank.add(f.name)
    return TableMap(
        spec=spec,
        table=table,
        columns=claimed,
        widths=widths,
        blankForNull=frozenset(blank),
        constants=tuple(constants),
        key=key,
        _indexes=tuple(i for i, f in enumerate(spec.fields) if f.name in claimed),
    )


def resolve(txn: Any, engine: str, spec: TableSpec) -> TableMap:
    """
    Runs in a pool thread: the table C{spec}'s rows go to. The existing table when
    its columns can take them (it is never altered); kkobot's own shape, created,
    where it does not exist; else the fallback table of kkobot's own name.
    """
    info = readTable(txn, engine, spec.name)
    if info is None:
        _create(txn, engine, spec, spec.name)
        info = readTable(txn, engine, spec.name)
        if info is None:
            raise TableError(f"{spec.name} could not be created")
    mapping = plan(spec, info, engine, spec.name)
    if isinstance(mapping, TableMap):
        return mapping
    reason = mapping
    _create(txn, engine, spec, spec.fallback)
    own = readTable(txn, engine, spec.fallback)
    if own is None:
        raise TableError(f"{spec.fallback} could not be created")
    fallback = plan(spec, own, engine, spec.fallback)
    if not isinstance(fallback, TableMap):
        raise TableError(
            f"{spec.name} cannot take {spec.what} ({reason}), and neither can "
            f"{spec.fallback} ({fallback})"
        )
    return replace(fallback, fallbackReason=reason)


def _create(txn: Any, engine: str, spec: TableSpec, table: str) -> None:
    statements = spec.sqlite(table) if engine == "sqlite" else [spec.mysql(table)]
    for statement in statements:
        txn.execute(statement)
