"""Shared fixtures: apps, and throwaway databases on every server we support.

Server URLs come from the environment:

* ``TEST_POSTGRESQL_URL``, e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``
* ``TEST_MYSQL_URL``, e.g. ``mysql+pymysql://root@127.0.0.1:3306/test``

Without a URL the tests for that server are skipped with a reason saying so.
With ``CI`` set, a missing or unreachable server fails the tests instead:
CI must never pass by skipping.

Each test gets databases of its own (``fma_<random>``), dropped afterwards.
"""

from __future__ import annotations

import importlib.metadata
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import click.testing
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy.engine import URL, make_url

REPO = Path(__file__).resolve().parent.parent

SERVER_ENV = {"postgresql": "TEST_POSTGRESQL_URL", "mysql": "TEST_MYSQL_URL"}
BACKENDS = ["sqlite", "postgresql", "mysql"]

#: The PostgreSQL driver of TEST_POSTGRESQL_URL (default psycopg 3): with
#: SQLAlchemy 1.4, which has no psycopg 3 dialect, CI uses psycopg2.
POSTGRESQL_DRIVER = make_url(
    os.environ.get("TEST_POSTGRESQL_URL") or "postgresql+psycopg://"
).drivername


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2])


CLICK_BEFORE_8_2 = _release(importlib.metadata.version("click")) < (8, 2)


def _installed(distribution: str) -> tuple[int, ...] | None:
    try:
        return _release(importlib.metadata.version(distribution))
    except importlib.metadata.PackageNotFoundError:
        return None


def _speedups_tested_here() -> bool:
    from flask_migrate_alt.speedups import versions

    return versions._tested_releases()


#: The few tests that cannot apply to every supported stack, by key: whether
#: the installed releases rule the test out, and why. A test opts in with
#: ``@stack_limit(key)``; nothing else may skip in CI, and CI names the keys
#: it expects for each run in ``CI_STACK_LIMITS`` (see ``.ci/run``), so a
#: limit that starts to apply where it should not fails the run too.
STACK_LIMITS: dict[str, tuple[bool, str]] = {
    "flask-sqlalchemy-lite": (
        _installed("flask-sqlalchemy-lite") is None,
        "Flask-SQLAlchemy-Lite is not installed: it needs Flask 3.0 and "
        "SQLAlchemy 2.0.31, newer than this stack",
    ),
    "speedups": (
        not _speedups_tested_here(),
        "the speed-ups are off outside the Alembic and SQLAlchemy releases "
        "they were tested on (flask_migrate_alt/speedups/versions.py, TESTED); "
        "plain Alembic answers there, as the rest of the suite checks",
    ),
    "legacy-connection": (
        (_installed("sqlalchemy") or (0,)) < (2, 0),
        "SQLAlchemy 1.4's legacy Connection, which Flask-SQLAlchemy 2.x "
        "makes, has no commit() and tracks a COMMIT sent by a migration "
        "differently; this test states SQLAlchemy 2's outcome",
    ),
    "flask-sqlalchemy-2-sqlite-uri": (
        (_installed("flask-sqlalchemy") or (0,)) < (3, 0),
        "Flask-SQLAlchemy 2.x puts every relative SQLite path under the app's "
        "root_path, 'file:' URI filenames included, so such a URL cannot "
        "name a database there",
    ),
    "mypy": (
        (_installed("flask") or (0,)) < (3, 0)
        or (_installed("sqlalchemy") or (0,)) < (2, 0),
        "mypy checks the package's types against Flask 3 and SQLAlchemy 2, "
        "whose type hints the code is written for; older releases ship "
        "looser or no hints",
    ),
}


def stack_limit(key: str) -> pytest.MarkDecorator:
    """Skip the test where the installed releases rule it out (:data:`STACK_LIMITS`)."""
    applies, why = STACK_LIMITS[key]
    return pytest.mark.skipif(applies, reason=f"stack limit {key}: {why}")


def _allowed_stack_limits() -> set[str]:
    return {
        key.strip()
        for key in os.environ.get("CI_STACK_LIMITS", "").split(",")
        if key.strip()
    }


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"{reason} (CI must run every database test)")
    pytest.skip(reason)


@dataclass
class Server:
    """A database server on which tests create and drop their own databases."""

    backend: str
    url: URL | None = None  # admin URL; None for SQLite
    tmp_path: Path | None = None
    created: list[str] = field(default_factory=list)

    def new_database(self, async_driver: bool = False) -> str:
        """Create an empty database and return its URL as a string."""
        name = f"fma_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            assert self.tmp_path is not None
            path = self.tmp_path / f"{name}.db"
            driver = "sqlite+aiosqlite" if async_driver else "sqlite"
            return f"{driver}:///{path}"
        assert self.url is not None
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        engine.dispose()
        self.created.append(name)
        url = self.url.set(database=name)
        if async_driver:
            url = url.set(
                drivername={
                    "postgresql": "postgresql+asyncpg",
                    "mysql": "mysql+aiomysql",
                }[self.backend]
            )
        return url.render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self.created:
            return
        assert self.url is not None
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for name in self.created:
                if self.backend == "postgresql":
                    conn.execute(
                        sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                    )
                else:
                    conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        engine.dispose()
        self.created.clear()


def _server_url(backend: str) -> URL:
    variable = SERVER_ENV[backend]
    raw = os.environ.get(variable)
    if not raw:
        _unavailable(f"{variable} is not set: skipping {backend} tests")
    assert raw is not None
    url = make_url(raw)
    try:
        engine = sa.create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
    except sa.exc.SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        _unavailable(f"{backend} server at {variable} does not answer: {first}")
    return url


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """Each supported database: SQLite files, PostgreSQL and MariaDB/MySQL."""
    backend: str = request.param
    if backend == "sqlite":
        yield Server("sqlite", tmp_path=tmp_path)
        return
    srv = Server(backend, url=_server_url(backend))
    try:
        yield srv
    finally:
        srv.drop_all()


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Server:
    return Server("sqlite", tmp_path=tmp_path)


@pytest.fixture
def postgresql_server() -> Iterator[Server]:
    srv = Server("postgresql", url=_server_url("postgresql"))
    try:
        yield srv
    finally:
        srv.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def transactional_server(request: pytest.FixtureRequest) -> Server:
    """The databases whose DDL is part of the migration's transaction."""
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture
def mysql_server() -> Iterator[Server]:
    srv = Server("mysql", url=_server_url("mysql"))
    try:
        yield srv
    finally:
        srv.drop_all()


@pytest.fixture(autouse=True)
def _chdir_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Commands resolve 'migrations' and write --sql files relative to the
    # working directory; every test gets its own.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLASK_DB_DIRECTORY", raising=False)


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    # FLASK_DEBUG makes catch_errors print tracebacks too.
    monkeypatch.delenv("FLASK_DEBUG", raising=False)


@pytest.fixture(autouse=True)
def _forget_revision_modules() -> Iterator[None]:
    # Alembic imports env.py and revision files as modules; make sure one
    # test's files are never seen by the next.
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("_alembic") or name.endswith("_py"):
            sys.modules.pop(name, None)


AppFactory = Callable[..., Flask]


@pytest.fixture
def url(sqlite_server: Server) -> str:
    """A fresh SQLite database."""
    return sqlite_server.new_database()


@pytest.fixture
def app(make_app: Callable[..., Flask], url: str) -> Flask:
    """An app with the default models on a fresh SQLite database."""
    return make_app(url)


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[AppFactory]:
    """Build a Flask app with Flask-SQLAlchemy and Migrate.

    ``make_app(url, binds={...}, models=callable, **migrate_kwargs)``:
    ``models(db)`` declares the models (default: one ``user`` table, plus a
    ``session`` table on each bind).
    """
    from flask_sqlalchemy import SQLAlchemy

    from flask_migrate_alt import Migrate

    engines: list[Any] = []

    def factory(
        url: str,
        binds: dict[str, str] | None = None,
        models: Callable[[Any], None] | None = None,
        **migrate_kwargs: Any,
    ) -> Flask:
        app = Flask("testapp", root_path=str(tmp_path))
        app.config["SQLALCHEMY_DATABASE_URI"] = url
        if binds:
            app.config["SQLALCHEMY_BINDS"] = binds
        db = SQLAlchemy(app)
        (models or default_models)(db, list(binds or ()))
        Migrate(app, db, **migrate_kwargs)
        app.extensions["test_db"] = db
        engines.append((app, db))
        return app

    yield factory
    for app, db in engines:
        dispose_engines(app, db)


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Any]:
    """Build ``(app, db)`` pairs without Migrate; engines are disposed after.

    ``bare(url, name="bareapp", with_user=False)``: ``with_user`` declares a
    ``user`` table.
    """
    from flask_sqlalchemy import SQLAlchemy

    made: list[tuple[Flask, Any]] = []

    def build(url: str, name: str = "bareapp", with_user: bool = False) -> Any:
        app = Flask(name, root_path=str(tmp_path))
        app.config["SQLALCHEMY_DATABASE_URI"] = url
        db = SQLAlchemy(app)
        if with_user:
            db.Table("user", sa.Column("id", sa.Integer, primary_key=True))
        made.append((app, db))
        return app, db

    yield build
    for app, db in made:
        dispose_engines(app, db)


def fsa_engines(app: Flask, db: Any) -> dict[str | None, sa.engine.Engine]:
    """The Flask-SQLAlchemy engines of ``app`` by bind key (``None``: default).

    Flask-SQLAlchemy 3 has ``db.engines``; 2.x makes each with
    ``db.get_engine(bind=key)``.
    """
    with app.app_context():
        if hasattr(db, "engines"):
            return dict(db.engines)
        keys = [None, *(app.config.get("SQLALCHEMY_BINDS") or ())]
        return {key: db.get_engine(bind=key) for key in keys}


class InUse:
    """How many connections of an engine are checked out, whatever its pool.

    ``Pool.checkedout()`` exists on queue pools only; SQLAlchemy 1.4 gives
    SQLite files a ``NullPool``. Counts from the moment it is made.
    """

    def __init__(self, engine: Any) -> None:
        self.count = 0
        sa.event.listen(engine, "checkout", self._checkout)
        sa.event.listen(engine, "checkin", self._checkin)

    def _checkout(self, *args: Any) -> None:
        self.count += 1

    def _checkin(self, *args: Any) -> None:
        self.count -= 1

    def __call__(self) -> int:
        return self.count


def fsa_table(
    db: Any, name: str, *columns: Any, bind_key: str | None = None
) -> sa.Table:
    """``db.Table`` on a bind: Flask-SQLAlchemy 3 takes ``bind_key``, 2.x ``info``."""
    if hasattr(db, "metadatas"):
        return db.Table(name, *columns, bind_key=bind_key)  # type: ignore[no-any-return]
    return db.Table(name, *columns, info={"bind_key": bind_key})  # type: ignore[no-any-return]


def dispose_engines(app: Flask, db: Any) -> None:
    """Close the pooled connections of every Flask-SQLAlchemy engine of ``app``."""
    for engine in fsa_engines(app, db).values():
        engine.dispose()


@pytest.fixture
def editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An $EDITOR that appends a marker line to the file it is given.

    Returns the marker.
    """
    script = tmp_path / "fake-editor.sh"
    script.write_text('#!/bin/sh\necho "# edited-marker" >> "$1"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("EDITOR", str(script))
    return "# edited-marker"


def no_models(db: Any, bind_keys: list[str]) -> None:
    """Models for an app that declares no tables at all."""


def default_models(
    db: Any, bind_keys: list[str], name_length: int = 128, email: bool = False
) -> None:
    """One ``user`` table on the default database and a ``session_<key>`` per bind.

    ``email`` adds an ``email`` column to ``user``, as a model change.
    """

    class User(db.Model):  # type: ignore[name-defined]
        __tablename__ = "user"
        id = db.Column(db.Integer, primary_key=True)
        name = db.Column(db.String(name_length))
        if email:
            email_address = db.Column("email", db.String(120))

    for key in bind_keys:
        type(
            f"Session_{key}",
            (db.Model,),
            {
                "__tablename__": f"session_{key}",
                "__bind_key__": key,
                "id": db.Column(db.Integer, primary_key=True),
                "token": db.Column(db.String(64)),
            },
        )


def add_table_ops(path: Path | str, table: str) -> None:
    """Make the empty revision at ``path`` create ``table`` (dropped on downgrade)."""
    path = Path(path)
    body = path.read_text()
    new = body.replace(
        "def upgrade() -> None:\n    pass",
        f"def upgrade() -> None:\n    op.create_table({table!r}, "
        "sa.Column('id', sa.Integer, primary_key=True))",
    ).replace(
        "def downgrade() -> None:\n    pass",
        f"def downgrade() -> None:\n    op.drop_table({table!r})",
    )
    assert "op.create_table" in new and "op.drop_table" in new, "template changed"
    path.write_text(new)


def table_names(url: str) -> set[str]:
    """Return the table names in the database at ``url``."""
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def version_rows(url: str, table: str = "alembic_version") -> list[str]:
    """Return the revision ids in the version table (empty if it is missing)."""
    engine = sa.create_engine(url)
    try:
        if table not in sa.inspect(engine).get_table_names():
            return []
        with engine.connect() as conn:
            return sorted(
                row[0]
                for row in conn.execute(sa.text(f"SELECT version_num FROM {table}"))
            )
    finally:
        engine.dispose()


class _SeparateStderrRunner(FlaskCliRunner):
    """click 8.1's test runner, made to report like click 8.2's.

    Before 8.2, ``result.stderr`` exists only with ``mix_stderr=False``, and
    ``result.output`` is then stdout alone; from 8.2 ``result.output`` holds
    both streams and ``result.stderr`` stderr alone. The tests are written
    for the latter (stdout first, then stderr: the streams are not
    interleaved here).
    """

    def __init__(self, app: Flask, **kwargs: Any) -> None:
        kwargs.setdefault("mix_stderr", False)
        super().__init__(app, **kwargs)

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        result = super().invoke(*args, **kwargs)
        return _BothStreamsResult(
            runner=result.runner,
            stdout_bytes=result.stdout_bytes,
            stderr_bytes=result.stderr_bytes,
            return_value=result.return_value,
            exit_code=result.exit_code,
            exception=result.exception,
            exc_info=result.exc_info,
        )


class _BothStreamsResult(click.testing.Result):
    @property
    def output(self) -> str:
        return self.stdout + (self.stderr if self.stderr_bytes is not None else "")


def pytest_configure(config: pytest.Config) -> None:
    if CLICK_BEFORE_8_2:
        # Every test app, however it is made, gets the runner above.
        Flask.test_cli_runner_class = _SeparateStderrRunner


# In CI a skipped test is a test that did not run: fail the session instead,
# unless the skip is one of the stack limits CI declared for this run.
_skipped_in_ci: list[str] = []
_stack_limited: dict[str, list[str]] = {}


def _stack_limit_of(report: pytest.TestReport) -> str | None:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    for key in STACK_LIMITS:
        if reason.startswith(f"stack limit {key}: "):
            return key
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail") and _in_ci():
        key = _stack_limit_of(report)
        if key is not None and key in _allowed_stack_limits():
            _stack_limited.setdefault(key, []).append(report.nodeid)
        else:
            _skipped_in_ci.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for key, nodeids in _stack_limited.items():
        terminalreporter.write_line(
            f"CI: {len(nodeids)} test(s) skipped by the declared stack limit "
            f"{key!r}: {STACK_LIMITS[key][1]}"
        )
    unused = _allowed_stack_limits() - set(_stack_limited)
    if _in_ci() and unused:
        terminalreporter.write_line(
            f"CI declared stack limits that skipped nothing: {sorted(unused)}; "
            "failing the run (remove them from CI_STACK_LIMITS for this stack)",
            red=True,
        )
    if _skipped_in_ci:
        terminalreporter.write_line(
            f"CI is set and {len(_skipped_in_ci)} test(s) were skipped; "
            "failing the run:",
            red=True,
        )
        for nodeid in _skipped_in_ci:
            terminalreporter.write_line(f"  {nodeid}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    unused = _allowed_stack_limits() - set(_stack_limited)
    failed = _skipped_in_ci or (_in_ci() and unused)
    if failed and session.exitstatus == 0:
        session.exitstatus = 1


def run_flask(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``flask`` command on ``cwd/app.py`` in a real process.

    Variables that would change what a test sees (a directory, tracebacks,
    another database) are removed from the environment.
    """
    env = dict(os.environ)
    for name in ("FLASK_DB_DIRECTORY", "FLASK_DEBUG", "DATABASE_URL"):
        env.pop(name, None)
    env["FLASK_APP"] = "app.py"
    return subprocess.run(
        [str(Path(sys.executable).parent / "flask"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )
