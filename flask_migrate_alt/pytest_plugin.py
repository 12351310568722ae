"""pytest plugin: built-in tests for an app's migrations, and database fixtures.

Installed with the package through the ``pytest11`` entry point. The
fixtures (``migrated_db``, ``migrator``, ``migrations_app``) are there
whenever the package is installed and cost nothing until a test asks for
them. The built-in tests only run when enabled, with ``--flask-migrations``
on the command line or ``flask_migrations = true`` in the pytest
configuration; see the "Testing migrations" page of the documentation.

Every database these tests and fixtures use is a new one made on the
server of the app's configured database (see :mod:`flask_migrate_alt.testing`);
the configured databases themselves are never written to.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .state import app_state

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory
    from flask import Flask
    from sqlalchemy.engine import URL

    from .testing import DatabaseCopies, MigratedDatabases, Migrator


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("flask-migrations", "flask_migrate_alt migration tests")
    group.addoption(
        "--flask-migrations",
        action="store_true",
        default=None,
        help="Run the built-in tests of the app's migrations.",
    )
    group.addoption(
        "--flask-migrations-app",
        default=None,
        metavar="MODULE:APP",
        help="The app or app factory to test, as for 'flask --app' "
        "(default: the 'app' fixture).",
    )
    parser.addini(
        "flask_migrations",
        "Run the built-in migration tests.",
        type="bool",
        default=False,
    )
    parser.addini(
        "flask_migrations_app",
        "The app or app factory to test, as for 'flask --app'.",
        default="",
    )
    parser.addini(
        "flask_migrations_directory",
        "The migration repository, relative to the rootdir (default: 'migrations').",
        default="",
    )
    parser.addini(
        "flask_migrations_tests_path",
        "The file the built-in tests are reported under "
        "(default: tests/conftest.py, else conftest.py).",
        default="",
    )
    parser.addini(
        "flask_migrations_heads",
        "How many heads the history is meant to have (default: 1).",
        default="1",
    )
    parser.addini(
        "flask_migrations_min_revision",
        "Only test downgrades of this revision and those after it.",
        default="",
    )
    parser.addini(
        "flask_migrations_skip",
        "Revisions whose downgrade is not tested (one per line).",
        type="linelist",
        default=[],
    )


def _enabled(config: pytest.Config) -> bool:
    flag = config.getoption("flask_migrations")
    return bool(flag if flag is not None else config.getini("flask_migrations"))


def _app_spec(config: pytest.Config) -> str:
    return str(
        config.getoption("flask_migrations_app")
        or config.getini("flask_migrations_app")
    ).strip()


def _load_app(spec: str) -> Flask:
    """Find the app the way ``flask --app`` does (factories are called)."""
    from flask.cli import NoAppException, locate_app, prepare_import

    module, _, name = spec.partition(":")
    try:
        return locate_app(prepare_import(module), name or None)
    except NoAppException as exc:
        raise pytest.UsageError(f"flask_migrations_app = {spec!r}: {exc}") from None


def _tests_path(config: pytest.Config) -> Path:
    configured = str(config.getini("flask_migrations_tests_path")).strip()
    root = Path(config.rootpath)
    if configured:
        return (root / configured).resolve()
    for candidate in (root / "tests" / "conftest.py", root / "conftest.py"):
        if candidate.is_file():
            return candidate.resolve()
    return (root / "conftest.py").resolve()


def _directory(config: pytest.Config) -> str | None:
    """The repository named in the configuration, else ``None`` (the app's)."""
    configured = str(config.getini("flask_migrations_directory")).strip()
    if configured:
        return str(Path(config.rootpath) / configured)
    return None


def _app_directory(config: pytest.Config, app: Flask) -> str | None:
    """The repository the fixtures use: the one the built-in tests read.

    The configured ``flask_migrations_directory``; else the app's own
    directory, which ``Migrate`` resolves against the working directory, so
    a relative one that is not found there is looked up in the rootdir
    (pytest run from inside ``tests/``).
    """
    configured = _directory(config)
    if configured is not None:
        return configured
    own = app_state(app).directory
    if own is None or os.path.isabs(own) or os.path.isdir(own):
        return None
    in_root = Path(config.rootpath) / own
    return str(in_root) if in_root.is_dir() else None


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture
def migrations_app(request: pytest.FixtureRequest) -> Flask:
    """The app whose migrations are tested.

    ``--flask-migrations-app`` / ``flask_migrations_app`` if set, else the
    project's own ``app`` fixture.
    """
    spec = _app_spec(request.config)
    if spec:
        try:
            return _load_app(spec)
        except pytest.UsageError as exc:
            message = str(exc)
        # Outside the except block, so the report is the one line.
        pytest.fail(message, pytrace=False)
    try:
        app: Flask = request.getfixturevalue("app")
        return app
    except pytest.FixtureLookupError:
        pass
    pytest.fail(
        "flask_migrate_alt needs the app: define an 'app' fixture in a "
        "conftest.py, or set flask_migrations_app = 'package.module:create_app' "
        "in the pytest configuration",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def _flask_migrations_templates(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MigratedDatabases]:
    from .testing import MigratedDatabases

    templates = MigratedDatabases(tmp_path_factory.mktemp("flask-migrations"))
    yield templates
    templates.close()


@dataclass(frozen=True)
class TestDatabases:
    """What :func:`migrated_db` yields: the databases the app now uses."""

    __test__ = False  # not a test class, despite the name

    #: The URL of each database by bind key (``None``: the default database).
    urls: dict[str | None, URL]

    @property
    def url(self) -> URL:
        """The URL of the default database."""
        return self.urls[None]


@pytest.fixture
def migrated_db(
    request: pytest.FixtureRequest,
    migrations_app: Flask,
    _flask_migrations_templates: MigratedDatabases,
) -> Iterator[TestDatabases]:
    """Databases at the heads of the history, new for each test.

    The history is replayed once per test session (and again if the
    revision files change); each test then gets a copy. The app's engines
    point at the copies for the duration of the test.
    """
    from .testing import use_databases

    templates = _flask_migrations_templates
    directory = _app_directory(request.config, migrations_app)
    urls = _quietly(templates.copy, migrations_app, directory)
    try:
        with use_databases(migrations_app, urls):
            yield TestDatabases(urls)
    finally:
        templates.drop(migrations_app, urls)


@pytest.fixture
def migrator(
    request: pytest.FixtureRequest, migrations_app: Flask, tmp_path: Path
) -> Iterator[Migrator]:
    """A :class:`~flask_migrate_alt.testing.Migrator` on empty databases.

    For testing data migrations: upgrade to a revision, insert rows, upgrade
    to the next one and look at what it did.
    """
    from .testing import Migrator

    class TestMigrator(Migrator):
        __test__ = False

        def upgrade(self, revision: str = "heads") -> list[str]:
            return _quietly(super().upgrade, revision)  # type: ignore[no-any-return]

        def downgrade(self, revision: str = "-1") -> list[str]:
            return _quietly(super().downgrade, revision)  # type: ignore[no-any-return]

    runner = TestMigrator(
        migrations_app, _app_directory(request.config, migrations_app), tmp_path
    )
    with _one_line_failures():
        runner.__enter__()
    try:
        yield runner
    finally:
        runner.__exit__(None, None, None)


def _quietly(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn``; turn a failure the user can fix into a one-line test failure."""
    with _one_line_failures():
        return fn(*args)


@contextmanager
def _one_line_failures(prefix: str = "") -> Iterator[None]:
    """Report failed commands, missing files and database errors in one line.

    The same failures the ``flask db`` commands report as an ``Error:``
    line: a traceback through this plugin would say nothing more.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from .errors import CommandFailed, describe

    try:
        yield
        return
    except CommandFailed as exc:
        message = exc.message
    except (RuntimeError, OSError, SQLAlchemyError) as exc:
        message = describe(exc)
    # Outside the except block, so the report is the one line, not the chain.
    pytest.fail(prefix + message, pytrace=False)


# --------------------------------------------------------------------------
# the built-in tests


def pytest_collect_file(
    file_path: Path, parent: pytest.Collector
) -> pytest.Collector | None:
    config = parent.config
    if not _enabled(config) or file_path.resolve() != _tests_path(config):
        return None
    return MigrationTests.from_parent(parent, path=file_path)


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if not _enabled(config):
        return
    path = _tests_path(config)
    if not path.is_file() and not config.getoption("collectonly"):
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                f"--flask-migrations: the built-in tests are reported under {path}, "
                "which does not exist; create it or set flask_migrations_tests_path"
            ),
            stacklevel=2,
        )


@dataclass
class _History:
    """The revisions of the repository, oldest first."""

    directory: str
    revisions: list[Script]
    heads: tuple[str, ...]
    expected_heads: int
    #: Each revision's parents and dependencies, by revision id.
    parents: dict[str, tuple[str, ...]]

    def downgrade_tested(self, config: pytest.Config) -> list[Script]:
        minimum = str(config.getini("flask_migrations_min_revision")).strip()
        if not minimum:
            return self.revisions
        ids = [script.revision for script in self.revisions]
        matches = [rev for rev in ids if rev.startswith(minimum)]
        if len(matches) != 1:
            raise pytest.UsageError(
                f"flask_migrations_min_revision = {minimum!r} matches "
                f"{len(matches)} revisions of the history; give a revision id"
            )
        newer = _descendants(self.revisions, self.parents, matches[0])
        return [script for script in self.revisions if script.revision in newer]


def _descendants(
    revisions: list[Script], parents: dict[str, tuple[str, ...]], root: str
) -> set[str]:
    found = {root}
    for script in revisions:  # oldest first, so parents come before children
        if any(parent in found for parent in parents[script.revision]):
            found.add(script.revision)
    return found


def _read_history(config: pytest.Config) -> _History:
    """Read the revision files at collection time (no database needed).

    Through the same Config and ScriptDirectory builder as the commands, so
    that the plugin sees exactly the revisions ``flask db heads`` sees
    (branch folders, ``version_locations``, the app's settings).
    """
    from .config import app_config, build_config, script_directory

    spec = _app_spec(config)
    directory = _directory(config)
    app = _load_app(spec) if spec else None
    if directory is None and app is not None:
        directory = _app_directory(config, app) or os.path.abspath(
            app_state(app).directory
        )
    if directory is None:
        directory = str(Path(config.rootpath) / "migrations")
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"no migration repository at {directory}: set flask_migrations_directory "
            "(relative to the rootdir) or flask_migrations_app"
        )
    raw = str(config.getini("flask_migrations_heads")).strip() or "1"
    try:
        expected = int(raw)
    except ValueError:
        raise pytest.UsageError(
            f"flask_migrations_heads must be a number, not {raw!r}"
        ) from None
    with app.app_context() if app is not None else nullcontext():
        script = script_directory(
            app_config(directory) if app is not None else build_config(directory)
        )
        revisions = list(reversed(list(script.walk_revisions())))
        parents = {sc.revision: _resolved_parents(script, sc) for sc in revisions}
    return _History(directory, revisions, tuple(script.get_heads()), expected, parents)


def _resolved_parents(script: ScriptDirectory, sc: Script) -> tuple[str, ...]:
    """The revisions ``sc`` comes after: its parents, and what it depends on.

    ``depends_on`` may name a branch label or a revision prefix; resolved
    through the public ``get_revision`` as Alembic resolves it.
    """
    from alembic.util import to_tuple

    found = list(to_tuple(sc.down_revision, default=()))
    for dependency in to_tuple(sc.dependencies, default=()):
        target = script.get_revision(dependency)
        if target is not None:
            found.append(target.revision)
    return tuple(found)


class MigrationTests(pytest.File):
    """The built-in tests, reported under the configured conftest.py."""

    def collect(self) -> Iterator[pytest.Item]:
        config = self.config
        try:
            history = _read_history(config)
            tested = history.downgrade_tested(config)
        except Exception as exc:  # noqa: BLE001 - reported as a failing test
            message = f"cannot read the migration history: {exc}"

            def test_migration_history() -> None:
                pytest.fail(message, pytrace=False)

            yield self._item("test_migration_history", test_migration_history)
            return
        walker = _Walker(history)
        config.add_cleanup(walker.close)
        yield self._item("test_single_head", walker.single_head)
        yield self._item("test_upgrade_stepwise", walker.upgrade_stepwise)
        yield self._item("test_models_match_database", walker.models_match)
        skip = {
            rev.strip() for rev in config.getini("flask_migrations_skip") if rev.strip()
        }
        for script in tested:
            rev = script.revision
            marks = []
            if any(rev.startswith(s) for s in skip):
                marks.append(
                    pytest.mark.skip(reason=f"{rev} is in flask_migrations_skip")
                )
            yield self._item(
                f"test_downgrade_leaves_no_trace[{rev}]",
                walker.bound(walker.no_trace, script),
                marks,
            )
            yield self._item(
                f"test_up_down_up[{rev}]",
                walker.bound(walker.up_down_up, script),
                marks,
            )

    def _item(
        self, name: str, fn: Callable[..., None], marks: list[Any] | None = None
    ) -> pytest.Item:
        item = _MigrationItem.from_parent(self, name=name, callobj=fn)
        for mark in marks or []:
            item.add_marker(mark)
        return item


class _MigrationItem(pytest.Function):
    """A built-in test; reported by its name, not by where its code lives."""

    def reportinfo(self) -> tuple[Any, int | None, str]:
        # Line 0: pytest needs a number to report skips against.
        return self.path, 0, self.name


def _describe(script: Script) -> str:
    return f"revision {script.revision} ({script.path})"


class _Walker:
    """Walks the history on throwaway databases shared by the built-in tests.

    Each per-revision test starts from the database state just before its
    revision; consecutive tests leave the databases where the next one needs
    them, so a linear history is walked once instead of replayed per test.
    When the state is not the expected one (a test failed, or was deselected)
    the databases are made again from empty.
    """

    def __init__(self, history: _History) -> None:
        self.history = history
        self.copies: dict[str | None, DatabaseCopies] = {}
        self.urls: dict[str | None, URL] = {}
        self.dirty = False

    def bound(self, method: Callable[..., None], script: Script) -> Callable[..., None]:
        def test(migrations_app: Flask, _flask_migrations_walker_dir: Path) -> None:
            method(migrations_app, _flask_migrations_walker_dir, script)

        return test

    # -- the tests

    def single_head(self) -> None:
        expected = self.history.expected_heads
        heads = self.history.heads
        if len(heads) != expected:
            pytest.fail(
                f"the history has {len(heads)} heads ({', '.join(heads) or 'none'}) "
                f"but {expected} expected: merge them with 'flask db merge', or set "
                f"flask_migrations_heads = {len(heads)} if that is intended",
                pytrace=False,
            )

    def upgrade_stepwise(
        self, migrations_app: Flask, _flask_migrations_walker_dir: Path
    ) -> None:
        with self.session(migrations_app, _flask_migrations_walker_dir):
            self.reset()
            for script in self.history.revisions:
                self.run("upgrade", script.revision, script)

    def models_match(
        self, migrations_app: Flask, _flask_migrations_walker_dir: Path
    ) -> None:
        from .inspection import compare_metadata
        from .migration_status import describe_difference

        with self.session(migrations_app, _flask_migrations_walker_dir):
            self.ensure_at(set(self.history.heads))
            with migrations_app.app_context():
                found = compare_metadata(self.history.directory)
            per_db = found if isinstance(found, dict) else {None: found}
            lines = [
                f"  {'' if key is None else f'[{key}] '}{line}"
                for key, diffs in per_db.items()
                for diff in diffs
                for line in describe_difference(diff)
            ]
            if lines:
                pytest.fail(
                    "after upgrading to the heads, the models differ from the "
                    "database (run 'flask db migrate' to write a revision):\n"
                    + "\n".join(lines),
                    pytrace=False,
                )

    def no_trace(self, app: Flask, workdir: Path, script: Script) -> None:
        with self.session(app, workdir):
            self.ensure_at(set(self.history.parents[script.revision]))
            before = self.snapshot()
            self.run("upgrade", script.revision, script)
            self.run("downgrade", self.down_target(script), script)
            after = self.snapshot()
            if before != after:
                from .testing import describe_difference

                pytest.fail(
                    f"downgrading {_describe(script)} does not give back the "
                    "schema it was upgraded from:\n"
                    + describe_difference(before, after),
                    pytrace=False,
                )

    def up_down_up(self, app: Flask, workdir: Path, script: Script) -> None:
        with self.session(app, workdir):
            self.ensure_at(set(self.history.parents[script.revision]))
            self.run("upgrade", script.revision, script)
            self.run("downgrade", self.down_target(script), script)
            self.run("upgrade", script.revision, script)

    # -- helpers

    def down_target(self, script: Script) -> str:
        parents = self.history.parents[script.revision]
        if not parents:
            return "base"
        if len(parents) == 1 or script.is_merge_point:
            # For a merge, Alembic refuses "-1" ("Ambiguous walk");
            # downgrading to its first parent (its versioned parents come
            # first) takes back just the merge, leaving the others applied.
            return parents[0]
        return "-1"  # a parent and dependencies: one step back keeps those

    @contextmanager
    def session(self, app: Flask, workdir: Path) -> Iterator[None]:
        """Point ``app`` at the walk's databases and push an app context."""
        from .testing import DatabaseCopies, app_urls, use_databases

        if not self.copies:
            # Kept only once every database exists: with a database missing,
            # the app's own engine would be left in place, and the walk
            # would migrate the configured database.
            with _one_line_failures("cannot make the databases to test on: "):
                copies = {
                    key: DatabaseCopies(url, workdir)
                    for key, url in app_urls(app).items()
                }
                try:
                    urls = {key: made.empty("walk") for key, made in copies.items()}
                except BaseException:
                    for made in copies.values():
                        made.drop_all()
                    raise
            self.copies, self.urls = copies, urls
        with ExitStack() as stack:
            self._app, self._stack = app, stack
            stack.enter_context(use_databases(app, self.urls))
            stack.enter_context(app.app_context())
            try:
                yield
            except BaseException:
                # Whatever state a failed test left behind, the next one
                # starts from empty databases.
                self.dirty = True
                raise

    def close(self) -> None:
        for copies in self.copies.values():
            copies.drop_all()
        self.copies.clear()
        self.urls.clear()

    def reset(self) -> None:
        """Make the databases again, empty."""
        from .testing import use_databases

        for key, copies in self.copies.items():
            copies.drop(self.urls[key])
            self.urls[key] = copies.empty("walk")
        # The engines in use point at the dropped databases; point them at
        # the new ones (put back when the session block ends).
        self._stack.enter_context(use_databases(self._app, self.urls))

    def current(self) -> set[str]:
        from .testing import connect, current_heads, version_options

        options = version_options()
        found: list[set[str]] = []
        for url in self.urls.values():
            with connect(url) as connection:
                found.append(set(current_heads(connection, options)))
        if any(heads != found[0] for heads in found):
            # Never equal to a target: the databases are made again.
            return {"<the databases disagree>"}
        return found[0] if found else set()

    def ensure_at(self, targets: set[str]) -> None:
        current = self.current()
        if current == targets and not self.dirty:
            return
        if current or self.dirty:
            self.reset()
            self.dirty = False
        for target in sorted(targets):
            self.run("upgrade", target, None)

    def run(self, name: str, target: str, script: Script | None) -> None:
        from . import commands
        from .errors import CommandFailed

        try:
            getattr(commands, name)(self.history.directory, target)
            return
        except CommandFailed as exc:
            message = exc.message
        where = _describe(script) if script is not None else f"to {target}"
        pytest.fail(f"{name} {where} failed: {message}", pytrace=False)

    def snapshot(self) -> dict[str | None, Any]:
        from .testing import connect, schema_snapshot, version_options

        version_table = version_options().get("version_table", "alembic_version")
        found = {}
        for key, url in self.urls.items():
            with connect(url) as connection:
                found[key] = schema_snapshot(connection, version_table)
        return found


@pytest.fixture(scope="session")
def _flask_migrations_walker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("flask-migrations-walk")
