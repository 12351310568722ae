"""Reflecting a whole schema at once while autogenerate compares it.

Alembic's autogenerate reflects the database one table at a time: on
PostgreSQL each table costs about eight catalog queries, plus one more for
every ``SERIAL`` column (to tell its sequence from an explicit default); on
SQLite about ten ``PRAGMA`` statements. A schema of 500 tables means
thousands of statements, and on SQLite running them through SQLAlchemy
costs more than the comparison itself.

While a comparison runs (see :func:`bulk_reflection`), each kind of catalog
data is fetched for the whole schema in one statement and the per-table
questions are answered from that result:

* PostgreSQL: SQLAlchemy's own multi-table reflection, and one query for
  which column owns which sequence.
* SQLite: the table-valued forms of the same ``PRAGMA`` statements
  (``pragma_table_xinfo(name, 'main')``, ...), joined with
  ``sqlite_master``, which return exactly the rows of the per-table
  statements.

The raw rows go through SQLAlchemy's and Alembic's usual code, so the
answers are theirs. Anything the bulk results do not cover for certain (a
schema other than the default, a name in another letter case, a view, a
temporary table) goes to the normal per-table code.
"""

from __future__ import annotations

import copy
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

__all__ = ["bulk_reflection", "digest", "table_fingerprints", "table_rows"]

_PER_TABLE = {
    "get_columns": "columns",
    "get_pk_constraint": "pk_constraint",
    "get_foreign_keys": "foreign_keys",
    "get_indexes": "indexes",
    "get_unique_constraints": "unique_constraints",
    "get_check_constraints": "check_constraints",
    "get_table_comment": "table_comment",
}


# --------------------------------------------------------------------------
# PostgreSQL


# How PostgreSQL shows the default of a SERIAL column, as Alembic matches it.
_NEXTVAL = re.compile(r"nextval\('(.+?)'::regclass\)")

# Every sequence, and the column that owns it: Alembic's per-column query
# (alembic.ddl.postgresql) for all sequences at once, keyed by the name the
# sequence has in a column default (regclass output, like nextval's).
_OWNED_SEQUENCES = """
SELECT c.oid::regclass::text, c.relname, a.attname
FROM pg_class AS c
JOIN pg_depend AS d ON d.objid = c.oid
    AND d.classid = 'pg_class'::regclass
    AND d.refclassid = 'pg_class'::regclass
JOIN pg_class AS t ON t.oid = d.refobjid
JOIN pg_attribute AS a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE c.relkind = 'S'
"""


def _serial_owner_hook(
    owners: Callable[[], dict[str, list[tuple[str, str]]]],
) -> Callable[[Any, Any, dict[str, Any]], None]:
    """A ``column_reflect`` listener that runs before Alembic's PostgreSQL one.

    Alembic drops the ``nextval(...)`` default of an integer column whose
    sequence the column owns (a ``SERIAL``), logging that it did, and finds
    the owner with one query per column. When the owner is known from
    :data:`_OWNED_SEQUENCES` this listener does the same first, and
    Alembic's listener, finding no default left, has nothing to ask. In any
    other case the default is left for Alembic to examine as usual.
    """
    from sqlalchemy.dialects.postgresql import BIGINT, INTEGER

    log = logging.getLogger("alembic.ddl.postgresql")

    def hook(inspector: Any, table: Any, column_info: dict[str, Any]) -> None:
        default = column_info.get("default")
        if not default or not isinstance(column_info["type"], (INTEGER, BIGINT)):
            return
        match = _NEXTVAL.match(default)
        if match is None:
            return
        found = owners().get(match.group(1), [])
        if len(found) != 1 or found[0][1] != column_info["name"]:
            return
        sequence, column = found[0]
        # Alembic's message, word for word.
        log.info(
            "Detected sequence named '%s' as owned by integer column '%s(%s)', "
            "assuming SERIAL and omitting",
            sequence,
            table.name,
            column,
        )
        del column_info["default"]

    return hook


def _runs_alembic_serial_check(table: Any) -> bool:
    """Whether Alembic's own PostgreSQL ``column_reflect`` listener is on ``table``.

    Only then is dropping a SERIAL default what would happen anyway; a
    custom implementation overriding ``autogen_column_reflect`` may want
    something else.
    """
    from alembic.ddl.postgresql import PostgresqlImpl

    stock = PostgresqlImpl.autogen_column_reflect
    return any(
        getattr(listener, "__func__", None) is stock
        for listener in table.dispatch.column_reflect
    )


def _bulk_inspector(base: type) -> type:
    from sqlalchemy import event, text
    from sqlalchemy.engine.reflection import ObjectKind, ObjectScope, _ReflectionInfo

    class BulkInspector(base):  # type: ignore[misc]
        """An inspector that reads each schema's tables in one go."""

        def _bulk(self, schema: str | None) -> Any:
            # Kept on the connection, so that every inspector made on it
            # while the comparison runs (Alembic's, and the one of
            # flask_migrate_alt.unchanged) reads the catalog only once.
            store = _connection_store(self.bind, "_fma_bulk", self.__dict__)
            if schema not in store:
                store[schema] = super()._get_reflection_info(
                    schema, kind=ObjectKind.ANY, scope=ObjectScope.ANY
                )
            return store[schema]

        def _owned_sequences(self) -> dict[str, list[tuple[str, str]]]:
            store = _connection_store(self.bind, "_fma_bulk", self.__dict__)
            key = ("owned sequences",)  # never a schema name
            if key not in store:
                owners: dict[str, list[tuple[str, str]]] = {}
                with self._operation_context() as connection:
                    for name, sequence, column in connection.execute(
                        text(_OWNED_SEQUENCES)
                    ):
                        owners.setdefault(name, []).append((sequence, column))
                store[key] = owners
            return store[key]  # type: ignore[no-any-return]

        def reflect_table(self, table: Any, *args: Any, **kw: Any) -> None:
            if not _runs_alembic_serial_check(table):
                super().reflect_table(table, *args, **kw)
                return
            hook = _serial_owner_hook(self._owned_sequences)
            event.listen(table, "column_reflect", hook, insert=True)
            try:
                super().reflect_table(table, *args, **kw)
            finally:
                event.remove(table, "column_reflect", hook)

        def _get_reflection_info(
            self,
            schema: str | None = None,
            filter_names: Any = None,
            available: Any = None,
            _reflect_info: Any = None,
            **kw: Any,
        ) -> Any:
            plain = set(kw) <= {"kind", "scope"} and kw.get("kind") in (
                None,
                ObjectKind.ANY,
            )
            if not plain or filter_names is None:
                return super()._get_reflection_info(
                    schema, filter_names, available, _reflect_info, **kw
                )
            info = self._bulk(schema)
            names = set(filter_names)
            if any((schema, name) not in info.columns for name in names):
                return super()._get_reflection_info(
                    schema, filter_names, available, _reflect_info, **kw
                )
            subset = _ReflectionInfo(
                **{
                    field: {
                        key: copy.deepcopy(value)
                        for key, value in (getattr(info, field) or {}).items()
                        if key[1] in names
                    }
                    for field in info.__dict__
                }
            )
            if _reflect_info is not None:
                _reflect_info.update(subset)
                return _reflect_info
            return subset

    def per_table(method: str, field: str) -> Any:
        def answer(
            self: Any, table_name: str, schema: str | None = None, **kw: Any
        ) -> Any:
            if not kw:
                info = self._bulk(schema)
                key = (schema, table_name)
                if key in info.columns:
                    value = (getattr(info, field) or {}).get(key)
                    if value is not None:
                        return copy.deepcopy(value)
            return getattr(super(BulkInspector, self), method)(table_name, schema, **kw)

        answer.__name__ = method
        return answer

    def multi(method: str, field: str) -> Any:
        # Alembic (1.18 and later) asks for each kind of data for many
        # tables at once before comparing; answered from the same bulk
        # read, so that the catalog is read once, not twice. Any other
        # form of the question goes to SQLAlchemy.
        def answer(
            self: Any,
            schema: str | None = None,
            filter_names: Any = None,
            kind: Any = ObjectKind.TABLE,
            scope: Any = ObjectScope.DEFAULT,
            **kw: Any,
        ) -> Any:
            if kw or kind != ObjectKind.TABLE or scope != ObjectScope.DEFAULT:
                return getattr(super(BulkInspector, self), method)(
                    schema, filter_names, kind, scope, **kw
                )
            if filter_names is not None and not filter_names:
                return {}
            info = self._bulk(schema)
            values = getattr(info, field) or {}
            names = (
                self.get_table_names(schema) if filter_names is None else filter_names
            )
            # Handed over rather than copied, so that the data is held once:
            # what is handed over is gone from the bulk read, and a later
            # question about the same table goes to SQLAlchemy. A table
            # missing from the answer is asked for on its own.
            return {
                (schema, name): values.pop((schema, name))
                for name in names
                if (schema, name) in values
            }

        answer.__name__ = method
        return answer

    for method, field in _PER_TABLE.items():
        setattr(BulkInspector, method, per_table(method, field))
    for field in [*_PER_TABLE.values(), "table_options"]:
        method = f"get_multi_{field}"
        setattr(BulkInspector, method, multi(method, field))
    return BulkInspector


def digest(*parts: str) -> str:
    """A short digest of ``parts``: the fingerprints are compared, never read."""
    import hashlib

    hasher = hashlib.blake2b(digest_size=16)
    for part in parts:
        hasher.update(part.encode("utf-8", "surrogatepass"))
        hasher.update(b"\0")
    return hasher.hexdigest()


def _connection_store(bind: Any, key: str, fallback: dict[str, Any]) -> Any:
    """The dict under ``key`` in ``bind.info`` (a connection), else in ``fallback``."""
    info = getattr(bind, "info", None)
    if not isinstance(info, dict) or key not in info:
        return fallback.setdefault(key, {})
    return info[key]


@contextmanager
def _postgresql_bulk(connection: Any) -> Iterator[None]:
    dialect = connection.dialect
    if "inspector" in vars(dialect):
        yield  # already active (nested use)
        return
    dialect.inspector = _bulk_inspector(type(dialect).inspector)
    connection.info["_fma_bulk"] = {}
    try:
        yield
    finally:
        del dialect.inspector
        connection.info.pop("_fma_bulk", None)


def _bulk_inspector_of(connection: Any) -> Any:
    """An inspector of ``connection`` reading in bulk, or ``None`` when inactive."""
    from sqlalchemy import inspect

    if "_fma_bulk" not in connection.info:
        return None
    inspector = inspect(connection)
    return inspector if hasattr(inspector, "_bulk") else None


def postgresql_rows(
    connection: Any, schema: str | None
) -> Callable[[str], dict[str, Any] | None] | None:
    """A lookup of what reflection read in bulk for each table of ``schema``.

    The lookup returns a table's rows by field (``columns``, ``indexes``,
    ...), shared with the bulk read: they must not be changed. It only
    answers before Alembic has been handed the table (see ``multi`` in
    :func:`_bulk_inspector`). ``None`` when bulk reflection is not active.
    """
    inspector = _bulk_inspector_of(connection)
    if inspector is None:
        return None
    info = inspector._bulk(schema)
    fields = {field: getattr(info, field) or {} for field in info.__dict__}

    def rows(name: str) -> dict[str, Any] | None:
        key = (schema, name)
        if key not in fields["columns"]:
            return None
        return {field: values.get(key) for field, values in fields.items()}

    return rows


def postgresql_tables(
    connection: Any, schema: str | None, *, with_defaults: bool = True
) -> dict[str, str] | None:
    """What reflection tells about each table of ``schema``, as one digest per table.

    Each digest covers the very rows SQLAlchemy's reflection returns for the
    table (columns, constraints, indexes, comment, options), and the
    sequences its ``SERIAL`` columns own, which Alembic also looks at.
    ``None`` when bulk reflection is not active on ``connection``.

    Left out, so that they are always compared: tables with a computed
    column, an expression index or a type reflection did not recognise
    (Alembic or SQLAlchemy warn about those, and a table not compared would
    not warn), and without ``with_defaults`` tables with a column default
    other than a ``SERIAL`` one.
    """
    from sqlalchemy.types import NullType

    inspector = _bulk_inspector_of(connection)
    if inspector is None:
        return None
    info = inspector._bulk(schema)
    owners = inspector._owned_sequences()
    fields = [field for field in info.__dict__ if getattr(info, field)]
    found = {}
    for key, columns in info.columns.items():
        if key[0] != schema:
            continue
        owned = [
            owners.get(match.group(1))
            for column in columns
            if (match := _NEXTVAL.match(str(column.get("default") or "")))
        ]
        if any(
            "computed" in column or isinstance(column["type"], NullType)
            for column in columns
        ) or any(
            None in index.get("column_names", ()) or "expressions" in index
            for index in (info.indexes or {}).get(key, ())
        ):
            continue
        if not with_defaults and any(
            column.get("default") and not _NEXTVAL.match(str(column["default"]))
            for column in columns
        ):
            continue
        # The DDL of each type as well: some reprs leave settings out (a
        # domain's schema).
        types = [
            column["type"].compile(dialect=connection.dialect) for column in columns
        ]
        rows = [(field, getattr(info, field).get(key)) for field in fields]
        text = repr((rows, owned, types))
        if " at 0x" not in text:  # else no stable text: always compared
            found[key[1]] = digest(text)
    return found


# --------------------------------------------------------------------------
# SQLite


# The PRAGMA statements SQLAlchemy runs per table (or per index), and what
# their table-valued forms are joined with: the objects they are about.
_SQLITE_PRAGMAS = {
    "table_info": "table",
    "table_xinfo": "table",
    "foreign_key_list": "table",
    "index_list": "table",
    "index_info": "index",
}


class _SQLiteSchema:
    """The rows of each per-table PRAGMA for every table, one query per kind.

    Answers only what it knows for certain; ``None`` sends the caller to
    SQLAlchemy's per-table statement.
    """

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._names: dict[tuple[str, str], set[str]] = {}
        self._rows: dict[tuple[str, str], dict[str, list[tuple[Any, ...]]]] = {}
        self._sql: dict[str, str] | None = None
        self.broken = False

    def _query(self, statement: str) -> list[Any] | None:
        from sqlalchemy.exc import DBAPIError

        try:
            return list(self.connection.exec_driver_sql(statement))
        except DBAPIError:
            # An old SQLite without table-valued pragmas, or an object it
            # cannot describe: the per-table statements take over.
            self.broken = True
            return None

    def _objects(self, schema: str, kind: str) -> set[str] | None:
        if (schema, kind) not in self._names:
            rows = self._query(
                f"SELECT name FROM {schema}.sqlite_master WHERE type = '{kind}'"
            )
            if rows is None:
                return None
            self._names[schema, kind] = {row[0] for row in rows}
        return self._names[schema, kind]

    def _pragma_rows(
        self, pragma: str, schema: str
    ) -> dict[str, list[tuple[Any, ...]]] | None:
        if (pragma, schema) not in self._rows:
            kind = _SQLITE_PRAGMAS[pragma]
            rows = self._query(
                f"SELECT m.name, p.* FROM {schema}.sqlite_master AS m, "
                f"pragma_{pragma}(m.name, '{schema}') AS p WHERE m.type = '{kind}'"
            )
            if rows is None:
                return None
            grouped: dict[str, list[tuple[Any, ...]]] = {}
            # The rows live as long as the comparison. Their strings repeat
            # from table to table (column names, type names): keep one of
            # each, not one per row.
            intern = sys.intern
            for row in rows:
                grouped.setdefault(row[0], []).append(
                    tuple(intern(v) if type(v) is str else v for v in row[1:])
                )
            self._rows[pragma, schema] = grouped
        return self._rows[pragma, schema]

    def pragma(self, pragma: str, name: str) -> list[tuple[Any, ...]] | None:
        """SQLAlchemy's ``_get_table_pragma(pragma, name)`` without a schema.

        That runs ``PRAGMA main.<pragma>(name)`` and, if it returns no rows,
        ``PRAGMA temp.<pragma>(name)``.
        """
        if self.broken or pragma not in _SQLITE_PRAGMAS:
            return None
        kind = _SQLITE_PRAGMAS[pragma]
        main = self._objects("main", kind)
        if main is None or name not in main:
            return None  # another case, a view, a temporary table: ask SQLite
        rows = self._pragma_rows(pragma, "main")
        if rows is None:
            return None
        if rows.get(name):
            return rows[name]
        temp = self._objects("temp", kind)
        temp_views = self._objects("temp", "view")
        if temp is None or temp_views is None:
            return None
        if not temp and not temp_views:
            return []  # nothing in temp to find, whatever the letter case
        if name not in temp:
            return None
        rows = self._pragma_rows(pragma, "temp")
        return None if rows is None else rows.get(name, [])

    def fingerprints(self) -> dict[str, str] | None:
        """Each table of ``main`` as a string that changes when its reflection can.

        SQLite derives everything it reports about a table (columns,
        indexes, foreign keys, the constraint names SQLAlchemy parses out of
        the SQL) from the ``CREATE`` statements in ``sqlite_master``; the
        string holds those of the table and its indexes and triggers, and
        those of the tables its foreign keys refer to, whose primary key
        SQLAlchemy reads when a foreign key names no columns. ``None`` when
        temporary tables exist, which could shadow the names.
        """
        temp = self._query("SELECT count(*) FROM temp.sqlite_master")
        rows = self._query("SELECT type, name, tbl_name, sql FROM main.sqlite_master")
        if temp is None or rows is None or temp[0][0]:
            return None
        by_table: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            by_table.setdefault(row[2], []).append(tuple(row))
        found = {}
        for name, own in by_table.items():
            if not any(row[0] == "table" and row[1] == name for row in own):
                continue
            foreign_keys = self.pragma("foreign_key_list", name)
            columns = self.pragma("table_xinfo", name)
            if foreign_keys is None or columns is None:
                continue
            # Generated columns (hidden 2 or 3) and expression indexes
            # (index_info rows without a name): Alembic warns about those,
            # so such tables are always compared.
            if any(row[6] in (2, 3) for row in columns):
                continue
            indexes = [row[1] for row in own if row[0] == "index"]
            index_rows = [self.pragma("index_info", index) for index in indexes]
            if any(
                rows is None or any(r[2] is None for r in rows) for rows in index_rows
            ):
                continue
            referred = sorted({str(row[2]) for row in foreign_keys})
            referred_rows = [sorted(by_table.get(r, []), key=repr) for r in referred]
            found[name] = digest(repr((sorted(own, key=repr), referred_rows)))
        return found

    def table_sql(self, name: str) -> str | None:
        """SQLAlchemy's ``_get_table_sql(name)`` without a schema, if known."""
        if self._sql is None:
            rows = self._query(
                "SELECT name, sql FROM (SELECT * FROM sqlite_master UNION ALL "
                "SELECT * FROM sqlite_temp_master) WHERE type in ('table', 'view')"
            )
            if rows is None:
                return None
            self._sql = {}
            for row_name, sql in rows:
                self._sql.setdefault(row_name, sql)  # main before temp
        return self._sql.get(name)


@contextmanager
def _sqlite_bulk(connection: Any) -> Iterator[None]:
    """Answer the SQLite dialect's per-table PRAGMAs from :class:`_SQLiteSchema`.

    SQLAlchemy's SQLite dialect has no multi-table reflection: its
    ``get_columns``, ``get_indexes``, ... each run the PRAGMA through two
    private methods, ``_get_table_pragma`` and ``_get_table_sql``. Those two
    are replaced on the dialect instance while the comparison runs (for this
    connection only; any other connection gets the originals).
    """
    dialect = connection.dialect
    if not all(
        callable(getattr(dialect, name, None))
        for name in ("_get_table_pragma", "_get_table_sql")
    ) or {"_get_table_pragma", "_get_table_sql"} & set(vars(dialect)):
        yield  # not the dialect this was written for, or already active
        return
    schema_data = _SQLiteSchema(connection)
    table_pragma = dialect._get_table_pragma
    table_sql = dialect._get_table_sql

    def bulk_table_pragma(
        conn: Any, pragma: str, table_name: str, schema: str | None = None
    ) -> Any:
        if conn is connection and schema is None:
            rows = schema_data.pragma(pragma, table_name)
            if rows is not None:
                return rows
        return table_pragma(conn, pragma, table_name, schema=schema)

    def bulk_table_sql(
        conn: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        if conn is connection and not schema:
            sql = schema_data.table_sql(table_name)
            if sql is not None:
                return sql
        return table_sql(conn, table_name, schema=schema, **kw)

    dialect._get_table_pragma = bulk_table_pragma
    dialect._get_table_sql = bulk_table_sql
    connection.info["_fma_sqlite"] = schema_data
    try:
        yield
    finally:
        del dialect._get_table_pragma
        del dialect._get_table_sql
        connection.info.pop("_fma_sqlite", None)


def sqlite_tables(connection: Any, schema: str | None) -> dict[str, str] | None:
    """:meth:`_SQLiteSchema.fingerprints`, or ``None`` when bulk reflection is off."""
    schema_data = connection.info.get("_fma_sqlite")
    if schema is not None or schema_data is None:
        return None
    return schema_data.fingerprints()  # type: ignore[no-any-return]


def sqlite_rows(
    connection: Any, schema: str | None
) -> Callable[[str], dict[str, Any] | None] | None:
    """:func:`postgresql_rows` for SQLite, from SQLAlchemy's per-table answers.

    SQLite has no multi-table reflection; the per-table methods run on the
    bulk PRAGMA rows (see :func:`_sqlite_bulk`), so asking costs no query.
    """
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    if schema is not None or "_fma_sqlite" not in connection.info:
        return None
    inspector = inspect(connection)

    def rows(name: str) -> dict[str, Any] | None:
        try:
            return {
                "columns": inspector.get_columns(name),
                "indexes": inspector.get_indexes(name),
                "unique_constraints": inspector.get_unique_constraints(name),
                "foreign_keys": inspector.get_foreign_keys(name),
            }
        except (SQLAlchemyError, NotImplementedError):
            return None

    return rows


def table_rows(
    connection: Any, schema: str | None
) -> Callable[[str], dict[str, Any] | None] | None:
    """A lookup of what reflection tells about each table of ``schema``.

    The lookup returns a table's reflected rows by field (``columns``,
    ``indexes``, ``unique_constraints``, ``foreign_keys`` and, on
    PostgreSQL, ``table_comment``), or ``None`` for a table it does not
    know. ``None`` for databases and schemas bulk reflection does not cover.
    """
    name = connection.dialect.name
    if name == "postgresql":
        return postgresql_rows(connection, schema)
    if name == "sqlite":
        return sqlite_rows(connection, schema)
    return None


def table_fingerprints(
    connection: Any, schema: str | None, *, with_defaults: bool = True
) -> dict[str, str] | None:
    """Table name -> a digest of everything reflection can tell about it.

    Two equal digests mean that reflecting the table gives the same answer.
    Only for the schemas bulk reflection covers (see
    :func:`postgresql_tables` and :func:`sqlite_tables`); ``None`` elsewhere.
    """
    name = connection.dialect.name
    if name == "postgresql":
        return postgresql_tables(connection, schema, with_defaults=with_defaults)
    if name == "sqlite":
        return sqlite_tables(connection, schema)
    return None


# --------------------------------------------------------------------------


_BULK = {"postgresql": _postgresql_bulk, "sqlite": _sqlite_bulk}


@contextmanager
def bulk_reflection(connection: Any) -> Iterator[None]:
    """Reflect whole schemas at once on ``connection`` while active.

    On PostgreSQL, ``sqlalchemy.inspect()`` on the engine's dialect returns
    an inspector that reads each schema in bulk (Alembic's autogenerate
    makes its own with ``inspect()``); on SQLite, the dialect answers this
    connection's PRAGMAs from bulk queries. Other databases are left alone.
    Everything is undone afterwards.
    """
    bulk = _BULK.get(connection.dialect.name)
    with ExitStack() as stack:
        if bulk is not None:
            stack.enter_context(bulk(connection))
        yield
