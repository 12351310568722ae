"""Safe deploys in one process: the lock, timeouts, failures, autogenerate limits.

Concurrent processes and SIGKILL are in test_concurrency.py; here the test
itself plays the other process, holding the migration lock or a table lock
on a connection of its own.
"""

from __future__ import annotations

import fcntl
import functools
import json
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

import flask_migrate_alt as fma
from flask_migrate_alt.locking import _lock_key, mysql_lock_name

from .conftest import (
    AppFactory,
    Server,
    default_models,
    table_names,
    version_rows,
)
from .test_bad_input import database_state, snapshot


@pytest.fixture(params=["postgresql", "mysql"])
def lock_server(request: pytest.FixtureRequest) -> Server:
    """The servers that have lock timeouts (SQLite has none to set)."""
    return request.getfixturevalue(f"{request.param}_server")


# --------------------------------------------------------------------------
# helpers


CREATE_USER = (
    "op.create_table('user', sa.Column('id', sa.Integer, primary_key=True), "
    "sa.Column('name', sa.String(128)))"
)
BAD_SQL = "op.execute('THIS IS NOT SQL')"


def create(table: str) -> str:
    return f"op.create_table({table!r}, sa.Column('id', sa.Integer, primary_key=True))"


def write_revision(rev: str, down: str | None, *upgrade: str) -> Path:
    """Write ``migrations/versions/<rev>_step.py`` whose upgrade() runs ``upgrade``."""
    body = "\n    ".join(upgrade or ("pass",))
    path = Path("migrations", "versions", f"{rev}_step.py").absolute()
    path.write_text(
        f'"""{rev}"""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        f"revision = {rev!r}\n"
        f"down_revision = {down!r}\n"
        "branch_labels = None\n"
        "depends_on = None\n\n\n"
        f"def upgrade():\n    {body}\n\n\n"
        "def downgrade():\n    pass\n"
    )
    return path


def line_of(path: Path, text: str) -> int:
    return path.read_text().splitlines().index(f"    {text}") + 1


def history(app: Flask, *steps: tuple[str, ...]) -> list[Path]:
    """``init``, then revisions r1, r2, ... each running the ops of one step."""
    with app.app_context():
        fma.init()
    paths = []
    down = None
    for number, ops in enumerate(steps, start=1):
        rev = f"r{number}"
        paths.append(write_revision(rev, down, *ops))
        down = rev
    return paths


def state(url: str) -> tuple[Any, ...]:
    return database_state(url), snapshot(Path("migrations"))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "Error:" in line]


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


@contextmanager
def holding_migration_lock(backend: str, url: str) -> Iterator[str]:
    """Hold the migration lock as another process would; yield how it is named."""
    if backend == "sqlite":
        path = f"{sa.engine.make_url(url).database}.migration-lock"
        with open(path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield path
        return
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if backend == "postgresql":
                key = _lock_key("flask_migrate_alt:alembic_version")
                conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
                pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
                yield f"server process {pid}"
            else:
                database = engine.url.database
                name = mysql_lock_name(database, "alembic_version")
                got = conn.execute(sa.text("SELECT GET_LOCK(:n, 0)"), {"n": name})
                assert got.scalar() == 1
                thread = conn.execute(sa.text("SELECT CONNECTION_ID()")).scalar()
                yield f"connection {thread}"
    finally:
        engine.dispose()


# --------------------------------------------------------------------------
# a. the lock


def test_lock_timeout_names_the_holder(
    server: Server, make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.new_database()
    # The environment wins over Migrate(lock_timeout=...): 600 s is not waited.
    app = make_app(url, lock_timeout=600)
    history(app, (CREATE_USER,), (create("t2"),), (create("t3"),))
    runner = app.test_cli_runner()

    with ExitStack() as stack:
        if server.backend == "postgresql":
            # The same lock key held in another database must not be named.
            stack.enter_context(
                holding_migration_lock("postgresql", server.new_database())
            )
        holder = stack.enter_context(holding_migration_lock(server.backend, url))
        before = state(url)

        monkeypatch.setenv("FLASK_DB_LOCK_TIMEOUT", "1")
        start = time.monotonic()
        result = runner.invoke(args=["db", "upgrade"])
        assert time.monotonic() - start < 30
        assert result.exit_code == 1, result.output
        errors = error_lines(result.stderr)
        assert len(errors) == 1, result.stderr
        assert errors[0].startswith("Error: the database is being migrated by ")
        assert re.search(rf"{re.escape(holder)}\b", errors[0]), errors[0]
        assert "gave up after 1 s, set FLASK_DB_LOCK_TIMEOUT" in errors[0]
        assert "Traceback" not in result.output
        assert state(url) == before

        # Without the variable, Migrate(lock_timeout=...) is the wait.
        monkeypatch.delenv("FLASK_DB_LOCK_TIMEOUT")
        quick = make_app(url, lock_timeout=1)
        start = time.monotonic()
        with quick.app_context(), pytest.raises(fma.CommandFailed) as info:
            fma.upgrade()
        assert time.monotonic() - start < 30
        assert "is being migrated by" in info.value.message
        assert "gave up after 1 s" in info.value.message
        assert state(url) == before

        # FLASK_DB_LOCK=0 migrates while the lock is still held...
        monkeypatch.setenv("FLASK_DB_LOCK", "0")
        result = runner.invoke(args=["db", "upgrade", "+1"])
        assert result.exit_code == 0, result.output
        assert version_rows(url) == ["r1"]

        # ... and so does Migrate(lock=False).
        monkeypatch.delenv("FLASK_DB_LOCK")
        unlocked = make_app(url, lock=False)
        with unlocked.app_context():
            assert fma.upgrade() == ["r2", "r3"]
        assert version_rows(url) == ["r3"]
        assert {"user", "t2", "t3"} <= table_names(url)


# --------------------------------------------------------------------------
# b. a process that waited


def test_second_upgrade_finds_the_work_done(
    server: Server, make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.new_database()
    app = make_app(url)
    history(app, (CREATE_USER,), (create("t2"),))
    with app.app_context():
        assert fma.upgrade() == ["r1", "r2"]
        capsys.readouterr()
        assert fma.upgrade() == []
    # Nothing printed by the function: an app may call it on every start.
    assert capsys.readouterr().out == ""

    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "Nothing to do: the database is already at head." in result.stderr
    assert "Nothing to do" not in result.stdout
    assert version_rows(url) == ["r2"]


# --------------------------------------------------------------------------
# c. table lock timeouts


@contextmanager
def holding_table(backend: str, url: str) -> Iterator[None]:
    """Keep a lock on ``user`` as the running app would, in an open transaction."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn, conn.begin() as transaction:
            if backend == "postgresql":
                conn.execute(sa.text('LOCK TABLE "user" IN ACCESS EXCLUSIVE MODE'))
            else:  # a metadata lock, held until the transaction ends
                conn.execute(sa.text("SELECT * FROM `user`")).all()
            yield
            transaction.rollback()
    finally:
        engine.dispose()


def session_values(backend: str, conn: sa.Connection) -> tuple[Any, ...]:
    if backend == "postgresql":
        return tuple(
            conn.execute(sa.text(f"SHOW {name}")).scalar()
            for name in ("lock_timeout", "statement_timeout")
        )
    row = conn.execute(
        sa.text(
            "SELECT @@SESSION.lock_wait_timeout = @@GLOBAL.lock_wait_timeout, "
            "@@SESSION.innodb_lock_wait_timeout = @@GLOBAL.innodb_lock_wait_timeout, "
            "@@SESSION.max_statement_time = @@GLOBAL.max_statement_time"
        )
    ).one()
    return tuple(row)


def test_table_lock_timeout_fails_fast(
    lock_server: Server, make_app: AppFactory
) -> None:
    backend = lock_server.backend
    url = lock_server.new_database()
    app = make_app(url, table_lock_timeout=1, statement_timeout=60)
    history(
        app,
        (CREATE_USER,),
        ("op.add_column('user', sa.Column('email', sa.String(120)))",),
    )
    with app.app_context():
        assert fma.upgrade(revision="r1") == ["r1"]
    before = state(url)

    with holding_table(backend, url):
        start = time.monotonic()
        result = app.test_cli_runner().invoke(args=["db", "upgrade"])
        assert time.monotonic() - start < 15
    assert result.exit_code == 1, result.output
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    if backend == "postgresql":
        assert "canceling statement due to lock timeout" in errors[0]
    else:
        assert "Lock wait timeout exceeded" in errors[0]
    assert "[in revision r2 (" in errors[0]
    assert "Traceback" not in result.output
    assert state(url) == before

    # Every pooled connection of the app is back to the server's defaults.
    defaults = ("0", "0") if backend == "postgresql" else (1, 1, 1)
    with app.app_context():
        engine = app.extensions["test_db"].engine
    pooled = engine.pool.checkedin()
    assert pooled >= 1
    with ExitStack() as stack:
        connections = [stack.enter_context(engine.connect()) for _ in range(pooled)]
        for conn in connections:
            assert session_values(backend, conn) == defaults

    # With the table free the same upgrade goes through.
    with app.app_context():
        assert fma.upgrade() == ["r2"]
    assert version_rows(url) == ["r2"]


def test_timeouts_stay_on_the_migrating_thread(
    postgresql_server: Server, make_app: AppFactory
) -> None:
    """Another thread of the app, connecting during the migration, keeps the
    server's defaults: the timeouts are for the migration's own connections.
    """
    url = postgresql_server.new_database()
    app = make_app(url, table_lock_timeout=3, statement_timeout=60)
    probe = (
        "import json, threading",
        "from flask import current_app",
        "engine = current_app.extensions['migrate'].db.engine",
        "seen = {'migration': op.get_bind().execute("
        "sa.text('SHOW lock_timeout')).scalar()}",
        "def other():",
        "    with engine.connect() as conn:",
        "        seen['other'] = conn.execute(sa.text('SHOW lock_timeout')).scalar()",
        "thread = threading.Thread(target=other)",
        "thread.start()",
        "thread.join()",
        "with open('seen.json', 'w') as f:",
        "    f.write(json.dumps(seen))",
    )
    history(app, (CREATE_USER,), probe)
    with app.app_context():
        assert fma.upgrade() == ["r1", "r2"]
    seen = json.loads(Path("seen.json").read_text())
    assert seen == {"migration": "3s", "other": "0"}


def test_statement_timeout_stops_a_long_statement(
    lock_server: Server, make_app: AppFactory
) -> None:
    backend = lock_server.backend
    url = lock_server.new_database()
    app = make_app(url, statement_timeout=1)
    sleep = "SELECT pg_sleep(20)" if backend == "postgresql" else "SELECT SLEEP(20)"
    history(app, (CREATE_USER,), (f"op.execute({sleep!r})",))
    with app.app_context():
        assert fma.upgrade(revision="r1") == ["r1"]
    before = state(url)

    start = time.monotonic()
    with app.app_context(), pytest.raises(fma.CommandFailed) as info:
        fma.upgrade()
    assert time.monotonic() - start < 15
    if backend == "postgresql":
        assert "canceling statement due to statement timeout" in info.value.message
    else:
        assert "max_statement_time exceeded" in info.value.message
    assert state(url) == before


# --------------------------------------------------------------------------
# d. failures leave a known state


def test_failed_upgrade_leaves_database_as_before(
    transactional_server: Server, make_app: AppFactory
) -> None:
    url = transactional_server.new_database()
    app = make_app(url)
    paths = history(
        app, (CREATE_USER,), (create("t2"),), (create("t3"), BAD_SQL), (create("t4"),)
    )
    with app.app_context():
        assert fma.upgrade(revision="r1") == ["r1"]
    before = state(url)
    where = f"[in revision r3 ({paths[2]}, line {line_of(paths[2], BAD_SQL)})]"

    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 1, result.output
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("Error: database error:")
    assert errors[0].endswith(where)
    assert state(url) == before
    assert table_names(url) == {"user", "alembic_version"}

    with app.app_context(), pytest.raises(fma.CommandFailed) as info:
        fma.upgrade()
    assert info.value.message.endswith(where)
    assert state(url) == before


def test_mysql_keeps_what_was_committed(
    mysql_server: Server, make_app: AppFactory
) -> None:
    """MariaDB commits each DDL statement: the version table follows the commits."""
    url = mysql_server.new_database()
    app = make_app(url)
    paths = history(app, (create("t1"),), (create("t2"), BAD_SQL), (create("t3"),))

    with app.app_context(), pytest.raises(fma.CommandFailed) as info:
        fma.upgrade()
    assert f"[in revision r2 ({paths[1]}, line " in info.value.message
    assert version_rows(url) == ["r1"]
    # r2's first statement was committed before the failure.
    assert table_names(url) == {"alembic_version", "t1", "t2"}

    # Fixed so that it can run again on that state, the upgrade goes on.
    write_revision(
        "r2",
        "r1",
        "if not sa.inspect(op.get_bind()).has_table('t2'):",
        "    " + create("t2"),
    )
    with app.app_context():
        assert fma.upgrade() == ["r2", "r3"]
    assert version_rows(url) == ["r3"]
    assert table_names(url) == {"alembic_version", "t1", "t2", "t3"}


def test_transaction_per_migration_records_each_success(
    server: Server, make_app: AppFactory
) -> None:
    url = server.new_database()
    app = make_app(url, transaction_per_migration=True)
    paths = history(app, (create("t1"),), (create("t2"),), (create("t3"), BAD_SQL))

    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 1, result.output
    assert len(error_lines(result.stderr)) == 1, result.stderr
    assert version_rows(url) == ["r2"]
    tables = {"alembic_version", "t1", "t2"}
    if server.backend == "mysql":  # r3's CREATE TABLE committed itself
        tables.add("t3")
    assert table_names(url) == tables

    paths[2].write_text(paths[2].read_text().replace(BAD_SQL, "pass"))
    if server.backend == "mysql":
        write_revision(
            "r3",
            "r2",
            "if not sa.inspect(op.get_bind()).has_table('t3'):",
            "    " + create("t3"),
        )
    with app.app_context():
        assert fma.upgrade() == ["r3"]
    assert version_rows(url) == ["r3"]
    assert table_names(url) == {"alembic_version", "t1", "t2", "t3"}


# --------------------------------------------------------------------------
# e. autogenerate leaves alone what the models do not own


def _at_head(make_app: AppFactory, url: str, **kwargs: Any) -> Flask:
    app = make_app(url, **kwargs)
    with app.app_context():
        fma.init()
        fma.migrate(message="users", rev_id="rev1")
        fma.upgrade()
    return app


def _removed(diffs: Any) -> list[str]:
    return sorted(
        (f"{d[1].schema}.{d[1].name}" if d[1].schema else d[1].name)
        for d in diffs
        if d[0] == "remove_table"
    )


def _upgrade_of(script: Any) -> str:
    """The text of the upgrade() function of a new revision."""
    text = Path(script.path).read_text()
    return text.split("def upgrade(", 1)[1].split("def downgrade(", 1)[0]


def _new_revision_files(before: dict[str, str] | None) -> list[Path]:
    after = snapshot(Path("migrations")) or {}
    return [Path("migrations", name) for name in sorted(set(after) - set(before or {}))]


def test_exclude_tables(server: Server, make_app: AppFactory) -> None:
    url = server.new_database()
    app = _at_head(make_app, url, exclude_tables=["legacy_*"])
    execute(url, "CREATE TABLE legacy_data (id INTEGER PRIMARY KEY)")

    with make_app(url).app_context():  # without the option it would be dropped
        assert _removed(fma.compare_metadata()) == ["legacy_data"]

    files = snapshot(Path("migrations"))
    with app.app_context():
        assert fma.compare_metadata() == []
        assert fma.migrate(message="nothing") is None
    result = app.test_cli_runner().invoke(args=["db", "migrate", "-m", "nothing"])
    assert result.exit_code == 0, result.output
    assert snapshot(Path("migrations")) == files

    configured = make_app(url)
    configured.config["MIGRATE_EXCLUDE_TABLES"] = ["legacy_*"]
    with configured.app_context():
        assert fma.compare_metadata() == []

    # With a real model change, the revision has it and still no drop_table.
    changed = make_app(
        url,
        models=functools.partial(default_models, email=True),
        exclude_tables=["legacy_*"],
    )
    with changed.app_context():
        script = fma.migrate(message="email")
    assert script is not None
    body = _upgrade_of(script)
    assert "'email'" in body
    assert "drop_table" not in body and "legacy_data" not in body


def test_user_include_object_still_runs(server: Server, make_app: AppFactory) -> None:
    seen: list[tuple[str, str]] = []

    def include_object(
        obj: Any, name: str, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        seen.append((type_, name))
        return name != "mine_only"

    url = server.new_database()
    app = _at_head(
        make_app, url, exclude_tables=["legacy_*"], include_object=include_object
    )
    execute(
        url,
        "CREATE TABLE legacy_data (id INTEGER PRIMARY KEY)",
        "CREATE TABLE mine_only (id INTEGER PRIMARY KEY)",
    )
    seen.clear()
    with app.app_context():
        assert fma.compare_metadata() == []
    assert ("table", "mine_only") in seen and ("table", "user") in seen
    assert ("table", "legacy_data") not in seen


def test_system_tables_ignored_by_default(server: Server, make_app: AppFactory) -> None:
    url = server.new_database()
    app = _at_head(make_app, url)
    execute(url, "CREATE TABLE spatial_ref_sys (srid INTEGER PRIMARY KEY)")

    files = snapshot(Path("migrations"))
    with app.app_context():
        assert fma.compare_metadata() == []
        assert fma.migrate(message="nothing") is None
    assert snapshot(Path("migrations")) == files

    owned = make_app(url, exclude_system_tables=False)
    with owned.app_context():
        assert _removed(fma.compare_metadata()) == ["spatial_ref_sys"]
        script = fma.migrate(message="drop it")
    assert script is not None
    assert "op.drop_table('spatial_ref_sys')" in _upgrade_of(script)


def test_exclude_schemas(postgresql_server: Server, make_app: AppFactory) -> None:
    url = postgresql_server.new_database()
    execute(
        url,
        "CREATE SCHEMA reports",
        "CREATE TABLE reports.daily (id INTEGER PRIMARY KEY)",
    )
    app = make_app(url, include_schemas=True, exclude_schemas=["reports"])
    with app.app_context():
        fma.init()
    with make_app(url, include_schemas=True).app_context():
        assert _removed(fma.compare_metadata()) == ["reports.daily"]

    with app.app_context():
        before = snapshot(Path("migrations"))
        script = fma.migrate(message="users")
        assert script is not None
        body = _upgrade_of(script)
        assert "create_table('user'" in body
        assert "reports" not in body and "drop_table" not in body
        fma.upgrade()
        assert fma.compare_metadata() == []
        assert fma.migrate(message="nothing") is None
    assert len(_new_revision_files(before)) == 1


# --------------------------------------------------------------------------
# f. warnings about destructive operations


def old_models(db: Any, bind_keys: list[str]) -> None:
    db.Table(
        "user",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128)),
        sa.Column("nickname", sa.String(50)),
    )
    db.Table("gone", sa.Column("id", sa.Integer, primary_key=True))


def shrunk_models(db: Any, bind_keys: list[str]) -> None:
    db.Table(
        "user",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(10)),
    )


def grown_models(db: Any, bind_keys: list[str]) -> None:
    db.Table(
        "user",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128)),
        sa.Column("nickname", sa.String(50)),
        sa.Column("email", sa.String(120)),
    )
    db.Table("gone", sa.Column("id", sa.Integer, primary_key=True))
    db.Table("extra", sa.Column("id", sa.Integer, primary_key=True))


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("WARNING")]


def test_destructive_operations_are_announced(
    server: Server, make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.new_database()
    _at_head(make_app, url, models=old_models)
    shrunk = make_app(url, models=shrunk_models)
    grown = make_app(url, models=grown_models)
    before = snapshot(Path("migrations"))
    expected = [
        "drops table 'gone'",
        "drops column user.nickname",
        "changes user.name from VARCHAR(length=128) to String(length=10)",
    ]

    def check(lines: list[str]) -> None:
        assert len(lines) == len(expected), lines
        for line in lines:
            assert line.startswith("WARNING: the new revision ")
            assert line.endswith(", which destroys data; review it before upgrading")
        for description in expected:
            assert sum(description in line for line in lines) == 1, lines

    result = shrunk.test_cli_runner().invoke(args=["db", "migrate", "-m", "shrink"])
    assert result.exit_code == 0, result.output
    check(_warnings(result.stderr))
    assert "WARNING" not in result.stdout
    for path in _new_revision_files(before):
        path.unlink()

    capsys.readouterr()
    with shrunk.app_context():
        assert fma.migrate(message="shrink") is not None
    check(_warnings(capsys.readouterr().err))
    for path in _new_revision_files(before):
        path.unlink()

    result = grown.test_cli_runner().invoke(args=["db", "migrate", "-m", "grow"])
    assert result.exit_code == 0, result.output
    assert _warnings(result.stderr) == []
    assert len(_new_revision_files(before)) == 1
