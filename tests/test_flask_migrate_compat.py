"""A migrations/ folder made by Flask-Migrate keeps working unchanged.

The repositories in ``tests/fixtures`` have the layout Flask-Migrate 2.x-4.x
generates, and their env.py and script.py.mako read the app exactly where
Flask-Migrate's do (``current_app.extensions["migrate"]`` and its ``db``,
``configure_args``, ``SQLALCHEMY_BINDS``). A project that changes its import
from ``flask_migrate`` to ``flask_migrate_alt`` keeps such a folder as it is;
these tests run upgrade, check, migrate and downgrade on copies of them, on
every database, through the Python functions and through ``flask db``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

import flask_migrate_alt
from flask_migrate_alt import CommandFailed

from .conftest import AppFactory, Server, run_flask, table_names, version_rows

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# The fixture env.py files, like Flask-Migrate's, try db.get_engine() before
# db.engine / db.engines; Flask-SQLAlchemy 3.1 deprecates get_engine() with a
# warning, which existing repositories trigger on every command. Only that
# warning is ignored: it comes from the user's env.py, not from the package.
ignore_get_engine_warning = pytest.mark.filterwarnings(
    "ignore:'get_engine' is deprecated:DeprecationWarning"
)

SINGLE_HEAD = "a84c7e6b2f13"
MULTIDB_HEAD = "c61f3e8a7d42"

Run = Callable[..., str]


# --------------------------------------------------------------------------
# fixtures


def _is_pytest_handler(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith("_pytest")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # The fixture env.py files call logging.config.fileConfig(), as
    # Flask-Migrate's do: it replaces the root logger's handlers (with one
    # bound to the sys.stderr of that moment, a CliRunner stream that is
    # closed afterwards), sets levels and disables every other logger.
    # Put everything back so that later tests see the logging they expect.
    # pytest attaches its own capture handlers per test phase; those are
    # left as pytest set them for the current phase.
    manager = logging.Logger.manager
    root = logging.getLogger()
    saved = {
        name: (logger.level, logger.disabled, logger.propagate, list(logger.handlers))
        for name, logger in manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    root_saved = (root.level, list(root.handlers))
    yield

    def restore(logger: logging.Logger, handlers: list[logging.Handler]) -> None:
        current = list(logger.handlers)
        keep = [h for h in handlers if not _is_pytest_handler(h)]
        keep += [h for h in current if _is_pytest_handler(h)]
        for handler in current:
            if handler not in keep:
                handler.close()
        logger.handlers[:] = keep

    root.setLevel(root_saved[0])
    restore(root, root_saved[1])
    for name, logger in list(manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        if name in saved:
            level, disabled, propagate, handlers = saved[name]
        else:
            level, disabled, propagate = logging.NOTSET, False, True
            handlers = [
                h for h in logger.handlers if isinstance(h, logging.NullHandler)
            ]
        logger.setLevel(level)
        logger.disabled = disabled
        logger.propagate = propagate
        restore(logger, handlers)


@pytest.fixture(params=["function", "cli"])
def run(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> Run:
    """Return ``run(app, command, cli_args, expect_exit=0, **kwargs) -> output``.

    With the "function" parameter it calls ``flask_migrate_alt.<command>(**kwargs)``
    in an app context, as a deploy script would; with "cli" it invokes
    ``flask db <command> <cli_args>``. The output is stdout and stderr.
    """
    via: str = request.param

    def run_command(
        app: Flask,
        command: str,
        cli_args: list[str] | None = None,
        expect_exit: int = 0,
        **kwargs: Any,
    ) -> str:
        if via == "cli":
            result = app.test_cli_runner().invoke(
                args=["db", command, *(cli_args or [])]
            )
            assert result.exit_code == expect_exit, result.output
            assert "Traceback" not in result.output
            return result.output
        function = getattr(flask_migrate_alt, command)
        capsys.readouterr()
        with app.app_context():
            if expect_exit:
                with pytest.raises(CommandFailed) as info:
                    function(**kwargs)
                assert info.value.code == expect_exit
            else:
                function(**kwargs)
        captured = capsys.readouterr()
        return captured.out + captured.err

    return run_command


def copy_fixture(name: str, tmp_path: Path) -> Path:
    """Copy a fixture repository to ``tmp_path/migrations``, the default directory."""
    target = tmp_path / "migrations"
    shutil.copytree(
        FIXTURES / name, target, ignore=shutil.ignore_patterns("__pycache__")
    )
    return target


def files_of(directory: Path) -> dict[str, bytes]:
    """Return the contents of every file under ``directory`` but bytecode caches."""
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def assert_only_added(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    """Assert no file of ``before`` changed or went away; return the new ones."""
    for name, content in before.items():
        assert name in after, f"{name} was removed"
        assert after[name] == content, f"{name} was modified"
    return sorted(set(after) - set(before))


def columns(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {column["name"] for column in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def function_body(source: str, name: str) -> str:
    """Return the text of ``def <name>():`` up to the next top-level def."""
    start = source.index(f"\ndef {name}(")
    end = source.find("\ndef ", start + 1)
    return source[start : end if end != -1 else len(source)]


def add_column(app: Flask, table: str, column: sa.Column[Any]) -> None:
    """Change a model: add ``column`` to ``table``, as editing the class would."""
    db = app.extensions["test_db"]
    # Flask-SQLAlchemy 3 has a MetaData per bind; 2.x one for all.
    for metadata in getattr(db, "metadatas", {None: db.metadata}).values():
        if table in metadata.tables:
            metadata.tables[table].append_column(column)
            return
    raise AssertionError(f"no table {table!r} in the models")


# --------------------------------------------------------------------------
# single database


def single_models(db: Any, bind_keys: list[str]) -> None:
    """The models at the fixture's head revision."""

    class User(db.Model):  # type: ignore[name-defined]
        __tablename__ = "user"
        id = db.Column(db.Integer, primary_key=True)
        username = db.Column(db.String(64), nullable=False)
        email = db.Column(db.String(120), index=True)


@ignore_get_engine_warning
def test_single_database(
    server: Server, make_app: AppFactory, run: Run, tmp_path: Path
) -> None:
    migrations = copy_fixture("flask_migrate_single", tmp_path)
    before = files_of(migrations)
    url = server.new_database()
    app = make_app(url, models=single_models)

    output = run(app, "upgrade")
    assert "Running upgrade  -> 5d3a1f2c9e01" in output
    assert f"Running upgrade 5d3a1f2c9e01 -> {SINGLE_HEAD}" in output
    assert table_names(url) == {"user", "alembic_version"}
    assert columns(url, "user") == {"id", "username", "email"}
    assert version_rows(url) == [SINGLE_HEAD]

    output = run(app, "check")
    assert "No new upgrade operations detected" in output

    add_column(app, "user", sa.Column("bio", sa.String(200)))
    output = run(app, "check", expect_exit=1)
    assert "New upgrade operations detected" in output

    output = run(app, "migrate", ["-m", "add bio"], message="add bio")
    assert "Generating" in output
    (new_file,) = assert_only_added(before, files_of(migrations))
    assert new_file.startswith("versions/") and new_file.endswith("_add_bio.py")
    source = (migrations / new_file).read_text()
    # Written from the fixture's own script.py.mako, not the package's.
    assert "# Where this revision sits in the history (read by Alembic)." in source
    assert f"down_revision = '{SINGLE_HEAD}'" in source
    assert "-> None" not in source
    assert "batch_op.add_column(sa.Column('bio'" in function_body(source, "upgrade")
    assert "batch_op.drop_column('bio')" in function_body(source, "downgrade")
    new_rev = new_file.removeprefix("versions/").split("_")[0]

    output = run(app, "upgrade")
    assert f"Running upgrade {SINGLE_HEAD} -> {new_rev}" in output
    assert "bio" in columns(url, "user")
    assert version_rows(url) == [new_rev]
    run(app, "check")

    output = run(app, "downgrade", ["base"], revision="base")
    assert "Running downgrade 5d3a1f2c9e01 -> " in output
    assert table_names(url) == {"alembic_version"}
    assert version_rows(url) == []

    assert assert_only_added(before, files_of(migrations)) == [new_file]


@ignore_get_engine_warning
def test_single_database_offline(
    server: Server, make_app: AppFactory, tmp_path: Path
) -> None:
    migrations = copy_fixture("flask_migrate_single", tmp_path)
    before = files_of(migrations)
    url = server.new_database()
    app = make_app(url, models=single_models)

    result = app.test_cli_runner().invoke(args=["db", "upgrade", "--sql"])
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE" in result.stdout
    assert f"'{SINGLE_HEAD}'" in result.stdout
    assert table_names(url) == set()
    assert assert_only_added(before, files_of(migrations)) == []


# --------------------------------------------------------------------------
# several databases (SQLALCHEMY_BINDS)


def multidb_models(db: Any, bind_keys: list[str]) -> None:
    """The models at the fixture's head revision: ``user`` and, on "logs", ``event``."""

    class User(db.Model):  # type: ignore[name-defined]
        __tablename__ = "user"
        id = db.Column(db.Integer, primary_key=True)
        username = db.Column(db.String(64), nullable=False)
        email = db.Column(db.String(120))

    class Event(db.Model):  # type: ignore[name-defined]
        __tablename__ = "event"
        __bind_key__ = "logs"
        id = db.Column(db.Integer, primary_key=True)
        message = db.Column(db.String(200), nullable=False)
        level = db.Column(db.String(16))


@ignore_get_engine_warning
def test_multiple_databases(
    server: Server, make_app: AppFactory, run: Run, tmp_path: Path
) -> None:
    migrations = copy_fixture("flask_migrate_multidb", tmp_path)
    before = files_of(migrations)
    url = server.new_database()
    logs_url = server.new_database()
    app = make_app(url, binds={"logs": logs_url}, models=multidb_models)

    output = run(app, "upgrade")
    # Logged by the fixture's env.py, once per database.
    assert "Migrating database <default>" in output
    assert "Migrating database logs" in output
    assert f"Running upgrade 0b7e4c2d9a15 -> {MULTIDB_HEAD}" in output
    assert table_names(url) == {"user", "alembic_version"}
    assert table_names(logs_url) == {"event", "alembic_version"}
    assert columns(url, "user") == {"id", "username", "email"}
    assert columns(logs_url, "event") == {"id", "message", "level"}
    assert version_rows(url) == [MULTIDB_HEAD]
    assert version_rows(logs_url) == [MULTIDB_HEAD]

    output = run(app, "check")
    assert "No new upgrade operations detected" in output

    add_column(app, "user", sa.Column("bio", sa.String(200)))
    add_column(app, "event", sa.Column("source", sa.String(32)))
    output = run(app, "check", expect_exit=1)
    assert "New upgrade operations detected" in output

    run(app, "migrate", ["-m", "add bio and source"], message="add bio and source")
    (new_file,) = assert_only_added(before, files_of(migrations))
    assert new_file.endswith("_add_bio_and_source.py")
    source = (migrations / new_file).read_text()
    assert "# Where this revision sits in the history (read by Alembic)." in source
    assert "def upgrade(engine_name):" in source
    assert f"down_revision = '{MULTIDB_HEAD}'" in source
    assert "'bio'" in function_body(source, "upgrade_")
    assert "'source'" not in function_body(source, "upgrade_")
    assert "'source'" in function_body(source, "upgrade_logs")
    assert "'bio'" not in function_body(source, "upgrade_logs")
    assert "drop_column('bio')" in function_body(source, "downgrade_")
    assert "drop_column('source')" in function_body(source, "downgrade_logs")
    new_rev = new_file.removeprefix("versions/").split("_")[0]

    output = run(app, "upgrade")
    assert f"Running upgrade {MULTIDB_HEAD} -> {new_rev}" in output
    assert "bio" in columns(url, "user")
    assert "source" in columns(logs_url, "event")
    assert version_rows(url) == [new_rev]
    assert version_rows(logs_url) == [new_rev]
    run(app, "check")

    run(app, "downgrade", ["base"], revision="base")
    assert table_names(url) == {"alembic_version"}
    assert table_names(logs_url) == {"alembic_version"}
    assert version_rows(url) == []
    assert version_rows(logs_url) == []

    assert assert_only_added(before, files_of(migrations)) == [new_file]


@ignore_get_engine_warning
def test_multiple_databases_offline(
    server: Server, make_app: AppFactory, tmp_path: Path
) -> None:
    migrations = copy_fixture("flask_migrate_multidb", tmp_path)
    before = files_of(migrations)
    url = server.new_database()
    logs_url = server.new_database()
    app = make_app(url, binds={"logs": logs_url}, models=multidb_models)

    result = app.test_cli_runner().invoke(args=["db", "upgrade", "--sql"])
    assert result.exit_code == 0, result.output
    # Flask-Migrate's multidb env.py writes "<bind>.sql", ".sql" for the default.
    default_sql = (tmp_path / ".sql").read_text()
    logs_sql = (tmp_path / "logs.sql").read_text()
    assert "user" in default_sql and "event" not in default_sql
    assert "event" in logs_sql and "user" not in logs_sql
    assert f"'{MULTIDB_HEAD}'" in default_sql and f"'{MULTIDB_HEAD}'" in logs_sql
    assert table_names(url) == set()
    assert table_names(logs_url) == set()
    assert assert_only_added(before, files_of(migrations)) == []


# --------------------------------------------------------------------------
# env.py files as real applications have them


def env_variant(migrations: Path, old: str, new: str) -> None:
    """Edit the copied fixture's env.py, making sure the edit applied."""
    env_py = migrations / "env.py"
    source = env_py.read_text()
    assert source.count(old) == 1, f"{old!r} not found once in env.py"
    env_py.write_text(source.replace(old, new))


FIXTURE_CONFIGURE = (
    "connection=connection, target_metadata=models_metadata(), **options"
)

# The Alembic cookbook's filter, passed by name next to configure_args: a
# table the app keeps out of its migrations (made by hand, below).
OWN_INCLUDE_OBJECT = """
def include_object(obj, name, type_, reflected, compare_to):
    return not (type_ == "table" and name == "legacy_audit")


def run_online():"""


def with_own_include_object(migrations: Path) -> None:
    env_variant(migrations, "\ndef run_online():", OWN_INCLUDE_OBJECT)
    env_variant(
        migrations,
        FIXTURE_CONFIGURE,
        "connection=connection, target_metadata=models_metadata(),\n"
        "            include_object=include_object, **options",
    )


def without_configure_args(migrations: Path) -> None:
    """The env.py of a Flask-Migrate 2.x repository: no ``configure_args``."""
    env_variant(
        migrations,
        FIXTURE_CONFIGURE,
        "connection=connection, target_metadata=models_metadata(),\n"
        "            process_revision_directives=drop_empty_script",
    )


def make_legacy_table(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE legacy_audit (id INTEGER)"))
    finally:
        engine.dispose()


@ignore_get_engine_warning
@pytest.mark.parametrize(
    "migrate_kwargs",
    [{}, {"exclude_tables": ["user"]}],
    ids=["defaults", "exclude_tables"],
)
def test_env_py_passing_its_own_include_object(
    server: Server,
    make_app: AppFactory,
    run: Run,
    tmp_path: Path,
    migrate_kwargs: dict[str, Any],
) -> None:
    """``include_object=`` next to ``**configure_args`` works, and decides.

    The package's own exclusion hooks (system tables by default, and
    ``exclude_tables``) never collide with a keyword the env.py passes
    itself; where the env.py passes a hook, that hook decides, as it does
    with Flask-Migrate.
    """
    migrations = copy_fixture("flask_migrate_single", tmp_path)
    with_own_include_object(migrations)
    url = server.new_database()
    make_legacy_table(url)
    app = make_app(url, models=single_models, **migrate_kwargs)

    output = run(app, "upgrade")
    assert f"Running upgrade 5d3a1f2c9e01 -> {SINGLE_HEAD}" in output
    assert version_rows(url) == [SINGLE_HEAD]
    # The env.py's hook keeps the hand-made table out of the comparison.
    output = run(app, "check")
    assert "No new upgrade operations detected" in output
    add_column(app, "user", sa.Column("bio", sa.String(200)))
    output = run(app, "check", expect_exit=1)
    assert "add_column" in output and "legacy_audit" not in output
    run(app, "migrate", ["-m", "add bio"], message="add bio")
    (new_file,) = (migrations / "versions").glob("*_add_bio.py")
    source = new_file.read_text()
    assert "'bio'" in function_body(source, "upgrade")
    assert "legacy_audit" not in source
    run(app, "upgrade")
    run(app, "downgrade", ["base"], revision="base")
    assert table_names(url) == {"alembic_version", "legacy_audit"}


def wider_username_models(db: Any, bind_keys: list[str]) -> None:
    """The head's models with one column type changed (64 -> 100 characters)."""

    class User(db.Model):  # type: ignore[name-defined]
        __tablename__ = "user"
        id = db.Column(db.Integer, primary_key=True)
        username = db.Column(db.String(100), nullable=False)
        email = db.Column(db.String(120), index=True)


@ignore_get_engine_warning
@pytest.mark.parametrize("own", [False, True], ids=["fixture", "own_compare_type"])
def test_env_py_passing_a_key_migrate_keeps_in_configure_args(
    server: Server, make_app: AppFactory, run: Run, tmp_path: Path, own: bool
) -> None:
    """``compare_type=False`` by name next to ``**configure_args``, where
    ``Migrate`` keeps ``compare_type=True``: the env.py's value decides."""
    migrations = copy_fixture("flask_migrate_single", tmp_path)
    if own:
        env_variant(
            migrations,
            FIXTURE_CONFIGURE,
            "connection=connection, target_metadata=models_metadata(),\n"
            "            compare_type=False, **options",
        )
    url = server.new_database()
    app = make_app(url, models=wider_username_models)
    with app.app_context():
        flask_migrate_alt.upgrade()
    if own:
        output = run(app, "check")
        assert "No new upgrade operations detected" in output
    else:
        output = run(app, "check", expect_exit=1)
        assert "modify_type" in output


@ignore_get_engine_warning
def test_env_py_without_configure_args_reports_what_ran(
    server: Server, make_app: AppFactory, tmp_path: Path, capsys: Any
) -> None:
    """A Flask-Migrate 2.x env.py: the results come from the version table."""
    migrations = copy_fixture("flask_migrate_single", tmp_path)
    without_configure_args(migrations)
    url = server.new_database()
    app = make_app(url, models=single_models)
    both = ["5d3a1f2c9e01", SINGLE_HEAD]

    with app.app_context():
        assert flask_migrate_alt.upgrade() == both
        assert version_rows(url) == [SINGLE_HEAD]
        assert flask_migrate_alt.upgrade() == []
        assert flask_migrate_alt.downgrade() == [SINGLE_HEAD]
        assert version_rows(url) == ["5d3a1f2c9e01"]
        assert flask_migrate_alt.upgrade(revision="+1") == [SINGLE_HEAD]
        assert flask_migrate_alt.downgrade(revision="base") == both[::-1]
        assert version_rows(url) == []
        assert flask_migrate_alt.upgrade(sql=True) == both
    assert "Nothing to do" not in capsys.readouterr().out

    runner = app.test_cli_runner()
    for args, ran in (
        (["upgrade"], True),
        (["upgrade"], False),
        (["downgrade", "base"], True),
        (["downgrade", "base"], False),
    ):
        result = runner.invoke(args=["db", *args])
        assert result.exit_code == 0, result.output
        assert "Nothing to do" not in result.stdout
        assert ("Nothing to do" in result.stderr) is not ran, (args, result.stderr)
    assert version_rows(url) == []


@ignore_get_engine_warning
def test_no_op_upgrade_prints_nothing_on_stdout(
    make_app: AppFactory, url: str, tmp_path: Path, capsys: Any
) -> None:
    """A deploy script or app factory calling ``upgrade()`` prints nothing.

    ``flask db upgrade`` says "Nothing to do" on stderr; stdout carries only
    what Flask-Migrate prints there.
    """
    copy_fixture("flask_migrate_single", tmp_path)
    app = make_app(url, models=single_models)
    with app.app_context():
        flask_migrate_alt.upgrade()
        capsys.readouterr()
        assert flask_migrate_alt.upgrade() == []
    assert capsys.readouterr().out == ""

    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "Nothing to do: the database is already at head." in result.stderr


FACTORY_APP = """
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_alt import Migrate, upgrade

db = SQLAlchemy()


class User(db.Model):
    __tablename__ = "user"
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(64), nullable=False)
    email = db.Column(db.String(120), index=True)


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = {url!r}
    db.init_app(app)
    Migrate(app, db)
    if {upgrade_on_start}:
        with app.app_context():
            upgrade()  # migrate on boot
    return app
"""


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_app_that_upgrades_in_its_factory(server: Server, tmp_path: Path) -> None:
    """Migrate-on-boot with the cookbook env.py: every command starts, and
    ``flask db upgrade --sql > file.sql`` writes nothing but the SQL."""
    migrations = copy_fixture("flask_migrate_single", tmp_path)
    with_own_include_object(migrations)
    url = server.new_database()
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copytree(migrations, plain / "migrations")
    (plain / "app.py").write_text(FACTORY_APP.format(url=url, upgrade_on_start=False))
    (tmp_path / "app.py").write_text(FACTORY_APP.format(url=url, upgrade_on_start=True))

    current = run_flask(tmp_path, "db", "current")
    assert current.returncode == 0, current.stderr
    assert "Traceback" not in current.stderr
    assert version_rows(url) == [SINGLE_HEAD]
    assert current.stdout.split() == [SINGLE_HEAD, "(head)"]

    booted = run_flask(tmp_path, "db", "upgrade", "--sql")
    reference = run_flask(plain, "db", "upgrade", "--sql")
    assert booted.returncode == 0 == reference.returncode, booted.stderr
    assert "CREATE TABLE" in booted.stdout
    assert booted.stdout == reference.stdout


# Moves through a history with a branch point, a merge, an independent
# branch and a dependency across branches.
MOVES = [
    ("upgrade", "r2"),
    ("upgrade", "r3a"),
    ("upgrade", "heads"),
    ("downgrade", "r3b"),
    ("downgrade", "side@base"),
    ("upgrade", "s2"),
    ("downgrade", "r2"),
    ("upgrade", "r5"),
    ("upgrade", "heads"),
    ("downgrade", "base"),
    ("upgrade", "heads"),
]


@ignore_get_engine_warning
def test_what_ran_from_version_tables_is_what_alembic_reports(
    server: Server, make_app: AppFactory, tmp_path: Path
) -> None:
    """With and without ``configure_args`` in env.py, the same answers.

    The reference repository's env.py passes ``configure_args`` on, so
    Alembic reports each step; the other's does not, so the answer comes
    from the version table before and after. Each move is made on both.
    """
    apps = {}
    for name in ("reported", "read"):
        folder = tmp_path / name
        migrations = copy_fixture("flask_migrate_single", folder)
        for old in (migrations / "versions").glob("*.py"):
            old.unlink()
        if name == "read":
            without_configure_args(migrations)
        apps[name] = make_app(server.new_database(), models=single_models)
        with apps[name].app_context():
            directory = str(migrations)
            history = [
                {"rev_id": "r1", "head": "base"},
                {"rev_id": "r2", "head": "r1"},
                {"rev_id": "r3a", "head": "r2", "splice": True},
                {"rev_id": "r3b", "head": "r2", "splice": True},
                {"rev_id": "s1", "head": "base", "branch_label": "side"},
                {"rev_id": "s2", "head": "s1", "depends_on": "r3b"},
            ]
            for options in history:
                flask_migrate_alt.revision(directory, message="step", **options)
            flask_migrate_alt.merge(directory, ["r3a", "r3b"], rev_id="r4")
            flask_migrate_alt.revision(
                directory, message="step", rev_id="r5", head="r4"
            )
    for command, target in MOVES:
        answers = {}
        for name, app in apps.items():
            with app.app_context():
                function = getattr(flask_migrate_alt, command)
                answers[name] = function(str(tmp_path / name / "migrations"), target)
        assert answers["read"] == answers["reported"], (command, target)
        assert answers["reported"], (command, target)
