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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

__all__ = ["bulk_reflection"]

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
            store = self.__dict__.setdefault("_fma_bulk", {})
            if schema not in store:
                store[schema] = super()._get_reflection_info(
                    schema, kind=ObjectKind.ANY, scope=ObjectScope.ANY
                )
            return store[schema]

        def _owned_sequences(self) -> dict[str, list[tuple[str, str]]]:
            owners = self.__dict__.get("_fma_sequences")
            if owners is None:
                owners = {}
                with self._operation_context() as connection:
                    for name, sequence, column in connection.execute(
                        text(_OWNED_SEQUENCES)
                    ):
                        owners.setdefault(name, []).append((sequence, column))
                self.__dict__["_fma_sequences"] = owners
            return owners

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

    for method, field in _PER_TABLE.items():
        setattr(BulkInspector, method, per_table(method, field))
    return BulkInspector


@contextmanager
def _postgresql_bulk(connection: Any) -> Iterator[None]:
    dialect = connection.dialect
    if "inspector" in vars(dialect):
        yield  # already active (nested use)
        return
    dialect.inspector = _bulk_inspector(type(dialect).inspector)
    try:
        yield
    finally:
        del dialect.inspector


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
            for row in rows:
                grouped.setdefault(row[0], []).append(tuple(row[1:]))
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
    try:
        yield
    finally:
        del dialect._get_table_pragma
        del dialect._get_table_sql


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
