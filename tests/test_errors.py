"""Error handling beyond the bad-input table of test_bad_input.py.

The catalogue of user mistakes (one line, exit status 1, nothing changed)
is the table in test_bad_input.py; these are the cases that do not fit it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import flask_migrate_alt as fma

from .conftest import Server, table_names, version_rows


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


def test_missing_down_revision_named_from_a_worker_thread(
    make_app: Callable[..., Flask], url: str
) -> None:
    """Off the main thread the warning filters are left alone (they are not
    thread-safe), and the error still names the revision and its file."""
    import threading

    app = make_app(url)
    with app.app_context():
        fma.init()
    path = Path("migrations", "versions", "orphan_lost.py").absolute()
    path.write_text(
        "revision = 'orphan'\ndown_revision = 'nowhere'\n"
        "branch_labels = None\ndepends_on = None\n\n"
        "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
    )
    failures: list[BaseException] = []

    def run() -> None:
        with app.app_context():
            try:
                fma.upgrade()
            except BaseException as exc:  # noqa: BLE001 - examined below
                failures.append(exc)

    filters = list(warnings.filters)
    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert warnings.filters == filters
    [failure] = failures
    assert isinstance(failure, fma.CommandFailed)
    assert "revision orphan names down_revision 'nowhere'" in failure.message
    assert str(path) in failure.message


def test_commands_off_the_main_thread_leave_warning_filters_alone(
    make_app: Callable[..., Flask], url: str
) -> None:
    """While a worker thread migrates, the process's warning filters (shared
    by every thread) stay as they were."""
    import builtins
    import threading

    app = make_app(url)
    with app.app_context():
        fma.init()
    Path("migrations", "versions", "r1_wait.py").write_text(
        "import builtins\n"
        "revision = 'r1'\ndown_revision = None\n"
        "branch_labels = None\ndepends_on = None\n\n"
        "def upgrade():\n"
        "    builtins.fma_running.set()\n"
        "    builtins.fma_release.wait(10)\n\n"
        "def downgrade():\n    pass\n"
    )
    running, release = threading.Event(), threading.Event()
    builtins.fma_running, builtins.fma_release = running, release  # type: ignore[attr-defined]
    applied: list[list[str]] = []

    def run() -> None:
        with app.app_context():
            applied.append(fma.upgrade())

    filters = list(warnings.filters)
    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert running.wait(10)
        during = list(warnings.filters)
    finally:
        release.set()
        worker.join()
        del builtins.fma_running, builtins.fma_release  # type: ignore[attr-defined]
    assert during == filters
    assert applied == [["r1"]]


def test_missing_parent_of_a_merge_written_over_several_lines(
    make_app: Callable[..., Flask], url: str
) -> None:
    """The revision that names the missing down_revision is found however its
    identifiers are written (here a merge tuple over several lines)."""
    app = make_app(url)
    with app.app_context():
        fma.init()
    Path("migrations", "versions", "base_r.py").write_text(
        "revision = 'root'\ndown_revision = None\n"
        "branch_labels = None\ndepends_on = None\n\n"
        "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
    )
    merge = Path("migrations", "versions", "merge_m.py").absolute()
    merge.write_text(
        "revision: str = 'merged'\n"
        "down_revision: tuple[str, ...] = (\n    'root',\n    'gone',\n)\n"
        "branch_labels = None\ndepends_on = None\n\n"
        "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
    )
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stderr.strip() == (
        "Error: revision merged names down_revision 'gone', which no revision "
        f"file defines; fix down_revision in {merge} or restore the missing revision"
    )
