"""The version table always says which revisions really are in the schema.

Alembic writes the version table with each step, in the step's
transaction. These tests hold the commands to that wherever a run is not
one transaction a rollback undoes: engines in AUTOCOMMIT mode, migrations
that commit by themselves, MariaDB's DDL that commits at once, and failures
in the middle of a run. After a failure, fixing the revision and upgrading
again must go on from where the database really is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

import flask_migrate_alt as fma

from .conftest import (
    AppFactory,
    Server,
    default_models,
    dispose_engines,
    stack_limit,
    table_names,
    version_rows,
)
from .test_safety import BAD_SQL, create, error_lines, history, write_revision


def upgrade_fails_leaving(
    app: Flask, url: str, rows: list[str], tables: set[str]
) -> None:
    """``flask db upgrade`` fails with one Error: line; ``rows``, ``tables`` stay."""
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 1, result.output
    assert len(error_lines(result.stderr)) == 1, result.stderr
    assert version_rows(url) == rows
    assert table_names(url) == tables


def fix_and_upgrade(
    app: Flask, url: str, fixes: dict[Path, str], applied: list[str]
) -> None:
    """Replace each text with ``pass`` in its revision file, upgrade again.

    The rerun must apply exactly ``applied``: it goes on from where the
    version table says the database is.
    """
    for path, text in fixes.items():
        source = path.read_text()
        assert text in source
        path.write_text(source.replace(text, "pass"))
    with app.app_context():
        assert fma.upgrade() == applied
    assert version_rows(url) == applied[-1:]


def test_failed_run_writes_no_version(
    transactional_server: Server, make_app: AppFactory
) -> None:
    url = transactional_server.new_database()
    app = make_app(url)
    history(app, (create("t1"),), (create("t2"),), (create("t3"),), (BAD_SQL,))
    with app.app_context():
        fma.upgrade(revision="r1")
        with pytest.raises(fma.CommandFailed):
            fma.upgrade()
    assert version_rows(url) == ["r1"]
    assert table_names(url) == {"alembic_version", "t1"}


def test_migration_sees_the_revision_before_it(
    server: Server, make_app: AppFactory
) -> None:
    """A migration asking for the current revision gets the previous step's."""
    url = server.new_database()
    app = make_app(url)
    check = (
        "seen = op.get_context().get_current_revision()",
        "if seen != 'r2':",
        "    raise RuntimeError(f'current revision is {seen}, not r2')",
    )
    history(app, (create("t1"),), (create("t2"),), check, (create("t4"),))
    with app.app_context():
        assert fma.upgrade() == ["r1", "r2", "r3", "r4"]
    assert version_rows(url) == ["r4"]


def test_autocommit_block_commits_the_revision_reached(
    postgresql_server: Server, make_app: AppFactory
) -> None:
    """What an autocommit block commits includes the version of the steps before it.

    The run fails after the block: the database keeps what the block
    committed (r1, r2 and the first statement of r3), and the version table
    says r2, so that fixing r4 and upgrading again goes on from there.
    """
    url = postgresql_server.new_database()
    app = make_app(url)
    paths = history(
        app,
        (create("t1"),),
        (create("t2"),),
        (
            create("t3"),
            "with op.get_context().autocommit_block():",
            "    op.execute('SELECT 1')",
        ),
        (create("t4"), BAD_SQL),
    )
    upgrade_fails_leaving(app, url, ["r2"], {"alembic_version", "t1", "t2", "t3"})
    fix_and_upgrade(app, url, {paths[2]: create("t3"), paths[3]: BAD_SQL}, ["r3", "r4"])


def test_on_version_apply_callbacks_see_each_revision(
    transactional_server: Server, make_app: AppFactory
) -> None:
    """The app's callbacks run after each step has been recorded, as in Alembic."""
    url = transactional_server.new_database()
    seen: list[list[str]] = []

    def callback(ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        query = sa.text("SELECT version_num FROM alembic_version")
        seen.append([row[0] for row in ctx.connection.execute(query)])

    app = make_app(url, on_version_apply=[callback])
    history(app, *[(create(f"t{n}"),) for n in range(1, 4)])
    with app.app_context():
        fma.upgrade()
    assert seen == [["r1"], ["r2"], ["r3"]]
    assert version_rows(url) == ["r3"]


def test_mysql_told_ddl_is_transactional_records_every_step(
    mysql_server: Server, make_app: AppFactory
) -> None:
    """transactional_ddl=True does not make MariaDB's CREATE roll back."""
    url = mysql_server.new_database()
    app = make_app(url, transactional_ddl=True)
    history(app, (create("t1"),), (create("t2"),), (create("t3"), BAD_SQL))
    with app.app_context(), pytest.raises(fma.CommandFailed):
        fma.upgrade()
    # r3's CREATE committed r2's version row, as in plain Alembic.
    assert version_rows(url) == ["r2"]
    assert table_names(url) == {"alembic_version", "t1", "t2", "t3"}


@stack_limit("legacy-connection")
@pytest.mark.parametrize("commit", ["op.execute('COMMIT')", "op.get_bind().commit()"])
def test_commit_in_a_migration_commits_the_revision_reached(
    postgresql_server: Server, make_app: AppFactory, commit: str
) -> None:
    """A migration that commits by itself commits the version of the steps before."""
    steps = ((create("t1"),), (create("t2"),), (create("t3"), commit), (BAD_SQL,))
    url = postgresql_server.new_database()
    app = make_app(url)
    history(app, *steps)
    with app.app_context(), pytest.raises(fma.CommandFailed):
        fma.upgrade()
    # The COMMIT in r3 made r1, r2 and t3 permanent; r3's own version row
    # and r4 were rolled back with the failure.
    assert version_rows(url) == ["r2"]
    assert table_names(url) == {"alembic_version", "t1", "t2", "t3"}


def make_app_with_options(url: str, options: dict[str, Any]) -> Flask:
    """An app whose engines are made with ``SQLALCHEMY_ENGINE_OPTIONS``."""
    from flask_sqlalchemy import SQLAlchemy

    app = Flask("autocommitapp", root_path=str(Path.cwd()))
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db = SQLAlchemy(app)
    default_models(db, [])
    fma.Migrate(app, db)
    return app


def test_autocommit_engine_records_every_step(postgresql_server: Server) -> None:
    """With isolation_level="AUTOCOMMIT" every statement commits at once.

    A failure in r3 leaves r1 and r2 in the schema, so the version table
    must say r2, and the rerun after the fix must apply only r3.
    """
    url = postgresql_server.new_database()
    app = make_app_with_options(url, {"isolation_level": "AUTOCOMMIT"})
    paths = history(app, (create("t1"),), (create("t2"),), (create("t3"), BAD_SQL))
    upgrade_fails_leaving(app, url, ["r2"], {"alembic_version", "t1", "t2", "t3"})
    fix_and_upgrade(app, url, {paths[2]: f"{create('t3')}\n    {BAD_SQL}"}, ["r3"])
    dispose_engines(app, app.extensions["migrate"].db)


def test_sqlite_commit_in_a_migration_records_the_steps_before(
    sqlite_server: Server, make_app: AppFactory
) -> None:
    """On SQLite, a revision that sends COMMIT makes the steps before it permanent."""
    url = sqlite_server.new_database()
    app = make_app(url)
    paths = history(
        app,
        (create("t1"),),
        (create("t2"), "op.execute('COMMIT')"),
        (BAD_SQL,),
    )
    with app.app_context(), pytest.raises(fma.CommandFailed):
        fma.upgrade()
    tables = table_names(url)
    rows = version_rows(url)
    # Whatever the COMMIT made permanent, the version table names the last
    # revision whose changes are all in the schema.
    assert "t2" in tables and "t1" in tables
    assert rows == ["r2"], (rows, tables)

    paths[2].write_text(paths[2].read_text().replace(BAD_SQL, "pass"))
    with app.app_context():
        assert fma.upgrade() == ["r3"]
    assert version_rows(url) == ["r3"]


def _branched_history(app: Flask) -> None:
    """r1 -> (a1 -> a2, b1) -> merge m -> r2, changing nothing but the versions."""
    with app.app_context():
        fma.init()
    write_revision("r1", None)
    write_revision("a1", "r1")
    write_revision("a2", "a1")
    write_revision("b1", "r1")
    write_revision("m", ("a2", "b1"))  # type: ignore[arg-type]
    write_revision("r2", "m")


# Each command, run on the same history by the tool and by plain Alembic.
BRANCH_COMMANDS: list[tuple[str, dict[str, str]]] = [
    ("upgrade", {"revision": "a2"}),
    ("upgrade", {"revision": "b1"}),
    ("upgrade", {"revision": "heads"}),
    ("downgrade", {"revision": "a1"}),
    ("downgrade", {"revision": "r1"}),
    ("upgrade", {"revision": "b1"}),
    ("upgrade", {"revision": "a1"}),
    ("upgrade", {"revision": "heads"}),
    ("stamp", {"revision": "a2"}),
    ("upgrade", {"revision": "heads"}),
    ("downgrade", {"revision": "base"}),
]


def _rows_after_each(app: Flask, url: str) -> list[list[str]]:
    rows = []
    with app.app_context():
        for command, kwargs in BRANCH_COMMANDS:
            getattr(fma, command)(**kwargs)
            rows.append(version_rows(url))
    return rows


# Each command on a history with branches and a merge, and the rows after it.
BRANCH_ROWS = [
    ["a2"],
    ["a2", "b1"],
    ["r2"],
    ["a1", "b1"],
    ["r1"],
    ["b1"],
    ["a1", "b1"],
    ["r2"],
    ["a2"],
    ["r2"],
    [],
]


def test_branches_and_merges_end_where_alembic_ends(
    transactional_server: Server, make_app: AppFactory
) -> None:
    url = transactional_server.new_database()
    app = make_app(url)
    _branched_history(app)
    rows = _rows_after_each(app, url)
    assert [sorted(r) for r in rows] == BRANCH_ROWS
    assert table_names(url) == {"alembic_version"}
