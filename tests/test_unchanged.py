"""Tables found unchanged are not compared again, and no difference is ever missed.

Every comparison made with the cache warm is checked against the same
comparison with the cache off (``FLASK_DB_COMPARE_CACHE=0``): the
differences must be the same, after changes to the models and after
changes made to the database behind the tool's back.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

import flask_migrate_alt as fma
from flask_migrate_alt.unchanged import FILE_NAME

from .conftest import Server

FILLERS = 8


def _models(*changes: str) -> Callable[[Any, list[str]], None]:
    """The test models, with the named ``changes`` applied."""

    def models(db: Any, bind_keys: list[str]) -> None:
        db.Table(
            "parent",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column(
                "name",
                sa.String(50 if "length" in changes else 80),
                nullable="nullable" in changes,
                index=True,
            ),
            sa.Column("code", sa.String(10), unique=True),
            comment="the parents" if "comment" in changes else None,
        )
        db.Table(
            "child",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column(
                "parent_id",
                sa.ForeignKey(
                    "parent.id",
                    ondelete="SET NULL" if "ondelete" in changes else "CASCADE",
                ),
            ),
            sa.Column("score", sa.Numeric(10, 2)),
            sa.Column(
                "rank", sa.Integer, server_default="1" if "default" in changes else "0"
            ),
            sa.Index("ix_child_score", "score", unique="unique" in changes),
            sa.UniqueConstraint("parent_id", "score", name="uq_child_parent_score"),
        )
        for number in range(FILLERS):
            if number == 6 and "drop table" in changes:
                continue
            columns = [
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column(
                    "v",
                    sa.BigInteger if number == 5 and "type" in changes else sa.Integer,
                    index=True,
                ),
            ]
            if number == 3 and "column" in changes:
                columns.append(sa.Column("extra", sa.Text))
            db.Table(f"filler_{number}", *columns)
        if "add table" in changes:
            db.Table("added", sa.Column("id", sa.Integer, primary_key=True))

    return models


TABLES = 2 + FILLERS

#: The table each change of the models is in.
CHANGED_TABLE = {
    "length": "parent",
    "nullable": "parent",
    "comment": "parent",
    "ondelete": "child",
    "default": "child",
    "unique": "child",
    "type": "filler_5",
    "column": "filler_3",
    "drop table": "filler_6",
    "add table": None,
}


def _cached_tables(backend: str) -> set[str]:
    """The tables a repeated comparison can leave out, on ``backend``.

    None on MySQL (no bulk reflection); on PostgreSQL, with
    ``compare_server_default``, not ``child``, whose server default
    PostgreSQL compares by running SQL.
    """
    every = {"parent", "child", *(f"filler_{n}" for n in range(FILLERS))}
    if backend == "mysql":
        return set()
    if backend == "postgresql":
        return every - {"child"}
    return every


def _plain(value: Any) -> Any:
    """A diff with SQL expressions as text (their reprs show only addresses)."""
    if isinstance(value, sa.schema.DefaultClause):
        return ("DefaultClause", _plain(value.arg))
    if isinstance(value, sa.sql.ClauseElement):
        return str(value)
    if isinstance(value, (sa.Table, sa.Column, sa.Index, sa.schema.Constraint)):
        return f"{type(value).__name__}:{getattr(value, 'name', None)}"
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return repr(value)


def _differences(app: Flask) -> list[str]:
    """What ``check`` finds, as sorted text (empty when nothing)."""
    with app.app_context():
        try:
            fma.check()
        except fma.CommandFailed as exc:
            return sorted(str(_plain(diff)) for diff in exc.__cause__.diffs)  # type: ignore[union-attr]
    return []


def _skipped(text: str) -> int:
    for line in text.splitlines():
        if "Skipped " in line and "unchanged tables" in line:
            return int(line.split("Skipped ", 1)[1].split()[0])
    return 0


def _both_ways(
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> tuple[list[str], int]:
    """The differences with the cache, checked equal to those without it.

    Returns them with the number of tables the cached run left out.
    """
    caplog.set_level(logging.INFO, logger="flask_migrate_alt")
    caplog.clear()
    cached = _differences(app)
    skipped = _skipped(caplog.text)
    caplog.clear()
    with monkeypatch.context() as patch:
        patch.setenv("FLASK_DB_COMPARE_CACHE", "0")
        plain = _differences(app)
    assert _skipped(caplog.text) == 0
    assert cached == plain
    return cached, skipped


def _migrated(make_app: Callable[..., Flask], url: str, **kwargs: Any) -> Flask:
    app = make_app(url, models=_models(), compare_server_default=True, **kwargs)
    with app.app_context():
        fma.init()
        fma.migrate(message="tables")
        fma.upgrade()
    return app


def _cache_file(tmp_path: Path) -> Path:
    return tmp_path / "migrations" / "__pycache__" / FILE_NAME


@pytest.mark.parametrize(
    "change",
    [
        "length",
        "nullable",
        "comment",
        "ondelete",
        "default",
        "unique",
        "type",
        "column",
        "drop table",
        "add table",
    ],
)
def test_model_changes_are_found_with_the_cache_warm(
    make_app: Callable[..., Flask],
    server: Server,
    change: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _migrated(make_app, server.new_database())
    url = str(app.config["SQLALCHEMY_DATABASE_URI"])
    cached = _cached_tables(server.backend)

    assert _both_ways(app, monkeypatch, caplog) == ([], 0)  # the cold run
    assert _cache_file(tmp_path).is_file() == bool(cached)
    assert _both_ways(app, monkeypatch, caplog) == ([], len(cached))

    changed = make_app(url, models=_models(change), compare_server_default=True)
    found, skipped = _both_ways(changed, monkeypatch, caplog)
    if change == "comment" and server.backend == "sqlite":
        assert found == []  # SQLite keeps no comments: Alembic sees none
    else:
        assert found, f"{change} not found"
    # The changed table is compared; the others are not.
    assert skipped == len(cached - {CHANGED_TABLE[change]})


def test_database_changes_are_found_with_the_cache_warm(
    make_app: Callable[..., Flask],
    server: Server,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Someone alters the database by hand: the digests of those tables differ."""
    app = _migrated(make_app, server.new_database())
    _both_ways(app, monkeypatch, caplog)
    url = str(app.config["SQLALCHEMY_DATABASE_URI"])
    drop_index = (
        "DROP INDEX ix_filler_1_v ON filler_1"
        if server.backend == "mysql"
        else "DROP INDEX ix_filler_1_v"
    )
    statements = [
        "ALTER TABLE filler_0 ADD COLUMN w INTEGER",
        drop_index,
        "CREATE INDEX ix_by_hand ON filler_2 (v, id)",
        "CREATE TABLE by_hand (id INTEGER PRIMARY KEY)",
    ]
    engine = sa.create_engine(url)
    try:
        for number, statement in enumerate(statements, start=1):
            with engine.begin() as connection:
                connection.exec_driver_sql(statement)
            found, skipped = _both_ways(app, monkeypatch, caplog)
            assert len(found) == number, found  # one more difference each time
            altered = {f"filler_{n}" for n in range(min(number, 3))}
            assert skipped == len(_cached_tables(server.backend) - altered)
    finally:
        engine.dispose()


def test_a_type_of_the_app_is_always_compared(
    make_app: Callable[..., Flask],
    sqlite_server: Server,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A type from outside SQLAlchemy may compare itself its own way."""

    class Money(sa.types.TypeDecorator[int]):
        impl = sa.Integer
        cache_ok = True

    def models(db: Any, bind_keys: list[str]) -> None:
        _models()(db, bind_keys)
        db.Table(
            "wallet",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("amount", Money),
        )

    app = make_app(sqlite_server.new_database(), models=models)
    with app.app_context():
        fma.init()  # no revisions: the tables are made by create_all()
        app.extensions["test_db"].create_all()
    _both_ways(app, monkeypatch, caplog)
    assert _both_ways(app, monkeypatch, caplog) == ([], TABLES)  # not wallet


@pytest.mark.parametrize("how", ["include_object", "environment", "config"])
def test_the_cache_is_off_when_asked_or_when_the_app_filters(
    make_app: Callable[..., Flask],
    sqlite_server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    """A hook of the app may decide anything: every table is compared then."""
    kwargs: dict[str, Any] = {}
    if how == "include_object":
        kwargs["include_object"] = lambda *args: True
    if how == "environment":
        monkeypatch.setenv("FLASK_DB_COMPARE_CACHE", "0")
    app = _migrated(make_app, sqlite_server.new_database(), **kwargs)
    if how == "config":
        app.config["MIGRATE_COMPARE_CACHE"] = False
    caplog.set_level(logging.INFO, logger="flask_migrate_alt")
    for _ in range(2):
        caplog.clear()
        assert _differences(app) == []
        assert _skipped(caplog.text) == 0
    assert not _cache_file(tmp_path).exists()


def test_the_command_line_skips_too_and_migrate_writes_the_change(
    make_app: Callable[..., Flask],
    postgresql_server: Server,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``flask db check`` and ``flask db migrate`` with the cache warm."""
    caplog.set_level(logging.INFO, logger="flask_migrate_alt")
    app = _migrated(make_app, postgresql_server.new_database())
    url = str(app.config["SQLALCHEMY_DATABASE_URI"])
    for _ in range(2):
        caplog.clear()
        result = app.test_cli_runner().invoke(args=["db", "check"])
        assert result.exit_code == 0, result.output
    cached = _cached_tables("postgresql")
    assert _skipped(caplog.text) == len(cached)

    changed = make_app(url, models=_models("length"), compare_server_default=True)
    caplog.clear()
    result = changed.test_cli_runner().invoke(args=["db", "migrate", "-m", "shorter"])
    assert result.exit_code == 0, result.output
    assert _skipped(caplog.text) == len(cached - {"parent"})
    written = next((tmp_path / "migrations" / "versions").glob("*_shorter.py"))
    assert "length=50" in written.read_text()


def test_a_damaged_or_unwritable_cache_is_ignored(
    make_app: Callable[..., Flask],
    sqlite_server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _migrated(make_app, sqlite_server.new_database())
    cache = _cache_file(tmp_path)
    cache.parent.mkdir(exist_ok=True)
    cache.write_text("{not json")
    assert _both_ways(app, monkeypatch, caplog) == ([], 0)
    assert json.loads(cache.read_text())["digests"]  # rewritten
    assert _both_ways(app, monkeypatch, caplog) == ([], TABLES)

    # A folder that cannot be made (a file is in the way), as in a
    # read-only checkout.
    cache.unlink()
    cache.parent.rmdir()
    cache.parent.write_text("")
    assert _both_ways(app, monkeypatch, caplog) == ([], 0)
    assert _both_ways(app, monkeypatch, caplog) == ([], 0)


CHANGES = (
    "length",
    "nullable",
    "comment",
    "ondelete",
    "default",
    "unique",
    "type",
    "column",
    "drop table",
    "add table",
)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_model_versions_give_alembic_s_answers(
    make_app: Callable[..., Flask],
    server: Server,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    seed: int,
) -> None:
    """Going back and forth between versions of the models, some seen before.

    The database stays at the first version, so every comparison after the
    first mixes tables remembered unchanged with changed ones.
    """
    import random

    pick = random.Random(seed)
    app = _migrated(make_app, server.new_database())
    url = str(app.config["SQLALCHEMY_DATABASE_URI"])
    versions = [tuple(pick.sample(CHANGES, pick.randint(0, 4))) for _ in range(4)]
    skipped_any = False
    for _ in range(8):
        changes = pick.choice(versions)
        version = make_app(url, models=_models(*changes), compare_server_default=True)
        _, skipped = _both_ways(version, monkeypatch, caplog)
        skipped_any = skipped_any or skipped > 0
    assert skipped_any == (server.backend != "mysql")


def _extra_models(
    extra: Callable[[Any], None],
) -> Callable[[Any, list[str]], None]:
    def models(db: Any, bind_keys: list[str]) -> None:
        _models()(db, bind_keys)
        extra(db)

    return models


def _created(make_app: Callable[..., Flask], url: str, models: Any) -> Flask:
    """An app whose tables are made by ``create_all()`` (no revisions)."""
    app = make_app(url, models=models, compare_server_default=True)
    with app.app_context():
        fma.init()
        app.extensions["test_db"].create_all()
    return app


def _one_change_found(
    make_app: Callable[..., Flask],
    server: Server,
    versions: tuple[Any, Any],
    table: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The models change from ``versions[0]`` to ``versions[1]`` in ``table`` only.

    With the cache warm, ``table`` is compared again and its one difference
    found; every other cacheable table is left out.
    """
    url = server.new_database()
    app = _created(make_app, url, versions[0])
    _both_ways(app, monkeypatch, caplog)
    cached = _cached_tables(server.backend)
    assert _both_ways(app, monkeypatch, caplog) == ([], len(cached) + 1)
    changed = make_app(url, models=versions[1], compare_server_default=True)
    found, skipped = _both_ways(changed, monkeypatch, caplog)
    assert len(found) == 1 and table in found[0]
    assert skipped == len(cached)


def test_literal_values_in_sql_expressions_count(
    make_app: Callable[..., Flask],
    sqlite_server: Server,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``lower('A')`` and ``lower('B')`` differ, though both print as ``lower(:p)``."""

    def tagged(letter: str) -> Callable[[Any, list[str]], None]:
        return _extra_models(
            lambda db: db.Table(
                "tagged",
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("tag", sa.String(5), server_default=sa.func.lower(letter)),
            )
        )

    _one_change_found(
        make_app,
        sqlite_server,
        (tagged("A"), tagged("B")),
        "tagged",
        monkeypatch,
        caplog,
    )


def test_a_variant_type_change_is_found(
    make_app: Callable[..., Flask],
    postgresql_server: Server,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A variant for the dialect changes the type Alembic compares, not the repr."""

    def noted(length: int) -> Callable[[Any, list[str]], None]:
        return _extra_models(
            lambda db: db.Table(
                "noted",
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column(
                    "note", sa.String(10).with_variant(sa.String(length), "postgresql")
                ),
            )
        )

    _one_change_found(
        make_app,
        postgresql_server,
        (noted(20), noted(30)),
        "noted",
        monkeypatch,
        caplog,
    )


def test_tables_alembic_warns_about_are_always_compared(
    make_app: Callable[..., Flask],
    sqlite_server: Server,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A computed column, an expression index: a skipped table would not warn."""

    def extra(db: Any) -> None:
        db.Table(
            "computed",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("a", sa.Integer),
            sa.Column("b", sa.Integer, sa.Computed("a * 2")),
        )
        lowered = db.Table(
            "lowered",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(20)),
        )
        sa.Index("ix_lowered_name", sa.func.lower(lowered.c.name))

    app = _created(make_app, sqlite_server.new_database(), _extra_models(extra))
    for _ in range(2):
        caplog.clear()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            assert _differences(app) == []
        # Alembic's warning, every time: the table was compared again.
        assert any("skipping metadata-specified" in str(w.message) for w in seen)
    assert _skipped(caplog.text) == TABLES


def test_global_column_reflect_listeners_turn_the_cache_off(
    make_app: Callable[..., Flask],
    sqlite_server: Server,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listener for every table may change what Alembic sees, at any time."""

    def listener(inspector: Any, table: Any, column_info: dict[str, Any]) -> None:
        pass

    app = _migrated(make_app, sqlite_server.new_database())
    sa.event.listen(sa.Table, "column_reflect", listener)
    try:
        for _ in range(2):
            assert _both_ways(app, monkeypatch, caplog) == ([], 0)
    finally:
        sa.event.remove(sa.Table, "column_reflect", listener)
    _both_ways(app, monkeypatch, caplog)
    assert _both_ways(app, monkeypatch, caplog) == ([], TABLES)
