"""The Migrate extension: registration cost, app factories, logging, secrets,
and a real ``flask db`` process end to end."""

from __future__ import annotations

import importlib
import io
import logging
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask

import flask_migrate_alt as fma
from flask_migrate_alt import Migrate

from .conftest import (
    POSTGRESQL_DRIVER,
    REPO,
    Server,
    dispose_engines,
    run_flask,
    table_names,
    version_rows,
)


def invoke(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=list(args))


def ok(app: Flask, *args: str) -> Result:
    result = invoke(app, *args)
    assert result.exit_code == 0, result.output
    return result


# --------------------------------------------------------------------------
# registration is cheap

IMPORT_PROBE = textwrap.dedent(
    """
    import sys
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    import flask_migrate_alt
    from flask_migrate_alt import Migrate

    def make(name):
        app = Flask(name)
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
        return app, SQLAlchemy(app)

    app, db = make("direct")
    Migrate(app, db)
    later, later_db = make("factory")
    migrate = Migrate()
    migrate.init_app(later, later_db)
    assert "db" in app.cli.commands and "db" in later.cli.commands

    def alembic_modules():
        return sorted(m for m in sys.modules if m.split(".")[0] == "alembic")

    print("registered:", alembic_modules())
    flask_migrate_alt.Config  # first real use loads Alembic
    print("used:", bool(alembic_modules()))
    """
)


def test_registering_does_not_import_alembic(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["registered: []", "used: True"]


# --------------------------------------------------------------------------
# app factories


def test_init_app_later_with_path_directory(
    bare: Any, sqlite_server: Server, tmp_path: Path
) -> None:
    url = sqlite_server.new_database()
    migrate = Migrate(compare_type=False)
    app, db = bare(url, with_user=True)
    assert "migrate" not in app.extensions
    assert "db" not in app.cli.commands

    repo = tmp_path / "factory_migrations"
    migrate.init_app(app, db, directory=repo, include_schemas=True)
    state = app.extensions["migrate"]
    assert state.directory == str(repo)
    assert state.db is db
    assert state.migrate is migrate
    assert state.configure_args == {
        "compare_type": False,
        "render_as_batch": True,
        "include_schemas": True,
    }
    assert "db" in app.cli.commands

    ok(app, "db", "init")
    assert (repo / "env.py").is_file()
    ok(app, "db", "migrate", "--rev-id", "f1")
    assert (repo / "versions" / "f1_.py").is_file()
    ok(app, "db", "upgrade")
    assert version_rows(url) == ["f1"]
    assert "user" in table_names(url)
    assert not (tmp_path / "migrations").exists()


def test_one_migrate_shared_by_two_apps(
    bare: Any, sqlite_server: Server, tmp_path: Path
) -> None:
    url1 = sqlite_server.new_database()
    url2 = sqlite_server.new_database()
    migrate = Migrate()
    app1, db1 = bare(url1, name="first", with_user=True)
    app2, db2 = bare(url2, name="second")
    migrate.init_app(app1, db1, directory="m1")
    migrate.init_app(app2, db2, directory=tmp_path / "m2")

    assert app1.extensions["migrate"].directory == "m1"
    assert app2.extensions["migrate"].directory == str(tmp_path / "m2")
    assert app1.extensions["migrate"].db is db1
    assert app2.extensions["migrate"].db is db2

    with app1.app_context():
        fma.init()
        fma.migrate(rev_id="one")
        fma.upgrade()
    with app2.app_context():
        fma.init()
        fma.revision(rev_id="two")
        fma.upgrade()

    assert [p.name for p in (tmp_path / "m1" / "versions").glob("*.py")] == ["one_.py"]
    assert [p.name for p in (tmp_path / "m2" / "versions").glob("*.py")] == ["two_.py"]
    assert version_rows(url1) == ["one"]
    assert version_rows(url2) == ["two"]
    assert "user" in table_names(url1)
    assert "user" not in table_names(url2)

    assert ok(app1, "db", "current").stdout.splitlines() == ["one (head)"]
    assert ok(app2, "db", "current").stdout.splitlines() == ["two (head)"]


def test_migrate_without_db(bare: Any, sqlite_server: Server, tmp_path: Path) -> None:
    app, _ = bare(sqlite_server.new_database())
    Migrate(app)
    ok(app, "db", "init")
    ok(app, "db", "revision", "--rev-id", "r1")
    result = invoke(app, "db", "upgrade")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    (error,) = [line for line in lines if line.startswith("Error:")]
    assert "Migrate(app, db)" in error


# --------------------------------------------------------------------------
# logging

LOGGERS = ["", "myapp", "alembic", "sqlalchemy.engine", "flask_migrate_alt"]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    saved = {}
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = (logger.level, list(logger.handlers), logger.propagate)
    yield
    for name, (level, handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.disabled = False


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_commands_leave_app_logging_alone(
    restore_logging: None, bare: Any, sqlite_server: Server
) -> None:
    url = sqlite_server.new_database()
    app, db = bare(url, with_user=True)
    Migrate(app, db)

    # The app's own logging setup, done before any migration command.
    root = logging.getLogger()
    root_handler = ListHandler()
    root.addHandler(root_handler)
    stream = io.StringIO()
    app_handler = logging.StreamHandler(stream)
    app_handler.setLevel(logging.DEBUG)
    myapp = logging.getLogger("myapp")
    myapp.addHandler(app_handler)
    myapp.setLevel(logging.DEBUG)
    myapp.propagate = False
    child = logging.getLogger("myapp.models")  # exists, not configured
    # Importing Alembic adds a NullHandler to the "alembic" logger; import it
    # before the snapshot so that only what the commands do is compared, even
    # when this test runs first.
    importlib.import_module("alembic")
    root_handlers = list(root.handlers)
    root_level = root.level
    alembic_handlers = list(logging.getLogger("alembic").handlers)

    ok(app, "db", "init")
    ok(app, "db", "migrate", "--rev-id", "l1")
    ok(app, "db", "upgrade")
    with app.app_context():
        fma.current()

    assert not myapp.disabled
    assert not child.disabled
    assert myapp.handlers == [app_handler]
    assert myapp.level == logging.DEBUG
    assert app_handler.level == logging.DEBUG
    assert myapp.propagate is False
    assert root.handlers == root_handlers
    assert root.level == root_level
    # No handler of ours was added: the records go to the app's handlers.
    assert logging.getLogger("alembic").handlers == alembic_handlers
    messages = [r.getMessage() for r in root_handler.records]
    assert "Running upgrade  -> l1, empty message" in messages
    myapp.info("still logging")
    assert "still logging" in stream.getvalue()


def test_app_logger_levels_are_kept(
    restore_logging: None, bare: Any, sqlite_server: Server
) -> None:
    app, db = bare(sqlite_server.new_database())
    Migrate(app, db)
    handler = ListHandler()
    logging.getLogger().addHandler(handler)
    logging.getLogger("alembic").setLevel(logging.WARNING)

    ok(app, "db", "init")
    ok(app, "db", "revision", "--rev-id", "q1")
    ok(app, "db", "upgrade")

    assert logging.getLogger("alembic").level == logging.WARNING
    assert not [r for r in handler.records if r.name.startswith("alembic")]


# --------------------------------------------------------------------------
# the database password is never shown


def _survives_rendering(password: str) -> bool:
    url = sa.engine.URL.create("postgresql", username="u", password=password)
    rendered = url.render_as_string(hide_password=False)
    return sa.engine.make_url(rendered).password == password


# SQLAlchemy 1.4 and 2.0.0 do not escape '%' when they render a URL, so a
# password with one cannot be passed as a URL string there.
SECRET = next(p for p in ("p%40ss@w%rd:x", "p@ss@w/rd:x") if _survives_rendering(p))


@pytest.fixture
def secret_app(postgresql_server: Server, make_app: Any) -> Iterator[tuple[Flask, str]]:
    """An app on a PostgreSQL database owned by a role with SECRET as password."""
    assert postgresql_server.url is not None
    role = f"fma_role_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgresql_server.url, isolation_level="AUTOCOMMIT")
    # sa.text() would read ':x' as a bind parameter, and the driver formats
    # '%' even without parameters, hence exec_driver_sql and '%%'.
    password = SECRET.replace("%", "%%")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    app = None
    try:
        database = sa.engine.make_url(postgresql_server.new_database()).database
        with admin.connect() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE {database} OWNER TO {role}")
        url = postgresql_server.url.set(
            username=role, password=SECRET, database=database
        ).render_as_string(hide_password=False)
        assert quote(SECRET, safe="") in url
        app = make_app(url)
        yield app, url
    finally:
        if app is not None:
            dispose_engines(app, app.extensions["test_db"])
        postgresql_server.drop_all()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        admin.dispose()


def _assert_no_secret(text: str) -> None:
    for form in (SECRET, quote(SECRET, safe=""), quote(SECRET)):
        assert form not in text


def test_password_never_printed(
    secret_app: tuple[Flask, str], bare: Any, postgresql_server: Server
) -> None:
    app, url = secret_app
    outputs: list[str] = []

    def cli(*args: str, exit_code: int = 0) -> Result:
        result = invoke(app, *args)
        outputs.append(result.output)
        assert result.exit_code == exit_code, result.output
        return result

    cli("db", "init")
    cli("db", "migrate", "-m", "first", "--rev-id", "s1")
    cli("db", "upgrade")
    assert version_rows(url) == ["s1"]
    assert "user" in table_names(url)
    assert cli("db", "current").stdout.splitlines() == ["s1 (head)"]
    # Verbose 'current' names the database, with the password masked.
    verbose = cli("db", "current", "-v").output
    assert f"Current revision(s) for {POSTGRESQL_DRIVER}://fma_role_" in verbose
    assert ":***@" in verbose
    assert "CREATE TABLE" in cli("db", "upgrade", "--sql").output
    assert "DROP TABLE" in cli("db", "downgrade", "--sql").output
    cli("db", "history", "-i")
    cli("db", "check")
    cli("db", "upgrade", "bogus", exit_code=1)
    cli("db", "downgrade")
    assert version_rows(url) == []

    # A connection failure names the server, not the password.
    assert postgresql_server.url is not None
    missing = sa.engine.make_url(url).set(database="fma_missing_database")
    broken, broken_db = bare(missing.render_as_string(hide_password=False))
    Migrate(broken, broken_db)
    result = invoke(broken, "db", "upgrade")
    outputs.append(result.output)
    assert result.exit_code == 1
    assert "Error: database error:" in result.output
    assert "fma_missing_database" in result.output

    for text in outputs:
        _assert_no_secret(text)


# --------------------------------------------------------------------------
# a real 'flask' process


def test_flask_db_end_to_end(tmp_path: Path) -> None:
    shutil.copy(REPO / "examples" / "todo" / "app.py", tmp_path / "app.py")
    database = tmp_path / "instance" / "todo.db"

    proc = run_flask(tmp_path, "db", "init")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "migrations" / "env.py").is_file()
    assert "Generating" in proc.stdout

    proc = run_flask(tmp_path, "db", "migrate", "-m", "x")
    assert proc.returncode == 0, proc.stderr
    (revision,) = (tmp_path / "migrations" / "versions").glob("*_x.py")
    assert "op.create_table('todo'" in revision.read_text()
    assert "Detected added table 'todo'" in proc.stderr
    rev_id = revision.name.split("_")[0]

    proc = run_flask(tmp_path, "db", "upgrade")
    assert proc.returncode == 0, proc.stderr
    assert f"INFO  [alembic.runtime.migration] Running upgrade  -> {rev_id}, x" in (
        proc.stderr.splitlines()
    )
    assert "Running upgrade" not in proc.stdout
    assert "todo" in table_names(f"sqlite:///{database}")
    assert version_rows(f"sqlite:///{database}") == [rev_id]

    proc = run_flask(tmp_path, "db", "current")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{rev_id} (head)\n"

    proc = run_flask(tmp_path, "db", "upgrade", "bogus")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    errors = [line for line in lines if line.startswith("Error:")]
    assert errors == ["Error: Can't locate revision identified by 'bogus'"]
    assert lines[-1] == errors[0]
    # Anything before it is Alembic's ordinary log output.
    assert all(line.startswith("INFO  [") for line in lines[:-1]), lines
    assert version_rows(f"sqlite:///{database}") == [rev_id]
