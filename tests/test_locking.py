"""The migration lock under the setups production has, with real processes.

Servers and proxies that close idle sessions, pools of one connection,
SQLite databases named by URI, a second deploy started while a long
migration runs, and bad lock settings. Each ``flask db upgrade`` runs in a
process of its own, on the audit history of :mod:`tests.test_concurrency`
(each revision inserts one row, so a revision run twice shows).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_migrate_alt import Migrate
from flask_migrate_alt.locking import mysql_lock_name

from .conftest import Server, stack_limit, table_names, version_rows
from .test_concurrency import REVISIONS, _audit, _environment, _repository

# How long the slow first revision holds the lock; the servers drop idle
# sessions after IDLE seconds, well within it.
SLOW = 6
IDLE = 2


@pytest.fixture(params=["postgresql", "mysql"])
def lock_server(request: pytest.FixtureRequest) -> Server:
    """The servers whose lock lives in a database session."""
    return request.getfixturevalue(f"{request.param}_server")


def _sleep_sql(backend: str, seconds: float) -> str:
    """A statement that keeps its session busy (not idle) for ``seconds``."""
    if backend == "postgresql":
        return f"SELECT pg_sleep({seconds})"
    if backend == "mysql":
        return f"SELECT SLEEP({seconds})"
    raise AssertionError(backend)


def _slow_first_revision(migrations: Path, marker: Path, *wait: str) -> None:
    """Make r1 touch ``marker`` and then run ``wait`` before changing anything."""
    r1 = migrations / "versions" / "r1_audit.py"
    lines = [f"open({str(marker)!r}, 'w').close()", *wait]
    body = "".join(f"    {line}\n" for line in lines)
    r1.write_text(r1.read_text().replace("def upgrade():\n", "def upgrade():\n" + body))


def _flask(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = {**env, "FLASK_APP": "app.py"}
    for name in ("FLASK_DB_DIRECTORY", "FLASK_DEBUG", "DATABASE_URL"):
        env.pop(name, None)
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "flask"), "db", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(marker: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not marker.exists():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the upgrade ended before r1 started: {out}{err}")
        assert time.monotonic() < deadline, "r1 never started"
        time.sleep(0.05)


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("Error:")]


def _migrated_once(
    first: subprocess.Popen[str], second: subprocess.Popen[str], url: str
) -> None:
    """Both deploys succeed; the second waited and found nothing to do."""
    code1, out1, err1 = _finish(first)
    code2, out2, err2 = _finish(second)
    assert (code1, code2) == (0, 0), err1 + err2
    assert "Nothing to do" in err2
    assert _audit(url) == REVISIONS
    assert version_rows(url) == ["r5"]


@contextmanager
def _admin(url: str) -> Iterator[sa.Connection]:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _idle_timeout_options(backend: str) -> dict[str, object]:
    """Engine options making the server drop a session idle for IDLE seconds."""
    if backend == "postgresql":
        return {"connect_args": {"options": f"-c idle_session_timeout={IDLE}s"}}
    return {"connect_args": {"init_command": f"SET SESSION wait_timeout={IDLE}"}}


# --------------------------------------------------------------------------
# 1. the lock is not lost while the migration runs


def _upgrading_slowly(
    server: Server, tmp_path: Path, options: dict[str, object]
) -> tuple[str, dict[str, str], subprocess.Popen[str]]:
    """Start ``flask db upgrade`` on a new database; return once r1 is running.

    r1 first runs one statement SLOW seconds long, as a long ALTER does.
    Returns the database's URL, the environment and the running process.
    """
    url = server.new_database()
    migrations = _repository(tmp_path, "flask", multidb=False, slow=False)
    marker = tmp_path / "r1-started"
    sleep = f"op.execute({_sleep_sql(server.backend, SLOW)!r})"
    _slow_first_revision(migrations, marker, sleep)
    env = _environment(tmp_path, {"main": url}, migrations)
    env["ENGINE_OPTIONS"] = json.dumps(options)
    process = _flask(env, tmp_path, "upgrade")
    _wait_for(marker, process)
    return url, env, process


def test_idle_session_timeout_does_not_lose_the_lock(
    lock_server: Server, tmp_path: Path
) -> None:
    """A server dropping idle sessions: the second deploy still waits.

    r1 runs a statement longer than the idle timeout, as a long ALTER does;
    the lock must live as long as that migration, and both deploys exit 0.
    """
    url, env, first = _upgrading_slowly(
        lock_server, tmp_path, _idle_timeout_options(lock_server.backend)
    )
    _migrated_once(first, _flask(env, tmp_path, "upgrade"), url)


def _lock_session(backend: str, url: str) -> int:
    """The server session holding the migration lock of ``url``'s database."""
    with _admin(url) as conn:
        if backend == "postgresql":
            pid = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
                    "AND granted AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())"
                )
            ).scalar()
        else:
            name = mysql_lock_name(sa.engine.make_url(url).database, "alembic_version")
            pid = conn.execute(sa.text("SELECT IS_USED_LOCK(:n)"), {"n": name}).scalar()
    assert pid is not None, "nobody holds the migration lock"
    return int(pid)


def _kill(backend: str, url: str, session: int) -> None:
    with _admin(url) as conn:
        if backend == "postgresql":
            conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": session})
        else:
            conn.execute(sa.text(f"KILL {session}"))


def test_lost_lock_stops_the_migration_before_it_commits(
    lock_server: Server, tmp_path: Path
) -> None:
    """A proxy drops the session holding the lock mid-migration.

    The deploy must fail without having committed anything after the loss
    (so another deploy could not have migrated at the same time), and the
    next upgrade then does the whole job once. A deploy that committed must
    never exit 1.
    """
    backend = lock_server.backend
    url, env, first = _upgrading_slowly(lock_server, tmp_path, {})
    _kill(backend, url, _lock_session(backend, url))
    code, out, err = _finish(first)
    # The lock went with the migration's own session: the migration stopped.
    assert code == 1, out + err
    assert len(_error_lines(err)) == 1, err
    assert "Traceback" not in err
    # Nothing committed: no revision, no audit table.
    assert version_rows(url) == []
    assert "audit" not in table_names(url)
    again = _flask(env, tmp_path, "upgrade")
    code, out, err = _finish(again)
    assert code == 0, err
    assert _audit(url) == REVISIONS
    assert version_rows(url) == ["r5"]


# --------------------------------------------------------------------------
# 2. small pools


def test_pool_of_one_connection(server: Server, tmp_path: Path) -> None:
    """``pool_size=1, max_overflow=0``: the lock takes no second pooled connection."""
    url = server.new_database()
    migrations = _repository(tmp_path, "flask", multidb=False, slow=False)
    env = _environment(tmp_path, {"main": url}, migrations)
    # A second checkout would wait pool_timeout seconds, then fail. (The
    # pool class is named because SQLAlchemy 1.4 gives SQLite files none.)
    options = {
        "poolclass": "QueuePool",
        "pool_size": 1,
        "max_overflow": 0,
        "pool_timeout": 10,
    }
    env["ENGINE_OPTIONS"] = json.dumps(options)
    code, out, err = _finish(_flask(env, tmp_path, "upgrade"))
    assert code == 0, err
    assert _audit(url) == REVISIONS
    code, out, err = _finish(_flask(env, tmp_path, "upgrade"))
    assert code == 0, err
    assert "Nothing to do" in err
    code, out, err = _finish(_flask(env, tmp_path, "downgrade", "base"))
    assert code == 0, err
    assert version_rows(url) == []


# --------------------------------------------------------------------------
# 3. SQLite URI filenames


@stack_limit("flask-sqlalchemy-2-sqlite-uri")
def test_sqlite_uri_filename(tmp_path: Path) -> None:
    """``sqlite:///file:/abs/app.db?mode=rwc&uri=true`` locks the real file.

    A deploy naming the database by URI and one naming it by path wait for
    each other, and nothing is left next to the database afterwards.
    """
    data = tmp_path / "data"
    data.mkdir()
    path = data / "app.db"
    by_uri = f"sqlite:///file:{path}?mode=rwc&uri=true"
    by_path = f"sqlite:///{path}"
    migrations = _repository(tmp_path, "flask", multidb=False, slow=False)
    marker = tmp_path / "r1-started"
    _slow_first_revision(migrations, marker, f"import time; time.sleep({SLOW})")
    first = _flask(
        _environment(tmp_path, {"main": by_uri}, migrations), tmp_path, "upgrade"
    )
    _wait_for(marker, first)
    second = _flask(
        _environment(tmp_path, {"main": by_path}, migrations), tmp_path, "upgrade"
    )
    _migrated_once(first, second, by_path)
    assert sorted(p.name for p in data.iterdir()) == ["app.db"]
    assert not (tmp_path / "file:").exists()


# --------------------------------------------------------------------------
# 4. a waiter waits, and reads nothing before it holds the lock


def test_sqlite_waiter_waits_for_a_long_migration(tmp_path: Path) -> None:
    """A second upgrade during a long SQLite migration waits, then has nothing to do.

    The running migration holds SQLite's write lock for longer than the
    driver's 5 s busy timeout; reading the version table before taking the
    migration lock would fail with "database is locked".
    """
    path = tmp_path / "app.db"
    url = f"sqlite:///{path}"
    migrations = _repository(tmp_path, "flask", multidb=False, slow=False)
    marker = tmp_path / "r1-started"
    # r1 writes more than SQLite's page cache holds (which takes its
    # exclusive lock until the commit), then works on for longer than the
    # busy timeout.
    r1 = migrations / "versions" / "r1_audit.py"
    r1.write_text(
        r1.read_text().replace(
            "op.execute(\"INSERT INTO audit (rev) VALUES ('r1')\")",
            "op.execute(\"INSERT INTO audit (rev) VALUES ('r1')\")\n"
            "    op.execute('PRAGMA cache_size = 1')\n"
            "    op.execute('CREATE TABLE filler AS WITH RECURSIVE n(i) AS "
            "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
            "SELECT i, hex(randomblob(200)) AS pad FROM n')\n"
            f"    open({str(marker)!r}, 'w').close()\n"
            f"    import time; time.sleep({SLOW + 2})\n"
            "    op.execute('DROP TABLE filler')",
        )
    )
    env = _environment(tmp_path, {"main": url}, migrations)
    first = _flask(env, tmp_path, "upgrade")
    _wait_for(marker, first)
    _migrated_once(first, _flask(env, tmp_path, "upgrade"), url)


# --------------------------------------------------------------------------
# 5. bad settings


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1"])
def test_bad_lock_timeout_variable_is_refused(
    sqlite_server: Server, tmp_path: Path, value: str
) -> None:
    url = sqlite_server.new_database()
    migrations = _repository(tmp_path, "flask", multidb=False, slow=False)
    env = _environment(tmp_path, {"main": url}, migrations)
    env["FLASK_DB_LOCK_TIMEOUT"] = value
    code, out, err = _finish(_flask(env, tmp_path, "upgrade"))
    assert code == 1
    assert len(_error_lines(err)) == 1, err
    assert "FLASK_DB_LOCK_TIMEOUT" in _error_lines(err)[0]
    assert "Traceback" not in err
    assert version_rows(url) == []
    assert table_names(url) == set()


def test_bad_lock_timeout_variable_refused_by_the_function(
    make_app: Any, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``upgrade()``, ``downgrade()`` and ``stamp()`` refuse it before connecting."""
    import flask_migrate_alt as fma
    from flask_migrate_alt import CommandFailed

    from .test_safety import CREATE_USER, history

    app = make_app(url)
    history(app, (CREATE_USER,))
    monkeypatch.setenv("FLASK_DB_LOCK_TIMEOUT", "nan")
    with app.app_context():
        for command, args in (
            (fma.upgrade, ()),
            (fma.downgrade, ("base",)),
            (fma.stamp, ("head",)),
        ):
            with pytest.raises(CommandFailed) as failed:
                command(None, *args)
            assert "FLASK_DB_LOCK_TIMEOUT" in str(failed.value.message)
    assert version_rows(url) == []
    assert "user" not in table_names(url)


@pytest.mark.parametrize(
    "name", ["lock_timeout", "table_lock_timeout", "statement_timeout"]
)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1, -0.5])
def test_bad_timeout_arguments_are_refused(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        Migrate(**{name: value})
    migrate = Migrate()
    with pytest.raises(ValueError, match=name):
        migrate.init_app(Flask(__name__), **{name: value})


def test_zero_lock_timeout_is_accepted(sqlite_server: Server, tmp_path: Path) -> None:
    """0 means "try once": a valid setting."""
    url = sqlite_server.new_database()
    migrations = _repository(tmp_path, "flask", multidb=False, slow=False)
    env = _environment(tmp_path, {"main": url}, migrations)
    env["FLASK_DB_LOCK_TIMEOUT"] = "0"
    code, out, err = _finish(_flask(env, tmp_path, "upgrade"))
    assert code == 0, err
    assert version_rows(url) == ["r5"]


# --------------------------------------------------------------------------
# async engines hold the lock on their own migration connection


def test_async_engine_waits_for_the_lock(
    lock_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An async engine's migration session takes the lock like a synchronous one."""
    from .test_safety import holding_migration_lock
    from .test_templates import AsyncDB

    url = lock_server.new_database(async_driver=True)
    sync_url = lock_server.url.set(database=sa.engine.make_url(url).database)
    db = AsyncDB({None: url})
    sa.Table("user", db.metadata, sa.Column("id", sa.Integer, primary_key=True))
    app = Flask("asyncapp", root_path=str(tmp_path))
    Migrate(app, db)
    runner = app.test_cli_runner()
    try:
        assert runner.invoke(args=["db", "init", "-t", "aioflask"]).exit_code == 0
        result = runner.invoke(args=["db", "migrate", "-m", "user"])
        assert result.exit_code == 0, result.output
        plain = sync_url.render_as_string(hide_password=False)
        monkeypatch.setenv("FLASK_DB_LOCK_TIMEOUT", "1")
        with holding_migration_lock(lock_server.backend, plain) as holder:
            result = runner.invoke(args=["db", "upgrade"])
        assert result.exit_code == 1, result.output
        assert holder in result.stderr
        assert version_rows(plain) == []
        result = runner.invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert "user" in table_names(plain)
    finally:
        db.dispose()
