"""User mistakes end with one readable line, exit status 1, and nothing changed."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

import flask_migrate_alt as fma

from .conftest import Server, table_names, version_rows


def snapshot(folder: Path) -> dict[str, str]:
    """Digest of every file below ``folder``, to prove nothing was touched."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture
def migrated(
    make_app: Callable[..., Flask], sqlite_server: Server, tmp_path: Path
) -> Any:
    """An app whose database is at head of a one-revision history."""
    url = sqlite_server.new_database()
    app = make_app(url)
    with app.app_context():
        fma.init()
        fma.migrate(message="users", rev_id="rev1")
        fma.upgrade()
    return app, url


def _break_revision(tmp_path: Path, text: str) -> Path:
    path = next((tmp_path / "migrations" / "versions").glob("rev1_*.py"))
    path.write_text(path.read_text() + text)
    return path


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("\ndef broken(:\n", "syntax error in {path}, line"),
        (
            "\nimport module_that_does_not_exist\n",
            "No module named 'module_that_does_not_exist' (in {path}, line",
        ),
    ],
    ids=["syntax-error", "import-error"],
)
def test_broken_revision_file_names_file_and_line(
    migrated: Any,
    tmp_path: Path,
    damage: str,
    expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, url = migrated
    path = _break_revision(tmp_path, damage)
    before_files = snapshot(tmp_path / "migrations")
    message = expected.format(path=path)

    with app.app_context(), pytest.raises(fma.CommandFailed) as info:
        fma.downgrade(revision="base")
    assert info.value.code == 1
    assert message in info.value.message
    err = capsys.readouterr().err
    assert err.count("Error: ") == 1 and message in err
    assert "Traceback" not in err

    result = app.test_cli_runner().invoke(args=["db", "downgrade", "base"])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output

    assert snapshot(tmp_path / "migrations") == before_files
    assert version_rows(url) == ["rev1"]


def test_unreachable_database_is_one_line_without_password(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    url = "postgresql+psycopg://someone:Secr3tPassw0rd@127.0.0.1:1/nothing"
    app = make_app(url)
    with app.app_context():
        fma.init()
    before = snapshot(tmp_path / "migrations")
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: database error:")
    assert "Secr3tPassw0rd" not in result.output
    assert isinstance(result.exception, fma.CommandFailed)
    assert isinstance(result.exception.__cause__, sa.exc.OperationalError)
    assert snapshot(tmp_path / "migrations") == before


def test_merge_without_revisions_needs_two_heads(migrated: Any, tmp_path: Path) -> None:
    app, _ = migrated
    before = snapshot(tmp_path / "migrations")
    result = app.test_cli_runner().invoke(args=["db", "merge", "-m", "nothing"])
    assert result.exit_code == 1
    assert "Error: nothing to merge: the revision history has a single head, rev1" in (
        result.output
    )
    assert snapshot(tmp_path / "migrations") == before


def test_env_py_changes_to_configure_args_do_not_leak(migrated: Any) -> None:
    """An env.py that writes into configure_args affects only its own command."""
    app, _ = migrated
    state = app.extensions["migrate"]
    before = dict(state.configure_args)
    env = Path("migrations/env.py")
    env.write_text(
        "from flask import current_app\n"
        "current_app.extensions['migrate'].configure_args['leaked'] = True\n"
        + env.read_text()
    )
    with app.app_context():
        fma.current()
    assert state.configure_args == before


def test_directory_that_is_a_file(
    make_app: Callable[..., Flask], sqlite_server: Server, tmp_path: Path
) -> None:
    app = make_app(sqlite_server.new_database())
    (tmp_path / "afile").write_text("not a folder")
    result = app.test_cli_runner().invoke(args=["db", "init", "-d", "afile/migrations"])
    assert result.exit_code == 1
    assert result.stderr == "Error: Not a directory: afile/migrations\n"
    assert (tmp_path / "afile").read_text() == "not a folder"


def test_bind_key_that_cannot_name_a_function(
    make_app: Callable[..., Flask], sqlite_server: Server, tmp_path: Path
) -> None:
    app = make_app(
        sqlite_server.new_database(), binds={"my-logs": sqlite_server.new_database()}
    )
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "init", "--multidb"]).exit_code == 0
    result = runner.invoke(args=["db", "migrate", "-m", "first"])
    assert result.exit_code == 1
    assert "bind key 'my-logs'" in result.output and "rename it" in result.output
    assert not list((tmp_path / "migrations" / "versions").glob("*.py"))


def test_async_engine_inside_running_event_loop(tmp_path: Path) -> None:
    import asyncio

    from .test_templates import AsyncDB

    app = Flask("asyncapp", root_path=str(tmp_path))
    db = AsyncDB({None: f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"})
    fma.Migrate(app, db)
    with app.app_context():
        fma.init()

        async def deploy() -> None:
            with pytest.raises(fma.CommandFailed) as info:
                fma.upgrade()
            assert "asyncio.to_thread" in info.value.message
            # The advice works: from a worker thread the upgrade runs.
            await asyncio.to_thread(fma.upgrade)

        asyncio.run(deploy())
    db.dispose()
    assert version_rows(f"sqlite:///{tmp_path / 'a.db'}") == []
    assert "alembic_version" in table_names(f"sqlite:///{tmp_path / 'a.db'}")


def test_own_messages_shown_when_alembic_ini_does_not_name_our_logger(
    migrated: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A repository made by Flask-Migrate has no [logger_flask_migrate_alt]."""
    import logging

    app, _ = migrated
    ini = tmp_path / "migrations" / "alembic.ini"
    ini.write_text(
        ini.read_text().replace("qualname = flask_migrate_alt", "qualname =")
    )
    logger = logging.getLogger("flask_migrate_alt")
    saved = logger.level, logger.handlers[:], logger.propagate
    logger.setLevel(logging.NOTSET)
    logger.handlers.clear()
    logger.propagate = True
    try:
        with app.app_context():
            assert fma.migrate(message="nothing") is None
    finally:
        logger.setLevel(saved[0])
        logger.handlers[:] = saved[1]
        logger.propagate = saved[2]
    assert "No changes in schema detected." in caplog.text
