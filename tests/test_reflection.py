"""Bulk reflection gives autogenerate exactly the answers of per-table reflection."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask

import flask_migrate_alt as fma
from flask_migrate_alt.reflection import bulk_reflection

from .conftest import Server


def _database(metadata: sa.MetaData, url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    return engine


def _models(changed: bool) -> sa.MetaData:
    metadata = sa.MetaData()
    parent = sa.Table(
        "parent",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50 if changed else 80), nullable=False),
        sa.Column("code", sa.String(10), unique=True),
        comment="parents" if changed else None,
    )
    sa.Table(
        "child",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.ForeignKey(parent.c.id)),
        sa.Column("score", sa.Numeric(10, 2)),
        sa.Column("active", sa.Boolean, server_default=sa.true()),
        sa.Index("ix_child_score", "score", unique=changed),
        sa.Index(
            "ix_child_active",
            "parent_id",
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        ),
        sa.CheckConstraint("score >= 0", name="ck_score"),
        sa.UniqueConstraint("parent_id", "score", name="uq_child_parent_score"),
    )
    sa.Table(
        "Mixed Case",
        metadata,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "child_id", sa.Integer, sa.ForeignKey("child.id", ondelete="CASCADE")
        ),
    )
    for index in range(20):
        columns = [sa.Column("id", sa.Integer, primary_key=True)]
        if changed and index % 5 == 0:
            columns.append(sa.Column("extra", sa.Text))
        sa.Table(f"filler_{index}", metadata, *columns, sa.Column("v", sa.Integer))
    if changed:
        sa.Table("added", metadata, sa.Column("id", sa.Integer, primary_key=True))
    return metadata


def _plain(value: Any) -> Any:
    """``value`` with SQL expressions as their text, for comparing answers.

    The reprs of SQLAlchemy's expression objects show only their address.
    """
    if isinstance(value, sa.schema.DefaultClause):
        return ("DefaultClause", _plain(value.arg))
    if isinstance(value, sa.sql.ClauseElement):
        return str(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return repr(value)


def _diffs(connection: sa.Connection, metadata: sa.MetaData) -> list[str]:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "target_metadata": metadata,
        },
    )
    return sorted(str(_plain(diff)) for diff in compare_metadata(context, metadata))


@contextmanager
def _statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Record the SQL statements run on ``engine`` meanwhile."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def test_bulk_reflection_matches_per_table_reflection(server: Server) -> None:
    """The differences autogenerate finds, with and without bulk reflection."""
    engine = _database(_models(changed=False), server.new_database())
    try:
        target = _models(changed=True)
        with engine.connect() as connection, _statements(engine) as per_table:
            plain = _diffs(connection, target)
        with engine.connect() as connection, _statements(engine) as bulk_statements:
            with bulk_reflection(connection):
                bulk = _diffs(connection, target)
        assert len(plain) >= 8  # the comparison found the differences...
        assert bulk == plain  # ...and bulk reflection found the same ones
        if server.backend != "mysql":
            # Per table (on PostgreSQL, per SERIAL column), then per schema.
            # MySQL is left to SQLAlchemy and Alembic.
            assert len(per_table) > len(target.tables)
            assert len(bulk_statements) < 20
        # Nothing is left behind on the dialect.
        assert not {"inspector", "_get_table_pragma", "_get_table_sql"} & set(
            vars(engine.dialect)
        )
    finally:
        engine.dispose()


def test_postgresql_inspector_is_replaced_only_meanwhile(
    postgresql_server: Server,
) -> None:
    engine = _database(_models(changed=False), postgresql_server.new_database())
    try:
        with engine.connect() as connection, bulk_reflection(connection):
            assert type(sa.inspect(connection)).__name__ == "BulkInspector"
        with engine.connect() as connection:
            assert type(sa.inspect(connection)).__name__ != "BulkInspector"
    finally:
        engine.dispose()


_METHODS = (
    "get_columns",
    "get_pk_constraint",
    "get_foreign_keys",
    "get_indexes",
    "get_unique_constraints",
    "get_check_constraints",
)


def test_sqlite_answers_every_table_like_its_pragmas(sqlite_server: Server) -> None:
    """Each reflection method, table by table, including what bulk skips.

    Temporary tables (one of a name of its own, one with a main table's
    name in another letter case, one with a main table's exact name), a
    view, and explicit schemas go to the per-table statements or to the
    bulk rows of the temporary schema, and still give the same answers.
    """
    engine = _database(_models(changed=False), sqlite_server.new_database())
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE computed (id INTEGER PRIMARY KEY, a INTEGER, "
                "b INTEGER GENERATED ALWAYS AS (a * 2) VIRTUAL, "
                "c INTEGER GENERATED ALWAYS AS (a + 1) STORED)"
            )
            connection.exec_driver_sql("CREATE TEMP TABLE scratch (a INTEGER, b TEXT)")
            connection.exec_driver_sql("CREATE TEMP TABLE FILLER_1 (x INTEGER)")
            # Where the main table has none, SQLAlchemy reports the foreign
            # keys of a temporary table of the same name.
            connection.exec_driver_sql(
                "CREATE TEMP TABLE filler_2 (x INTEGER REFERENCES scratch (a))"
            )
            connection.exec_driver_sql(
                "CREATE VIEW parent_names AS SELECT name FROM parent"
            )
            names = [
                *sa.inspect(connection).get_table_names(),
                "scratch",
                "FILLER_1",
                "parent_names",
            ]
            calls: list[tuple[str, str, str | None]] = [
                (method, name, None) for method in _METHODS for name in names
            ]
            calls += [(method, "parent", "main") for method in _METHODS]
            calls += [("get_columns", "scratch", "temp")]

            def answers() -> list[Any]:
                found = []
                for method, name, schema in calls:
                    inspector = sa.inspect(connection)
                    try:
                        found.append(getattr(inspector, method)(name, schema=schema))
                    except sa.exc.NoSuchTableError as exc:
                        found.append(f"NoSuchTableError {exc}")
                return found

            plain = answers()
            with _statements(engine) as seen, bulk_reflection(connection):
                bulk = answers()
            assert _plain(bulk) == _plain(plain)
            # Main tables come from the bulk queries; the rest asked SQLite.
            assert any("pragma_table_xinfo" in statement for statement in seen)
            assert any("PRAGMA temp.table_xinfo" in statement for statement in seen)
            assert not any(
                re.search(r'PRAGMA main\.\w+\("?child"?\)', statement)
                for statement in seen
            )
    finally:
        engine.dispose()


def test_postgresql_serial_columns_without_a_query_each(
    postgresql_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """Alembic's SERIAL detection, from one query for every sequence.

    A column whose default takes values from another column's sequence, or
    from a sequence no column owns, is left to Alembic's own query.
    """
    metadata = sa.MetaData()
    for name in ("alpha", "beta"):
        sa.Table(name, metadata, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("big", metadata, sa.Column("id", sa.BigInteger, primary_key=True))
    free = sa.Sequence("free_standing")
    sa.Table(
        "borrower",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "alpha_number",
            sa.Integer,
            server_default=sa.text("nextval('alpha_id_seq'::regclass)"),
        ),
        sa.Column("free_number", sa.Integer, free, server_default=free.next_value()),
    )
    engine = _database(metadata, postgresql_server.new_database())

    def run(bulk: bool) -> tuple[list[str], list[str], int]:
        caplog.clear()
        with engine.connect() as connection, _statements(engine) as seen:
            if bulk:
                with bulk_reflection(connection):
                    diffs = _diffs(connection, metadata)
            else:
                diffs = _diffs(connection, metadata)
        logged = [
            record.getMessage()
            for record in caplog.records
            if record.name == "alembic.ddl.postgresql"
        ]
        return diffs, sorted(logged), sum("pg_depend" in s for s in seen)

    try:
        with caplog.at_level(logging.INFO, logger="alembic"):
            plain, plain_logged, plain_queries = run(bulk=False)
            bulk, bulk_logged, bulk_queries = run(bulk=True)
        assert bulk == plain
        assert bulk_logged == plain_logged
        assert len(plain_logged) == 4  # alpha, beta, big and borrower's id
        assert "owned by integer column 'big(id)'" in " ".join(plain_logged)
        assert plain_queries == 6  # one per column with a nextval default
        assert bulk_queries == 1 + 2  # one for all, the two borrowed ones
    finally:
        engine.dispose()


def _check_models(changed: bool) -> Callable[[Any, list[str]], None]:
    def models(db: Any, bind_keys: list[str]) -> None:
        class Author(db.Model):  # type: ignore[name-defined]
            __tablename__ = "author"
            id = db.Column(db.Integer, primary_key=True)
            name = db.Column(db.String(80), nullable=False, unique=True)

        class Book(db.Model):  # type: ignore[name-defined]
            __tablename__ = "book"
            id = db.Column(db.BigInteger, primary_key=True)
            author_id = db.Column(db.ForeignKey("author.id"), index=True)
            title = db.Column(db.String(120 if changed else 200), index=True)

    return models


def test_check_with_bulk_reflection(
    make_app: Callable[..., Flask], server: Server
) -> None:
    """``check`` finds no change after ``migrate``/``upgrade``, and one after it."""
    url = server.new_database()
    app = make_app(url, models=_check_models(changed=False))
    with app.app_context():
        fma.init()
        fma.migrate(message="books")
        fma.upgrade()
        fma.check()
    result = app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output
    assert "No new upgrade operations detected." in result.stdout

    changed = make_app(url, models=_check_models(changed=True))
    with changed.app_context(), pytest.raises(fma.CommandFailed, match="title"):
        fma.check()
    result = changed.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "modify_type" in errors[0], result.output
