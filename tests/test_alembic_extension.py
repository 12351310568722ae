"""``flask_migrate_alt.Alembic``: Flask-Alembic's extension on our core.

What Flask-Alembic's own suite checks (defaults, mkdir, the command group,
where engines and metadata come from and the errors when they are missing,
digit targets, ``check`` and ``current --check-heads``), and what it does
not: the revision methods and the files they write, several databases,
``op``/``ops``, teardown, logging, the shared core (lock, SQLite DDL in the
transaction, one-line errors, ``status``) and an existing Flask-Alembic
repository taken over on every database.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

import flask_migrate_alt as fma
from flask_migrate_alt import Alembic, Migrate

from .conftest import (
    REPO,
    Server,
    run_flask,
    stack_limit,
    table_names,
    version_rows,
)

FIXTURE = REPO / "tests" / "fixtures" / "flask_alembic_single"


def todo_metadata(*columns: str) -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "todo",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        *(sa.Column(name, sa.String(50)) for name in columns),
    )
    return metadata


MakeApp = Callable[..., tuple[Flask, Alembic]]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[MakeApp]:
    """An app with an Alembic extension on the given engines."""
    engines: list[sa.Engine] = []

    def factory(
        urls: str | dict[str, str],
        metadatas: Any,
        *,
        root: Path = tmp_path,
        config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> tuple[Flask, Alembic]:
        app = Flask("fa_app", root_path=os.fspath(root))
        app.config.update(config or {})
        if isinstance(urls, str):
            made: Any = sa.create_engine(urls)
            engines.append(made)
        else:
            made = {name: sa.create_engine(url) for name, url in urls.items()}
            engines.extend(made.values())
        return app, Alembic(app, metadatas=metadatas, engines=made, **kwargs)

    yield factory
    for engine in engines:
        engine.dispose()


def columns(url: str, table: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return [c["name"] for c in sa.inspect(engine).get_columns(table)]
    finally:
        engine.dispose()


# --------------------------------------------------------------------------
# registering


def test_defaults_mkdir_and_command_group(tmp_path: Path, make: MakeApp) -> None:
    app, alembic = make("sqlite://", todo_metadata())
    assert app.extensions["alembic"] is alembic
    assert app.config["ALEMBIC"] == {
        "script_location": "migrations",
        "version_locations": [],
        "path_separator": "os",
    }
    assert app.config["ALEMBIC_CONTEXT"] == {"compare_server_default": True}
    template = (tmp_path / "migrations" / "script.py.mako").read_text()
    assert "def upgrade()" in template and "engine_name" not in template
    result = app.test_cli_runner().invoke(args=["db", "--help"])
    assert result.exit_code == 0
    for name in ("mkdir", "revision", "log", "check", "status", "lint"):
        assert name in result.output


def test_no_mkdir_no_command(tmp_path: Path) -> None:
    app = Flask("fa_app", root_path=os.fspath(tmp_path))
    Alembic(app, run_mkdir=False, command_name="")
    assert not (tmp_path / "migrations").exists()
    assert "db" not in app.cli.commands


@pytest.mark.parametrize(
    ("location", "error"),
    [("other_versions", RuntimeError), ("other_versions/sub", OSError)],
)
def test_failed_mkdir_leaves_no_folder_behind(
    tmp_path: Path, location: str, error: type[Exception]
) -> None:
    """A version location that is (under) a file: one error line, and the
    folders made before the failure are removed again."""
    app = Flask("fa_app", root_path=os.fspath(tmp_path))
    app.config["ALEMBIC"] = {"version_locations": [("other", location)]}
    alembic = Alembic(
        app,
        metadatas=todo_metadata(),
        engines=sa.create_engine("sqlite://"),
        run_mkdir=False,
    )
    (tmp_path / "other_versions").write_text("")
    with app.app_context(), pytest.raises(error, match="other_versions"):
        alembic.mkdir()
    assert not (tmp_path / "migrations").exists()
    result = app.test_cli_runner().invoke(args=["db", "mkdir"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "other_versions" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other_versions"]


def test_locations_from_root_path_and_packages(
    tmp_path: Path, make: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative paths are taken from the app's root, ``pkg:folder`` from a
    package; several databases get Alembic's ``multidb`` template."""
    package = tmp_path / "site" / "fa_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    root = tmp_path / "app"
    monkeypatch.chdir(tmp_path)  # not the root: paths must not depend on it
    app, alembic = make(
        {"default": "sqlite://", "other": "sqlite://"},
        {"default": todo_metadata(), "other": sa.MetaData()},
        root=root,
        config={
            "ALEMBIC": {
                "script_location": "fa_pkg:migrations",
                "version_locations": ["extra", ("other", "other_versions")],
            }
        },
    )
    assert "engine_name" in (package / "migrations" / "script.py.mako").read_text()
    assert (root / "extra").is_dir() and (root / "other_versions").is_dir()
    with app.app_context():
        locations = alembic.script_directory.version_locations
        assert str(root / "extra") in locations
        assert alembic.config.get_main_option("databases") == "default, other"


def test_migrate_and_alembic_cannot_share_a_command_name(tmp_path: Path) -> None:
    app = Flask("fa_app", root_path=os.fspath(tmp_path))
    Migrate(app, metadata=sa.MetaData(), engines=sa.create_engine("sqlite://"))
    with pytest.raises(RuntimeError, match="already registered by Migrate"):
        Alembic(app)
    assert "alembic" not in app.extensions
    other = Flask("fa_other", root_path=os.fspath(tmp_path))
    Alembic(other, run_mkdir=False)
    with pytest.raises(RuntimeError, match="already registered by Alembic"):
        Migrate(other, metadata=sa.MetaData(), engines=sa.create_engine("sqlite://"))
    # Under different names both work, each on its own repository.
    both = Flask("fa_both", root_path=os.fspath(tmp_path))
    Migrate(both, metadata=sa.MetaData(), engines=sa.create_engine("sqlite://"))
    Alembic(both, command_name="alembic", run_mkdir=False)
    assert set(both.cli.commands) >= {"db", "alembic"}


# --------------------------------------------------------------------------
# engines and metadata


def test_metadata_and_engines_are_required(tmp_path: Path) -> None:
    app = Flask("fa_app", root_path=os.fspath(tmp_path))
    alembic = Alembic(app)
    with app.app_context():
        with pytest.raises(RuntimeError, match="pass 'metadatas' when"):
            assert alembic.migration_context
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: When not using Flask-SQLAlchemy")
    assert "Traceback" not in result.output

    app = Flask("fa_app2", root_path=os.fspath(tmp_path))
    alembic = Alembic(app, metadatas=todo_metadata())
    with app.app_context(), pytest.raises(RuntimeError, match="engines configured"):
        assert alembic.migration_context


def test_missing_engine_is_named(make: MakeApp) -> None:
    app, alembic = make(
        "sqlite://", {"default": todo_metadata(), "missing": sa.MetaData()}
    )
    with (
        app.app_context(),
        pytest.raises(RuntimeError, match="Missing engine config for 'missing'"),
    ):
        assert alembic.migration_context


@stack_limit("flask-sqlalchemy-lite")
def test_flask_sqlalchemy_lite_engines(tmp_path: Path) -> None:
    from flask_sqlalchemy_lite import SQLAlchemy

    app = Flask("fa_app", root_path=os.fspath(tmp_path))
    db_path = tmp_path / "lite.db"
    app.config["SQLALCHEMY_ENGINES"] = {"default": f"sqlite:///{db_path}"}
    SQLAlchemy(app)
    alembic = Alembic(app, metadatas=todo_metadata())
    with app.app_context():
        url = alembic.migration_context.connection.engine.url  # type: ignore[union-attr]
        assert url.database == str(db_path)
        alembic.revision("todo")
        alembic.upgrade()
    assert "todo" in table_names(f"sqlite:///{db_path}")


def test_flask_sqlalchemy_models_and_override_engine(tmp_path: Path) -> None:
    from flask_sqlalchemy import SQLAlchemy

    app = Flask("fa_app", root_path=os.fspath(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'fsa.db'}"
    db = SQLAlchemy(app)
    sa.Table("book", db.metadata, sa.Column("id", sa.Integer, primary_key=True))
    alembic = Alembic(app)
    with app.app_context():
        assert alembic.migration_context.opts["target_metadata"] is db.metadata
        [script] = alembic.revision("books")
        assert (
            script is not None
            and "create_table('book'" in Path(script.path).read_text()
        )
        alembic.upgrade()
        assert "book" in sa.inspect(db.engine).get_table_names()
        db.engine.dispose()

    other = tmp_path / "other.db"
    engine = sa.create_engine(f"sqlite:///{other}")
    app2 = Flask("fa_app2", root_path=os.fspath(tmp_path))
    app2.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    SQLAlchemy(app2)
    alembic2 = Alembic(app2, engines=engine)
    with app2.app_context():
        url = alembic2.migration_context.connection.engine.url  # type: ignore[union-attr]
        assert url.database == str(other)
    engine.dispose()


# --------------------------------------------------------------------------
# revision ids


def test_rev_id_is_time_based_and_never_repeats(make: MakeApp) -> None:
    app, alembic = make("sqlite://", todo_metadata())
    ids = [alembic.rev_id() for _ in range(3)]
    assert all(i.isdigit() for i in ids)
    assert len(set(ids)) == 3 and ids == sorted(ids, key=int)
    # Another process wrote the id this one would use: step past it.
    alembic.rev_id = lambda: "1000"  # type: ignore[method-assign]
    with app.app_context():
        first = alembic.revision("one", empty=True)[0]
        second = alembic.revision("two", empty=True)[0]
    assert first is not None and second is not None
    assert (first.revision, second.revision) == ("1000", "1001")


# --------------------------------------------------------------------------
# an existing Flask-Alembic repository, on every database


def test_existing_repository_taken_over(
    server: Server, tmp_path: Path, make: MakeApp
) -> None:
    url = server.new_database()
    shutil.copytree(FIXTURE, tmp_path / "migrations")
    metadata = sa.MetaData()
    sa.Table(
        "author",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("email", sa.String(120)),
        sa.Column("age", sa.Integer),
    )
    app, alembic = make(url, metadata)
    with app.app_context():
        assert [s.revision for s in alembic.heads()] == ["1733141400"]
        assert alembic.upgrade() == ["1733140800", "1733141400"]
        assert version_rows(url) == ["1733141400"]
        assert [s.revision for s in alembic.current()] == ["1733141400"]
        assert alembic.needs_revision()
        [script] = alembic.revision("add author age")
        assert script is not None
        text = Path(script.path).read_text()
        # Written with the repository's own template, next to the others.
        assert Path(script.path).parent == tmp_path / "migrations"
        assert "revision = " in text and "op.add_column('author'" in text
        assert script.down_revision == "1733141400"
        assert not script.branch_labels  # the branch 'default' exists already
        alembic.upgrade()
        assert "age" in columns(url, "author")
        assert not alembic.needs_revision() and not alembic.needs_upgrade()
        assert version_rows(url) == [script.revision]
        alembic.downgrade()
        assert version_rows(url) == ["1733141400"]
        alembic.downgrade("base")
    assert version_rows(url) == []
    assert "author" not in table_names(url)
    # The version table keeps Alembic's format: one version_num column.
    assert columns(url, "alembic_version") == ["version_num"]


def test_digit_targets(tmp_path: Path, make: MakeApp, url: str) -> None:
    """A digit string is a revision id when one has it, else a number of steps."""
    shutil.copytree(FIXTURE, tmp_path / "migrations")
    app, alembic = make(url, sa.MetaData())
    with app.app_context():
        assert alembic.upgrade("1733140800") == ["1733140800"]
        assert alembic.upgrade("1") == ["1733141400"]
        assert alembic.downgrade("1733140800") == ["1733141400"]
        assert alembic.downgrade("-1") == ["1733140800"]
        assert alembic.upgrade(2) == ["1733140800", "1733141400"]
        assert alembic.downgrade(1) == ["1733141400"]
        assert alembic.downgrade("1") == ["1733140800"]
    assert version_rows(url) == []


# --------------------------------------------------------------------------
# writing revisions


def test_revision_branches_merge_log_and_stamp(
    tmp_path: Path, make: MakeApp, url: str
) -> None:
    app, alembic = make(
        url,
        todo_metadata(),
        config={"ALEMBIC": {"version_locations": [("audit", "audit_versions")]}},
    )
    with app.app_context():
        [base] = alembic.revision("todo")
        assert base is not None and base.branch_labels == {"default"}
        assert base.down_revision is None
        [empty] = alembic.revision("nothing", empty=True, label="tagged")
        assert empty is not None and empty.down_revision == base.revision
        assert empty.branch_labels == {"tagged"}
        assert "pass" in Path(empty.path).read_text()
        # A second independent branch starts at the base, in its own folder.
        [audit] = alembic.revision("audit", empty=True, branch="audit")
        assert audit is not None and audit.down_revision is None
        assert audit.branch_labels == {"audit"}
        assert Path(audit.path).parent == tmp_path / "audit_versions"
        [dep] = alembic.revision(
            "depends", empty=True, branch="audit", depend=base.revision
        )
        assert dep is not None and dep.down_revision == audit.revision
        assert dep.dependencies == base.revision
        assert {s.revision for s in alembic.heads()} == {empty.revision, dep.revision}
        merged = alembic.merge()
        assert merged is not None
        assert set(merged.down_revision) == {empty.revision, dep.revision}  # type: ignore[arg-type]
        assert [s.revision for s in alembic.heads()] == [merged.revision]
        assert [s.revision for s in alembic.log()][0] == merged.revision
        assert [s.revision for s in alembic.log(end=base.revision)] == [base.revision]
        # A revision on a parent that is not a head needs splice.
        [side] = alembic.revision("side", empty=True, parent=base.revision, splice=True)
        assert side is not None and side.down_revision == base.revision
        assert [s.revision for s in alembic.branches()] == [base.revision]
        alembic.stamp(merged.revision)
        assert [s.revision for s in alembic.current()] == [merged.revision]
        assert [s.revision for s in alembic.log(start="current")][-1] == merged.revision
        alembic.stamp("base")
    assert version_rows(url) == []


def test_autogenerate_with_no_change_writes_nothing(make: MakeApp, url: str) -> None:
    app, alembic = make(url, todo_metadata())
    with app.app_context():
        alembic.revision("todo")
        alembic.upgrade()
        assert alembic.revision("again") == []
        assert len(alembic.log()) == 1


# --------------------------------------------------------------------------
# several databases


def test_several_databases(server: Server, make: MakeApp, tmp_path: Path) -> None:
    urls = {"default": server.new_database(), "other": server.new_database()}
    other = sa.MetaData()
    sa.Table("event", other, sa.Column("id", sa.Integer, primary_key=True))
    app, alembic = make(urls, {"default": todo_metadata(), "other": other})
    with app.app_context():
        [script] = alembic.revision("both")
        assert script is not None
        text = Path(script.path).read_text()
        assert "def upgrade_default()" in text and "def upgrade_other()" in text
        assert alembic.upgrade() == [script.revision]
        assert "todo" in table_names(urls["default"])
        assert "event" in table_names(urls["other"])
        assert "event" not in table_names(urls["default"])
        for url in urls.values():
            assert version_rows(url) == [script.revision]
        assert not alembic.needs_revision() and not alembic.needs_upgrade()
        # Flask-Alembic's needs_revision failed with several databases, and
        # its ops gave the default database's Operations for every key.
        sa.Table("late", other, sa.Column("id", sa.Integer, primary_key=True))
        assert alembic.needs_revision()
        diffs = alembic.compare_metadata()
        assert [d[0] for d in diffs] == ["add_table"] and diffs[0][1].name == "late"
        scripts = alembic.produce_migrations().upgrade_ops_list
        assert [ops.upgrade_token for ops in scripts] == [
            "default_upgrades",
            "other_upgrades",
        ]
        assert alembic.ops["other"].migration_context.connection is not None
        assert (
            alembic.ops["other"].migration_context
            is alembic.migration_contexts["other"]
        )
        assert alembic.op.migration_context is alembic.migration_contexts["default"]
        alembic.downgrade("base")
    for url in urls.values():
        assert version_rows(url) == []


def test_op_runs_on_each_database(make: MakeApp, sqlite_server: Server) -> None:
    urls = {
        "default": sqlite_server.new_database(),
        "other": sqlite_server.new_database(),
    }
    app, alembic = make(urls, {"default": sa.MetaData(), "other": sa.MetaData()})
    with app.app_context():
        alembic.op.create_table("a", sa.Column("id", sa.Integer, primary_key=True))
        alembic.ops["other"].create_table(
            "b", sa.Column("id", sa.Integer, primary_key=True)
        )
        for context in alembic.migration_contexts.values():
            assert context.connection is not None
            transaction = context.connection.get_transaction()
            if transaction is not None:  # SQLAlchemy 1.4 autocommits DDL
                transaction.commit()
    assert "a" in table_names(urls["default"]) and "b" not in table_names(
        urls["default"]
    )
    assert "b" in table_names(urls["other"])


def test_connections_closed_at_teardown(make: MakeApp, url: str) -> None:
    app, alembic = make(url, todo_metadata())
    with app.app_context():
        connection = alembic.migration_context.connection
        assert connection is not None and not connection.closed
        assert alembic.migration_context.connection is connection  # kept
    assert connection.closed
    with app.app_context():
        assert alembic.migration_context.connection is not connection


def test_kept_context_sees_what_the_methods_changed(
    server: Server, make: MakeApp
) -> None:
    """``migration_context`` read before ``upgrade()`` reads the new heads
    after it, as in Flask-Alembic (where both share one connection); on
    MariaDB a snapshot kept open would still say "no revision"."""
    app, alembic = make(server.new_database(), todo_metadata())
    with app.app_context():
        [script] = alembic.revision("first")
        assert script is not None
        context = alembic.migration_context
        assert context.get_current_heads() == ()
        alembic.upgrade()
        assert context.get_current_heads() == (script.revision,)
        alembic.downgrade("base")
        assert context.get_current_heads() == ()
        alembic.stamp("heads")
        assert context.get_current_heads() == (script.revision,)


def test_run_migrations_calls_fn_with_kwargs(make: MakeApp, url: str) -> None:
    app, alembic = make(url, todo_metadata())
    seen: list[Any] = []

    def fn(heads: Any, context: Any) -> list[Any]:
        seen.append((tuple(heads), context.opts["target_metadata"]))
        return []

    with app.app_context():
        alembic.run_migrations(fn)
    assert seen and seen[0][0] == ()


# --------------------------------------------------------------------------
# the shared core


def test_failed_upgrade_leaves_sqlite_as_it_was(
    make: MakeApp, url: str, tmp_path: Path
) -> None:
    app, alembic = make(url, todo_metadata())
    with app.app_context():
        [script] = alembic.revision("todo")
        assert script is not None
        path = Path(script.path)
        path.write_text(
            path.read_text().replace(
                "# ### end Alembic commands ###",
                "op.execute('SELECT * FROM no_such_table')\n    # ### end",
                1,
            )
        )
        before = table_names(url)
        assert "todo" not in before
        with pytest.raises(sa.exc.OperationalError):
            alembic.upgrade()
    # The CREATE TABLE was rolled back with the failed statement.
    assert table_names(url) == before
    assert version_rows(url) == []
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")
    assert table_names(url) == before


def test_status_and_helpers_see_the_alembic_repository(
    make: MakeApp, url: str, tmp_path: Path
) -> None:
    shutil.copytree(FIXTURE, tmp_path / "migrations")
    app, alembic = make(url, sa.MetaData())
    with app.app_context():
        assert fma.needs_upgrade()
        alembic.upgrade()
        assert not fma.needs_upgrade()
        [found] = fma.status()
        assert found.current == ("1733141400",)
    result = app.test_cli_runner().invoke(args=["db", "status"])
    assert result.exit_code == 0, result.output
    assert "1733141400" in result.output
    result = app.test_cli_runner().invoke(args=["db", "lint", "base:heads"])
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------
# logging


@pytest.fixture
def clean_loggers() -> Iterator[None]:
    names = ("alembic", "sqlalchemy")
    saved = {
        name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers))
        for name in names
    }
    root = logging.getLogger()
    root_handlers = list(root.handlers)
    for name in names:
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).setLevel(logging.NOTSET)
    yield
    root.handlers[:] = root_handlers
    for name, (level, handlers) in saved.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).handlers[:] = handlers


@pytest.mark.usefixtures("clean_loggers")
def test_logging_shows_alembic_when_the_app_set_none(tmp_path: Path) -> None:
    logging.getLogger().handlers.clear()  # pytest's capture handlers
    Alembic(Flask("fa_app", root_path=os.fspath(tmp_path)), run_mkdir=False)
    assert logging.getLogger("alembic").level == logging.INFO
    assert logging.getLogger("sqlalchemy").level == logging.WARNING
    assert logging.getLogger("alembic").handlers


@pytest.mark.usefixtures("clean_loggers")
def test_logging_leaves_the_apps_loggers_alone(tmp_path: Path) -> None:
    handler = logging.NullHandler()
    logging.getLogger("alembic").setLevel(logging.ERROR)
    logging.getLogger().handlers[:] = [handler]
    Alembic(Flask("fa_app", root_path=os.fspath(tmp_path)), run_mkdir=False)
    assert logging.getLogger("alembic").level == logging.ERROR
    assert logging.getLogger("alembic").handlers == []
    assert logging.getLogger("sqlalchemy").handlers == []
    assert logging.getLogger().handlers == [handler]


# --------------------------------------------------------------------------
# the command line


def test_cli_grammar(make: MakeApp, url: str, tmp_path: Path) -> None:
    metadata = todo_metadata()
    app, _ = make(url, metadata)
    runner = app.test_cli_runner()

    def ok(*args: str) -> str:
        result = runner.invoke(args=["db", *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert "Generating" in ok("revision", "create todo")  # autogenerates
    [first] = list((tmp_path / "migrations").glob("*_create_todo.py"))
    assert "op.create_table('todo'" in first.read_text()
    first_id = first.name.split("_")[0]
    assert first_id.isdigit()
    ok("revision", "--empty", "-b", "extra", "start extra")
    assert len(ok("heads").splitlines()) == 2
    assert "Generating" in ok("merge", "-m", "join")
    assert len(ok("heads").splitlines()) == 1
    ok("revision", "--empty", "-d", first_id, "needs todo")
    [needs] = list((tmp_path / "migrations").glob("*_needs_todo.py"))
    [line] = [x for x in needs.read_text().splitlines() if x.startswith("depends_on")]
    assert line.endswith(f"= '{first_id}'")
    assert first_id in ok("log")
    assert first_id in ok("show", first_id)
    current = runner.invoke(args=["db", "current", "--check-heads"])
    assert current.exit_code == 1
    assert "Database is not on all head revisions" in current.output
    ok("upgrade")
    assert needs.name.split("_")[0] in ok("current", "--check-heads")
    assert "No changes detected" in ok("check")
    sa.Table("more", metadata, sa.Column("id", sa.Integer, primary_key=True))
    check = runner.invoke(args=["db", "check"])
    assert check.exit_code == 1 and "Changes detected" in check.output
    ok("downgrade", "base")
    assert version_rows(url) == []
    ok("stamp")
    assert len(version_rows(url)) == 1
    shutil.rmtree(tmp_path / "migrations")
    ok("mkdir")
    assert (tmp_path / "migrations" / "script.py.mako").is_file()


def test_cli_errors_are_one_line(make: MakeApp, url: str) -> None:
    app, _ = make(url, todo_metadata())
    result = app.test_cli_runner().invoke(args=["db", "upgrade", "nosuchrev"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert version_rows(url) == []


def test_end_to_end_in_a_real_process(tmp_path: Path, url: str) -> None:
    shutil.copytree(FIXTURE, tmp_path / "migrations")
    (tmp_path / "app.py").write_text(
        textwrap.dedent(
            f"""
            import sqlalchemy as sa
            from flask import Flask
            from flask_migrate_alt import Alembic

            app = Flask(__name__)
            Alembic(app, metadatas=sa.MetaData(), engines=sa.create_engine({url!r}))
            """
        )
    )
    done = run_flask(tmp_path, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert version_rows(url) == ["1733141400"]
    shown = run_flask(tmp_path, "db", "current")
    assert shown.returncode == 0 and "1733141400" in shown.stdout
    failed = run_flask(tmp_path, "db", "downgrade", "nosuchrev")
    assert failed.returncode == 1
    # Alembic's INFO lines first (shown as Flask-Alembic shows them), then
    # one error line.
    errors = [x for x in failed.stderr.splitlines() if not x.startswith("INFO ")]
    assert errors == ["Error: Can't locate revision identified by 'nosuchrev'"]
    assert version_rows(url) == ["1733141400"]


def test_registering_does_not_import_alembic(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from flask import Flask
        from flask_migrate_alt import Alembic
        Alembic(Flask("x", root_path={str(tmp_path)!r}))
        assert "alembic" not in sys.modules, "alembic imported"
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "migrations" / "script.py.mako").is_file()
