"""The version table written once per run (flask_migrate_alt.version_writes).

Where the run is one transaction, the steps' version-table UPDATEs are held
back and written at the end. Every test here checks that the rows the
commands leave are the ones plain Alembic leaves, including where a migration
looks at the version table or commits in the middle of the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

import flask_migrate_alt as fma
from flask_migrate_alt import version_writes

from .conftest import AppFactory, Server, table_names, version_rows
from .test_safety import BAD_SQL, create, error_lines, history, write_revision


@contextmanager
def version_writes_counted() -> Iterator[list[str]]:
    """Collect the INSERT/UPDATE/DELETE statements sent to alembic_version."""
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        words = statement.split(None, 3)
        if words and words[0] in ("INSERT", "UPDATE", "DELETE"):
            if "alembic_version" in " ".join(words[1:3]):
                seen.append(words[0])

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", before)


def plain_alembic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let every step write the version table itself, as Alembic does."""
    monkeypatch.setattr(version_writes, "_can_hold_back", lambda *args: False)


def test_one_update_per_run(server: Server, make_app: AppFactory) -> None:
    url = server.new_database()
    app = make_app(url)
    history(app, *[(create(f"t{n}"),) for n in range(1, 6)])
    transactional = server.backend != "mysql"

    with version_writes_counted() as seen, app.app_context():
        assert fma.upgrade() == ["r1", "r2", "r3", "r4", "r5"]
    # r1 creates the row; r2..r5 each move it on.
    assert seen == (
        ["INSERT", "UPDATE"] if transactional else ["INSERT"] + ["UPDATE"] * 4
    )
    assert version_rows(url) == ["r5"]

    with version_writes_counted() as seen:
        result = app.test_cli_runner().invoke(args=["db", "downgrade", "r2"])
    assert result.exit_code == 0, result.output
    assert seen == (["UPDATE"] if transactional else ["UPDATE"] * 3)
    assert version_rows(url) == ["r2"]


def test_transaction_per_migration_writes_every_step(
    transactional_server: Server, make_app: AppFactory
) -> None:
    url = transactional_server.new_database()
    app = make_app(url, transaction_per_migration=True)
    history(app, *[(create(f"t{n}"),) for n in range(1, 4)])
    with version_writes_counted() as seen, app.app_context():
        fma.upgrade()
    assert seen == ["INSERT", "UPDATE", "UPDATE"]
    assert version_rows(url) == ["r3"]


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
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 1, result.output
    assert len(error_lines(result.stderr)) == 1, result.stderr
    assert version_rows(url) == ["r2"]
    assert table_names(url) == {"alembic_version", "t1", "t2", "t3"}

    paths[2].write_text(paths[2].read_text().replace(create("t3"), "pass"))
    paths[3].write_text(paths[3].read_text().replace(BAD_SQL, "pass"))
    with app.app_context():
        assert fma.upgrade() == ["r3", "r4"]
    assert version_rows(url) == ["r4"]


@pytest.mark.parametrize("commit", ["op.execute('COMMIT')", "op.get_bind().commit()"])
def test_commit_in_a_migration_commits_the_revision_reached(
    postgresql_server: Server,
    make_app: AppFactory,
    monkeypatch: pytest.MonkeyPatch,
    commit: str,
) -> None:
    """A migration that commits by itself: the version committed is Alembic's."""
    steps = ((create("t1"),), (create("t2"),), (create("t3"), commit), (BAD_SQL,))
    url = postgresql_server.new_database()
    app = make_app(url)
    history(app, *steps)
    with app.app_context(), pytest.raises(fma.CommandFailed):
        fma.upgrade()
    ours = (version_rows(url), table_names(url))

    plain_alembic(monkeypatch)
    plain_url = postgresql_server.new_database()
    with make_app(plain_url).app_context(), pytest.raises(fma.CommandFailed):
        fma.upgrade()
    assert ours == (version_rows(plain_url), table_names(plain_url))
    assert ours == (["r2"], {"alembic_version", "t1", "t2", "t3"})


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


def test_version_row_changed_during_run_is_reported(
    transactional_server: Server, make_app: AppFactory
) -> None:
    url = transactional_server.new_database()
    app = make_app(url)
    history(
        app,
        (create("t1"),),
        (create("t2"),),
        ("op.execute('DELETE FROM alembic_version')",),
    )
    with app.app_context():
        fma.upgrade(revision="r1")
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 1, result.output
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert "something else changed the version table" in errors[0]
    assert "Traceback" not in result.stderr
    assert version_rows(url) == ["r1"]
    assert table_names(url) == {"alembic_version", "t1"}


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


def test_branches_and_merges_end_where_alembic_ends(
    transactional_server: Server,
    make_app: AppFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = transactional_server.new_database()
    app = make_app(url)
    _branched_history(app)
    with version_writes_counted() as held_back:
        ours = _rows_after_each(app, url)

    plain_url = transactional_server.new_database()
    plain_app = make_app(plain_url)
    plain_alembic(monkeypatch)
    with version_writes_counted() as plain:
        expected = _rows_after_each(plain_app, plain_url)

    assert ours == expected
    assert ours[2] == ["r2"] and ours[-1] == []
    assert len(held_back) < len(plain)
    assert table_names(url) == table_names(plain_url) == {"alembic_version"}
