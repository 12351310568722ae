"""A first comparison leaves out the tables it can see are unchanged.

With no digests remembered, :mod:`flask_migrate_alt.equal_tables` compares
each model table with the rows bulk reflection read, and only tables it
cannot show to be the same go through Alembic. Every test here compares the
differences found that way with those Alembic finds on its own
(``FLASK_DB_COMPARE_CACHE=0``), over many shapes of tables: the same in the
database and the models, and changed in one attribute.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.dialects import postgresql as pg

import flask_migrate_alt as fma
from flask_migrate_alt import unchanged
from flask_migrate_alt.unchanged import FILE_NAME

from .conftest import Server

Build = Callable[[Any, str], Any]


def _table(*items: Any, **kwargs: Any) -> Build:
    """A table of these columns and constraints, named by the caller."""

    def build(db: Any, name: str) -> Any:
        return db.Table(name, *[item() for item in items], **kwargs)

    return build


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True)


def _col(name: str, *args: Any, **kwargs: Any) -> Callable[[], sa.Column[Any]]:
    # A ForeignKey belongs to one column: each table gets its own copy.
    return lambda: sa.Column(
        name,
        *[arg._copy() if isinstance(arg, sa.ForeignKey) else arg for arg in args],
        **kwargs,
    )


def _index(name: str, *columns: str, **kwargs: Any) -> Callable[[], sa.Index]:
    return lambda: sa.Index(name, *columns, **kwargs)


def _unique(*columns: str, **kwargs: Any) -> Callable[[], sa.UniqueConstraint]:
    return lambda: sa.UniqueConstraint(*columns, **kwargs)


def _fk(
    columns: list[str], targets: list[str], **kwargs: Any
) -> Callable[[], sa.ForeignKeyConstraint]:
    return lambda: sa.ForeignKeyConstraint(columns, targets, **kwargs)


class Money(sa.types.TypeDecorator[int]):
    """A type of the app: it could compare itself with the database."""

    impl = sa.Integer
    cache_ok = True


def _self_reference(db: Any, name: str) -> Any:
    return db.Table(
        name, _id(), sa.Column("up_id", sa.Integer, sa.ForeignKey(f"{name}.id"))
    )


PLAIN_ITEMS = (_id, _col("name", sa.String(50), index=True))
PLAIN = _table(*PLAIN_ITEMS)
#: Tables the foreign keys of the cases point to, the same on both sides.
PARENTS = {
    name: _table(
        _id,
        _col("code", sa.String(10), nullable=False),
        _col("kind", sa.Integer, nullable=False),
        _unique("code", "kind", name=f"uq_{name}_code_kind"),
    )
    for name in ("parent", "parent2")
}


@dataclass(frozen=True)
class Case:
    """A table made in the database from one version, compared with another."""

    database: Build
    model: Build
    #: Left out of Alembic's comparison, seen to be the same.
    seen_same: bool
    #: Alembic finds a difference in it.
    found: bool
    #: SQL run on the database after the tables are made ({t} is the table).
    sql: tuple[str, ...] = ()
    #: The one backend the case is for.
    only: str | None = None
    #: ``(seen_same, found)`` on SQLite, when they differ (no comments there).
    sqlite: tuple[bool, bool] | None = None

    def expected(self, backend: str) -> tuple[bool, bool]:
        """``(seen_same, found)`` on ``backend``."""
        if backend == "sqlite" and self.sqlite is not None:
            return self.sqlite
        return (self.seen_same, self.found)


def same(build: Build) -> Case:
    return Case(build, build, seen_same=True, found=False)


def changed(before: Build, after: Build) -> Case:
    return Case(before, after, seen_same=False, found=True)


def _two(*items: Any) -> Build:
    return _table(_id, _col("a", sa.Integer), _col("b", sa.Integer), *items)


def _child(**options: Any) -> Build:
    return _table(_id, _col("parent_id", sa.ForeignKey("parent.id", **options)))


CASES: dict[str, Case] = {
    # The same on both sides: left out, and nothing found.
    "plain": same(PLAIN),
    "types": same(
        _table(
            _id,
            _col("big", sa.BigInteger, nullable=False),
            _col("small", sa.SmallInteger),
            _col("flag", sa.Boolean),
            _col("at", sa.DateTime),
            _col("at_tz", sa.DateTime(timezone=True)),
            _col("day", sa.Date),
            _col("money", sa.Numeric(10, 2)),
            _col("body", sa.Text),
            _col("free", sa.String),
            _col("blob", sa.LargeBinary),
            _col("span", sa.Interval),
            _col("doc", sa.JSON),
            _col("ident", sa.Uuid),
            _col("mood", sa.Enum("happy", "sad", name="mood")),
            _col("short", sa.Enum("a", "bc", native_enum=False)),
        )
    ),
    "postgresql types": Case(
        _table(_id, _col("docb", pg.JSONB), _col("tags", pg.ARRAY(sa.Integer))),
        _table(_id, _col("docb", pg.JSONB), _col("tags", pg.ARRAY(sa.Integer))),
        seen_same=True,
        found=False,
        only="postgresql",
    ),
    # SQLite keeps no comments: Alembic ignores them, this module compares.
    "comments": Case(
        _table(_id, _col("note", sa.Text, comment="what it says"), comment="notes"),
        _table(_id, _col("note", sa.Text, comment="what it says"), comment="notes"),
        seen_same=True,
        found=False,
        sqlite=(False, False),
    ),
    "unnamed unique": same(_table(_id, _col("email", sa.String(80), unique=True))),
    "named unique": same(_two(_unique("b", "a", name="uq_pair"))),
    "unique index": same(_two(_index("ix_unique_a", "a", unique=True))),
    "composite index": same(_two(_index("ix_composite_ba", "b", "a"))),
    "foreign keys": same(
        _table(
            _id,
            _col("parent_id", sa.ForeignKey("parent.id", ondelete="CASCADE")),
            _col("code", sa.String(10)),
            _col("kind", sa.Integer),
            _fk(["code", "kind"], ["parent.code", "parent.kind"], name="fk_pair"),
        )
    ),
    "self reference": same(_self_reference),
    "server default": same(
        _table(_id, _col("rank", sa.Integer, server_default="0", nullable=False))
    ),
    "mixed case": same(_table(_id, _col("DisplayName", sa.String(20), index=True))),
    # Alembic does not look at server defaults unless compare_server_default.
    "server default changed": Case(
        _table(_id, _col("rank", sa.Integer, server_default="0")),
        _table(_id, _col("rank", sa.Integer, server_default="1")),
        seen_same=True,
        found=False,
    ),
    # The same for Alembic, but not written the same: compared, nothing found.
    "float": Case(
        _table(_id, _col("ratio", sa.Float)),
        _table(_id, _col("ratio", sa.Float)),
        seen_same=False,
        found=False,
        sqlite=(True, False),  # FLOAT there too
    ),
    "type of the app": Case(
        _table(_id, _col("amount", Money)),
        _table(_id, _col("amount", Money)),
        seen_same=False,
        found=False,
    ),
    "expression index": Case(
        _table(*PLAIN_ITEMS, _index("ix_lower_name", sa.func.lower(sa.column("name")))),
        _table(*PLAIN_ITEMS, _index("ix_lower_name", sa.func.lower(sa.column("name")))),
        seen_same=False,
        found=False,
    ),
    "column key": same(_table(_id, _col("name", sa.String(9), key="label"))),
    "partial index in the database": Case(
        PLAIN,
        PLAIN,
        seen_same=False,
        found=False,
        sql=(
            "DROP INDEX ix_{t}_name",
            "CREATE INDEX ix_{t}_name ON {t} (name) WHERE name IS NOT NULL",
        ),
    ),
    "identity in the database": Case(
        _table(_id, _col("n", sa.Integer, nullable=False)),
        _table(_id, _col("n", sa.Integer, nullable=False)),
        seen_same=False,
        found=False,
        sql=("ALTER TABLE {t} ALTER COLUMN n ADD GENERATED ALWAYS AS IDENTITY",),
        only="postgresql",
    ),
    # One thing changed: compared, and Alembic's difference found.
    "length": changed(PLAIN, _table(_id, _col("name", sa.String(60), index=True))),
    "type": changed(PLAIN, _table(_id, _col("name", sa.Text, index=True))),
    "nullable": changed(
        PLAIN, _table(_id, _col("name", sa.String(50), index=True, nullable=False))
    ),
    "column comment": Case(
        PLAIN,
        _table(_id, _col("name", sa.String(50), index=True, comment="n")),
        seen_same=False,
        found=True,
        sqlite=(False, False),
    ),
    "table comment": Case(
        PLAIN,
        _table(*PLAIN_ITEMS, comment="t"),
        seen_same=False,
        found=True,
        sqlite=(False, False),
    ),
    "column added": changed(PLAIN, _table(*PLAIN_ITEMS, _col("extra", sa.Integer))),
    "column removed": changed(_table(*PLAIN_ITEMS, _col("extra", sa.Integer)), PLAIN),
    "index removed": changed(PLAIN, _table(_id, _col("name", sa.String(50)))),
    "index added": changed(_table(_id, _col("name", sa.String(50))), PLAIN),
    "index made unique": changed(
        PLAIN, _table(_id, _col("name", sa.String(50), index=True, unique=True))
    ),
    "index renamed": changed(
        PLAIN, _table(_id, _col("name", sa.String(50)), _index("ix_other", "name"))
    ),
    "index columns": changed(
        _two(_index("ix_ab", "a")), _two(_index("ix_ab", "a", "b"))
    ),
    "unique added": changed(PLAIN, _table(*PLAIN_ITEMS, _unique("name", name="uq_n"))),
    "unique removed": changed(
        _table(*PLAIN_ITEMS, _unique("name", name="uq_n2")), PLAIN
    ),
    "unnamed unique added": changed(PLAIN, _table(*PLAIN_ITEMS, _unique("name"))),
    "unique columns": changed(
        _two(_unique("a", name="uq_ab")), _two(_unique("a", "b", name="uq_ab"))
    ),
    "foreign key added": changed(_table(_id, _col("parent_id", sa.Integer)), _child()),
    "foreign key removed": changed(
        _child(), _table(_id, _col("parent_id", sa.Integer))
    ),
    "foreign key ondelete": changed(
        _child(ondelete="CASCADE"), _child(ondelete="SET NULL")
    ),
    "foreign key deferrable": changed(
        _child(), _child(deferrable=True, initially="DEFERRED")
    ),
    "foreign key target": changed(
        _child(),
        _table(_id, _col("parent_id", sa.ForeignKey("parent2.id"))),
    ),
    "descending index in the database": Case(
        PLAIN,
        PLAIN,
        seen_same=False,
        found=True,
        sql=("DROP INDEX ix_{t}_name", "CREATE INDEX ix_{t}_name ON {t} (name DESC)"),
        # SQLAlchemy does not reflect the order on SQLite: nobody sees it.
        sqlite=(True, False),
    ),
    "nulls not distinct in the model": Case(
        _table(*PLAIN_ITEMS, _unique("name", name="uq_nnd_model")),
        _table(
            *PLAIN_ITEMS,
            _unique("name", name="uq_nnd_model", postgresql_nulls_not_distinct=True),
        ),
        seen_same=False,
        found=True,
        only="postgresql",
    ),
    "nulls not distinct in the database": Case(
        _table(*PLAIN_ITEMS, _unique("name", name="uq_nnd")),
        _table(*PLAIN_ITEMS, _unique("name", name="uq_nnd")),
        seen_same=False,
        found=True,
        sql=(
            "ALTER TABLE {t} DROP CONSTRAINT uq_nnd",
            "ALTER TABLE {t} ADD CONSTRAINT uq_nnd UNIQUE NULLS NOT DISTINCT (name)",
        ),
        only="postgresql",
    ),
}


def _name(case: str) -> str:
    return "t_" + case.replace(" ", "_")


def _models(side: str, cases: dict[str, Case]) -> Callable[[Any, list[str]], None]:
    def models(db: Any, bind_keys: list[str]) -> None:
        for name, build in PARENTS.items():
            build(db, name)
        for case, spec in cases.items():
            getattr(spec, side)(db, _name(case))

    return models


def _table_of(diff: Any) -> str:
    """The table one of Alembic's differences is about."""
    if isinstance(diff, list):  # the column changes of one column
        diff = diff[0]
    for item in diff[1:3]:
        if isinstance(item, sa.Table):
            return item.name
        if isinstance(item, (sa.Index, sa.schema.Constraint)):
            return str(item.table.name)
    return str(diff[2])  # (kind, schema, table, ...)


def _text(diffs: list[Any]) -> list[str]:
    """The differences as sorted text, without the addresses some reprs show."""
    return sorted(re.sub(r" at 0x[0-9a-f]+", "", repr(diff)) for diff in diffs)


def _check(app: Flask) -> list[Any]:
    """The differences ``check`` reports, as Alembic gives them."""
    with app.app_context():
        try:
            fma.check()
        except fma.CommandFailed as exc:
            return list(exc.__cause__.diffs)  # type: ignore[union-attr]
    return []


class _Recorded:
    """The tables each comparison saw to be the same, read as it records them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen_same: list[set[str]] = []
        record = unchanged.UnchangedTables.record

        def spy(tables: Any, upgrade_ops: Any) -> None:
            self.seen_same.append({name for _, name in tables.seen_same})
            record(tables, upgrade_ops)

        monkeypatch.setattr(unchanged.UnchangedTables, "record", spy)


def _prepared(
    make_app: Callable[..., Flask],
    server: Server,
    cases: dict[str, Case],
    **migrate_kwargs: Any,
) -> Flask:
    """A new database holding the cases' ``database`` side, and the app of their models.

    The tables are made by ``create_all()``, then the cases' SQL is run; the
    app, with a migration repository, has the ``model`` side.
    """
    url = server.new_database()
    database = make_app(url, models=_models("database", cases))
    with database.app_context():
        database.extensions["test_db"].create_all()
        engine = database.extensions["test_db"].engine
        with engine.begin() as connection:
            for case, spec in cases.items():
                for statement in spec.sql:
                    connection.exec_driver_sql(statement.format(t=_name(case)))
    app = make_app(url, models=_models("model", cases), **migrate_kwargs)
    with app.app_context():
        fma.init()
    return app


def _url(app: Flask) -> str:
    return str(app.config["SQLALCHEMY_DATABASE_URI"])


def _first_checks(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[Any], set[str], list[Any]]:
    """A first check (no digests), and the same check made by Alembic alone.

    Returns the differences of the first, the tables it saw to be the same,
    and the differences of Alembic's.
    """
    recorded = _Recorded(monkeypatch)
    (tmp_path / "migrations" / "__pycache__" / FILE_NAME).unlink(missing_ok=True)
    with warnings.catch_warnings(record=True) as first_warnings:
        warnings.simplefilter("always")
        first = _check(app)
    with (
        monkeypatch.context() as patch,
        warnings.catch_warnings(record=True) as alone_warnings,
    ):
        warnings.simplefilter("always")
        patch.setenv("FLASK_DB_COMPARE_CACHE", "0")
        alone = _check(app)
    assert len(recorded.seen_same) == 1  # the run with the cache off records nothing
    # Alembic's warnings too: a table it warns about is never left out.
    assert sorted(str(w.message) for w in first_warnings) == sorted(
        str(w.message) for w in alone_warnings
    )
    return first, recorded.seen_same[0], alone


def _for(backend: str) -> dict[str, Case]:
    return {case: spec for case, spec in CASES.items() if spec.only in (None, backend)}


def test_a_first_check_leaves_out_only_tables_alembic_finds_unchanged(
    make_app: Callable[..., Flask],
    transactional_server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = transactional_server.backend
    cases = _for(backend)
    app = _prepared(make_app, transactional_server, cases)

    first, seen_same, alone = _first_checks(app, tmp_path, monkeypatch)

    assert _text(first) == _text(alone)
    expected = {_name(case): spec.expected(backend) for case, spec in cases.items()}
    assert seen_same == {name for name, (same, _) in expected.items() if same} | set(
        PARENTS
    )
    found = {_table_of(diff) for diff in alone}
    assert found == {name for name, (_, found) in expected.items() if found}


@pytest.mark.parametrize("compare_type", [True, False])
def test_a_type_change_counts_only_if_types_are_compared(
    make_app: Callable[..., Flask],
    transactional_server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    compare_type: bool,
) -> None:
    cases = {"length": CASES["length"], "plain": CASES["plain"]}
    app = _prepared(make_app, transactional_server, cases, compare_type=compare_type)

    first, seen_same, alone = _first_checks(app, tmp_path, monkeypatch)

    assert _text(first) == _text(alone)
    assert bool(alone) == compare_type
    expected = {_name("plain"), *PARENTS}
    assert seen_same == (expected if compare_type else expected | {_name("length")})


@pytest.mark.parametrize("compare_server_default", [True, 0, None])
def test_compare_server_default_leaves_every_table_to_alembic(
    make_app: Callable[..., Flask],
    transactional_server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    compare_server_default: int | None,
) -> None:
    """Alembic then compares server defaults, unless the option is False itself.

    A 0 is kept by ``configure()`` and compares them (Alembic tests for
    False); a None is dropped by ``configure()`` but compares them when given
    to a ``MigrationContext`` directly: every table is left to Alembic then.
    """
    cases = {"server default changed": CASES["server default changed"]}
    app = _prepared(
        make_app,
        transactional_server,
        cases,
        compare_server_default=compare_server_default,
    )

    first, seen_same, alone = _first_checks(app, tmp_path, monkeypatch)

    assert _text(first) == _text(alone)
    compared = compare_server_default is not None
    assert {_table_of(diff) for diff in alone} == (
        {_name("server default changed")} if compared else set()
    )
    assert seen_same == set()


def _checked(db: Any, name: str) -> Any:
    return db.Table(
        name,
        _id(),
        sa.Column("n", sa.Integer),
        sa.CheckConstraint("n > 0", name=f"ck_{name}_n"),
    )


def _unchecked(db: Any, name: str) -> Any:
    return db.Table(name, _id(), sa.Column("n", sa.Integer))


def test_a_plugin_that_compares_more_leaves_every_table_to_alembic(
    make_app: Callable[..., Flask],
    transactional_server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alembic's old name of its check-constraint plugin, and an app's plugin.

    Both names start with ``alembic.autogenerate.``; the first is translated
    to ``alembic.ext.checkconstraint_byname``, the second is picked up by
    the default ``alembic.autogenerate.*``.
    """
    pytest.importorskip("alembic.runtime.plugins")
    import types

    from alembic.operations import ops
    from alembic.runtime.plugins import Plugin
    from alembic.util import PriorityDispatchResult

    cases = {"check": Case(_unchecked, _checked, seen_same=False, found=True)}
    legacy = ["alembic.autogenerate.*", "alembic.autogenerate.checkconstraint_byname"]
    app = _prepared(make_app, transactional_server, cases, autogenerate_plugins=legacy)

    first, seen_same, alone = _first_checks(app, tmp_path, monkeypatch)

    assert _text(first) == _text(alone)
    assert {_table_of(diff) for diff in alone} == {_name("check")}
    assert seen_same == set()

    def compare(context: Any, modify: Any, schema: Any, name: str, *tables: Any) -> Any:
        if name == "parent" and all(table is not None for table in tables):
            modify.ops.append(ops.CreateTableCommentOp(name, "seen by the app"))
        return PriorityDispatchResult.CONTINUE

    module = types.ModuleType("app_plugin")
    module.setup = lambda plugin: plugin.add_autogenerate_comparator(  # type: ignore[attr-defined]
        compare, "table", "app"
    )
    Plugin.setup_plugin_from_module(module, "alembic.autogenerate.app_comments")
    try:
        plain = make_app(_url(app), models=_models("database", cases))
        first, seen_same, alone = _first_checks(plain, tmp_path, monkeypatch)
    finally:
        from alembic.runtime.plugins import _all_plugins

        _all_plugins["alembic.autogenerate.app_comments"].remove()
    assert _text(first) == _text(alone)
    assert {_table_of(diff) for diff in alone} == {"parent"}
    assert seen_same == set()


def test_flask_db_check_and_migrate_on_a_fresh_checkout(
    make_app: Callable[..., Flask],
    postgresql_server: Server,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The command line: the first check is quick, and migrate writes the change."""
    cases = {"plain": CASES["plain"], "length": same(PLAIN)}
    url = postgresql_server.new_database()
    app = make_app(url, models=_models("model", cases))
    with app.app_context():
        fma.init()
        fma.migrate(message="tables")
        fma.upgrade()
    cache = tmp_path / "migrations" / "__pycache__" / FILE_NAME
    cache.unlink(missing_ok=True)
    caplog.set_level(logging.INFO, logger="flask_migrate_alt")

    result = app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output
    assert "Skipped 4 unchanged tables (compared 0)" in caplog.text

    cache.unlink()
    caplog.clear()
    longer = {"plain": CASES["plain"], "length": CASES["length"]}
    changed_app = make_app(url, models=_models("model", longer))
    runner = changed_app.test_cli_runner()
    result = runner.invoke(args=["db", "migrate", "-m", "longer"])
    assert result.exit_code == 0, result.output
    written = next((tmp_path / "migrations" / "versions").glob("*_longer.py"))
    assert "length=60" in written.read_text()
    assert "t_plain" not in written.read_text()


CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def test_names_from_a_naming_convention_even_truncated(
    make_app: Callable[..., Flask],
    transactional_server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alembic compares the names the convention gives, shortened if too long."""
    long = "a_column_with_a_name_long_enough_to_need_truncating"

    def models(db: Any, bind_keys: list[str]) -> None:
        db.metadata.naming_convention = CONVENTION
        for name, build in PARENTS.items():
            build(db, name)
        db.Table(
            "conventional",
            _id(),
            sa.Column("parent_id", sa.ForeignKey("parent.id")),
            sa.Column(f"{long}_1", sa.Integer, index=True),
            sa.Column(f"{long}_2", sa.Integer),
            sa.UniqueConstraint(f"{long}_1", f"{long}_2"),
        )

    url = transactional_server.new_database()
    app = make_app(url, models=models)
    with app.app_context():
        app.extensions["test_db"].create_all()
        fma.init()

    first, seen_same, alone = _first_checks(app, tmp_path, monkeypatch)

    assert _text(first) == _text(alone) == []
    assert seen_same == {"conventional", *PARENTS}


def test_tables_of_another_schema_with_foreign_keys_across(
    make_app: Callable[..., Flask],
    postgresql_server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``include_schemas``: each schema's rows, keys and foreign keys."""

    def models(version: str) -> Callable[[Any, list[str]], None]:
        def build(db: Any, bind_keys: list[str]) -> None:
            for name, parent in PARENTS.items():
                parent(db, name)
            db.Table(
                "account",
                _id(),
                sa.Column("parent_id", sa.ForeignKey("parent.id")),
                sa.Column("code", sa.String(10 if version == "database" else 12)),
                schema="other",
            )
            db.Table(
                "entry",
                _id(),
                sa.Column("account_id", sa.ForeignKey("other.account.id")),
                schema="other",
            )
            db.Table(
                "note",
                _id(),
                sa.Column("entry_id", sa.ForeignKey("other.entry.id")),
            )

        return build

    url = postgresql_server.new_database()
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE SCHEMA other")
    engine.dispose()
    database = make_app(url, models=models("database"))
    with database.app_context():
        database.extensions["test_db"].create_all()
    app = make_app(url, models=models("model"), include_schemas=True)
    with app.app_context():
        fma.init()

    first, seen_same, alone = _first_checks(app, tmp_path, monkeypatch)

    assert _text(first) == _text(alone)
    assert {_table_of(diff) for diff in alone} == {"account"}
    assert seen_same == {"entry", "note", *PARENTS}


def test_a_type_alembic_cannot_read_fails_the_first_check_too(
    make_app: Callable[..., Flask],
    postgresql_server: Server,
    tmp_path: Path,
) -> None:
    """A type name with no word in it makes Alembic's comparison fail."""
    odd = _table(_id, _col("mood", sa.Enum("a", "b", name="+++")))
    cases = {"odd": Case(odd, odd, seen_same=False, found=False)}
    app = _prepared(make_app, postgresql_server, cases)
    with app.app_context():
        with pytest.raises(fma.CommandFailed) as first:
            fma.check()
    assert isinstance(first.value.__cause__, IndexError)  # Alembic's own failure


def test_compare_metadata_and_produce_migrations_leave_them_out_too(
    make_app: Callable[..., Flask],
    transactional_server: Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Python API compares without env.py: the same tables are left out."""
    cases = {"plain": CASES["plain"], "length": CASES["length"]}
    app = _prepared(make_app, transactional_server, cases)
    recorded = _Recorded(monkeypatch)
    with app.app_context():
        first = fma.compare_metadata()
        again = fma.compare_metadata()  # the digests remembered by the first
        script = fma.produce_migrations()
        with monkeypatch.context() as patch:
            patch.setenv("FLASK_DB_COMPARE_CACHE", "0")
            alone = fma.compare_metadata()

    assert isinstance(first, list) and isinstance(again, list)
    assert isinstance(alone, list)
    assert _text(first) == _text(again) == _text(alone)
    assert _text(script.upgrade_ops.as_diffs()) == _text(alone)  # type: ignore[union-attr]
    assert {_table_of(diff) for diff in alone} == {_name("length")}
    # Seen the same by the first comparison; known by their digests after.
    assert recorded.seen_same == [{_name("plain"), *PARENTS}, set(), set()]


def test_database_changed_by_hand_between_checks(
    make_app: Callable[..., Flask],
    transactional_server: Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Digests remembered from tables seen the same stop matching after a change."""
    cases = {"plain": CASES["plain"], "foreign keys": CASES["foreign keys"]}
    app = _prepared(make_app, transactional_server, cases)
    recorded = _Recorded(monkeypatch)
    assert _check(app) == []
    assert recorded.seen_same[-1] == {_name("plain"), _name("foreign keys"), *PARENTS}

    engine = sa.create_engine(_url(app))
    statements = [
        f"ALTER TABLE {_name('plain')} ADD COLUMN extra INTEGER",
        f"DROP INDEX ix_{_name('plain')}_name",
        f"CREATE INDEX ix_by_hand ON {_name('foreign keys')} (code)",
    ]
    try:
        for number, statement in enumerate(statements, start=1):
            with engine.begin() as connection:
                connection.exec_driver_sql(statement)
            found = _check(app)
            with monkeypatch.context() as patch:
                patch.setenv("FLASK_DB_COMPARE_CACHE", "0")
                alone = _check(app)
            assert _text(found) == _text(alone)
            assert len(alone) == number  # one more difference each time
            changed = (
                {_name("plain"), _name("foreign keys")}
                if number == 3
                else {_name("plain")}
            )
            # A changed table is not seen the same: Alembic compares it.
            assert not changed & recorded.seen_same[-1]
    finally:
        engine.dispose()
