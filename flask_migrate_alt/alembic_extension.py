"""``Alembic``: Flask-Alembic's extension, on this package's core.

Flask-Alembic (Pallets-Eco) keeps a repository without ``env.py`` or
``alembic.ini``: ``script.py.mako`` and the revision files, configured from
``app.config["ALEMBIC"]`` and ``["ALEMBIC_CONTEXT"]``, driven by methods
that return data and by a ``flask db`` group of its own grammar. This class
has that public surface, so that switching is a change of import.

Underneath, the work is done by the same functions as for ``Migrate``: the
Config comes from :mod:`.config`, commands run through
:mod:`.commands` (the migration lock, transactional DDL on SQLite, the
error boundary of the CLI), and ``env.py`` is replaced by a stand-in that
runs the repository in process (see :func:`.config.in_process_config`).
While a method runs, :func:`.state.current_state` answers with this
extension's state, so ``status``, ``lint`` and the pytest plugin work on
Flask-Alembic repositories too.

Unlike Flask-Migrate's functions, the methods raise ordinary exceptions
(Alembic's ``CommandError``, ``RuntimeError``); only the ``flask db``
commands turn them into one ``Error:`` line and exit status 1.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Flask, current_app

from . import commands
from .databases import context_options, databases
from .environment import StderrHandler
from .extension import Migrate
from .paths import resource_path
from .state import MigrateState, using_state

if TYPE_CHECKING:
    from alembic.operations import MigrationScript, Operations
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationContext
    from alembic.script import Script, ScriptDirectory
    from sqlalchemy import Connection, MetaData

    from .config import Config

__all__ = ["Alembic"]

T = TypeVar("T")

#: A revision as Flask-Alembic's methods take it: an id, a ``Script``, or
#: several of either.
Revisions = Any

DEFAULT = "default"

#: ``app.extensions`` key of what each Alembic object keeps for the app.
_CACHES = "flask_migrate_alt.alembic"


def _by_name(value: Any) -> dict[str, Any]:
    """One object, or a dict by database name; ``None`` keys mean "default"."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {
            (DEFAULT if key is None else str(key)): item for key, item in value.items()
        }
    return {DEFAULT: value}


def _quiet(f: Callable[..., T]) -> Callable[..., T]:
    """A command function without its ``catch_errors`` boundary.

    Flask-Alembic's methods raise; the boundary belongs to the CLI.
    """
    found: Callable[..., T] = getattr(f, "__wrapped__", f)
    return found


def _setup_logging() -> None:
    """Show Alembic's INFO and SQLAlchemy's warnings unless the app set up logging.

    As Flask-Alembic does when the extension is created, but a logger that
    has a level or a handler of its own, or an app that configured the
    root logger, is left as it is.
    """
    for name, level in (("sqlalchemy", logging.WARNING), ("alembic", logging.INFO)):
        logger = logging.getLogger(name)
        handlers = [
            h for h in logger.handlers if not isinstance(h, logging.NullHandler)
        ]
        if handlers or logger.level != logging.NOTSET:
            continue
        if logging.getLogger().handlers:
            continue  # the app's logging takes the records
        handler = StderrHandler()
        handler.setFormatter(
            logging.Formatter("%(levelname)-5.5s [%(name)s] %(message)s")
        )
        logger.setLevel(level)
        logger.addHandler(handler)


def _flask_sqlalchemy(extension: Any) -> Any:
    """The db object from ``app.extensions["sqlalchemy"]``.

    Flask-SQLAlchemy 2 stores a state object that holds the db in its
    ``db`` attribute; Flask-SQLAlchemy 3 stores the db itself, whose own
    ``db`` property only warns that it is deprecated (3.0) and returns it.
    """
    return getattr(extension, "__dict__", {}).get("db", extension)


@dataclass
class _AppCache:
    """What the extension keeps for one app."""

    app: weakref.ref[Flask]
    config: Config | None = None
    state: MigrateState | None = None
    engines: dict[str, Any] | None = None
    metadatas: dict[str, Any] | None = None
    #: Open for the current app context; closed at its teardown.
    env: EnvironmentContext | None = None
    contexts: dict[str, MigrationContext] | None = None
    ops: dict[str, Operations] | None = None


class _Runner(Migrate):
    """The ``Migrate`` the core sees for a Flask-Alembic repository.

    Its Config is the extension's, made runnable without ``env.py``.
    """

    def __init__(self, owner: Alembic, directory: str) -> None:
        # Alembic's own defaults, as Flask-Alembic leaves them.
        super().__init__(directory=directory, command="", render_as_batch=False)
        self.owner = owner
        self.rev_id = owner.rev_id

    def get_config(
        self,
        directory: str | os.PathLike[str] | None = None,
        x_arg: str | Sequence[str] | None = None,
        opts: Sequence[str] | None = None,
    ) -> Config:
        from .config import in_process_config

        config = in_process_config(
            self.owner.config, self.directory, x_arg=x_arg, opts=opts
        )
        return self.call_configure_callbacks(config)


class _State(MigrateState):
    """The state of a Flask-Alembic repository: its databases are found late.

    The engines and metadata are resolved when the core asks for them, with
    Flask-Alembic's rules and error messages, so that commands that do not
    touch a database (``heads``, an empty ``revision``) work without one.
    Engines that come from Flask-SQLAlchemy(-Lite) are read from it each
    time (``engines`` is then ``None`` and ``db`` is that extension), as for
    ``Migrate(app, db)``, so that the testing fixtures can point them
    elsewhere.
    """

    def __init__(self, owner: Alembic, runner: _Runner, app: Flask) -> None:
        self.owner = owner
        self.app = app
        super().__init__(
            runner,
            None,
            runner.directory,
            dict(runner.alembic_ctx_kwargs),
            default_get_config=False,
            default_name=DEFAULT,
            names_from_metadata=True,
        )

    def _in_app(self, f: Callable[[], T]) -> T:
        from flask import has_app_context

        if has_app_context() and current_app.extensions is self.app.extensions:
            return f()
        with self.app.app_context():
            return f()

    @property  # type: ignore[override]
    def metadatas(self) -> dict[str, Any]:
        return self._in_app(lambda: self.owner._targets()[1])

    @metadatas.setter
    def metadatas(self, value: Any) -> None:
        pass  # always resolved from the extension

    @property
    def engines(self) -> dict[str, Any] | None:
        engines = self._in_app(lambda: self.owner._targets()[0])
        return engines if self.owner.engines else None

    @engines.setter
    def engines(self, value: Any) -> None:
        pass

    @property
    def db(self) -> Any:
        return _flask_sqlalchemy(self.app.extensions.get("sqlalchemy"))

    @db.setter
    def db(self, value: Any) -> None:
        pass


class Alembic:
    """Flask-Alembic's ``Alembic`` extension: migrations without ``env.py``.

    A drop-in for ``flask_alembic.Alembic`` (3.3): the same constructor,
    configuration keys, properties, methods and ``flask db`` commands,
    working on the same repositories and version tables. The differences
    are listed in :doc:`/flask-alembic`.

    :param app: call :meth:`init_app` on this app.
    :param run_mkdir: run :meth:`mkdir` in :meth:`init_app`.
    :param command_name: register the ``flask`` command group under this
        name; ``""`` registers none.
    :param metadatas: the models' ``MetaData``: one (or a list of several)
        for the ``"default"`` database, or a dict from database name to
        those. With Flask-SQLAlchemy, ``db.metadata`` when not given.
    :param engines: one engine for ``"default"``, or a dict from database
        name to engine. With Flask-SQLAlchemy(-Lite), its engines when not
        given.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        run_mkdir: bool = True,
        command_name: str = "db",
        metadatas: MetaData | list[MetaData] | Mapping[str, Any] | None = None,
        engines: Any = None,
    ) -> None:
        self.run_mkdir = run_mkdir
        self.command_name = command_name
        self.metadatas: dict[str, Any] = _by_name(metadatas)
        self.engines: dict[str, Any] = _by_name(engines)
        self._rev_lock = threading.Lock()
        self._last_rev = 0
        _setup_logging()
        if app is not None:
            self.init_app(app)

    def init_app(
        self,
        app: Flask,
        *,
        run_mkdir: bool | None = None,
        command_name: str | None = None,
        metadatas: MetaData | list[MetaData] | Mapping[str, Any] | None = None,
        engines: Any = None,
    ) -> None:
        """Register the extension on ``app``.

        Arguments left as ``None`` keep the constructor's. Sets the defaults
        of ``app.config["ALEMBIC"]`` (``script_location="migrations"``,
        ``version_locations=[]``, ``path_separator="os"``) and
        ``["ALEMBIC_CONTEXT"]`` (``compare_server_default=True``).

        :raises RuntimeError: the command name is taken by ``Migrate``.
        """
        if command_name is not None:
            self.command_name = command_name
        if metadatas is not None:
            self.metadatas = _by_name(metadatas)
        if engines is not None:
            self.engines = _by_name(engines)
        from .cli import alembic_db, check_command_name

        if self.command_name:
            check_command_name(app, self.command_name, alembic_db)
        app.extensions["alembic"] = self
        options = app.config.setdefault("ALEMBIC", {})
        options.setdefault("script_location", "migrations")
        options.setdefault("version_locations", [])
        options.setdefault("path_separator", "os")
        app.config.setdefault("ALEMBIC_CONTEXT", {}).setdefault(
            "compare_server_default", True
        )
        # One per app, kept with the app (an app factory called twice gets
        # two), by this object's id in case an app has several.
        app.extensions.setdefault(_CACHES, {})[id(self)] = _AppCache(weakref.ref(app))
        app.teardown_appcontext(self._teardown)
        if run_mkdir or (run_mkdir is None and self.run_mkdir):
            with app.app_context():
                self.mkdir()
        if self.command_name:
            app.cli.add_command(alembic_db, self.command_name)

    # ------------------------------------------------------------------
    # per-app objects

    def _app_cache(self) -> _AppCache:
        found = current_app.extensions.get(_CACHES, {}).get(id(self))
        if found is None:
            raise RuntimeError(
                f"the Flask app {current_app.name!r} has no Alembic extension; "
                "call alembic.init_app(app) first"
            )
        return found  # type: ignore[no-any-return]

    def _teardown(self, exc: BaseException | None = None) -> None:
        """Close the connections opened in the app context that ends."""
        cache = current_app.extensions.get(_CACHES, {}).get(id(self))
        if cache is None:
            return
        for context in (cache.contexts or {}).values():
            if context.connection is not None:
                context.connection.close()
        cache.env = cache.contexts = cache.ops = None

    def _directory(self) -> str:
        """The repository folder (``script_location``) as a path."""
        location = self.config.get_main_option("script_location") or "migrations"
        return resource_path(location, current_app.root_path)

    def _targets(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The engines and metadata by database name, as Flask-Alembic finds them."""
        cache = self._app_cache()
        if cache.engines is not None and cache.metadatas is not None:
            return cache.engines, cache.metadatas
        extension = current_app.extensions.get("sqlalchemy")
        db = _flask_sqlalchemy(extension)
        metadatas = dict(self.metadatas)
        if not metadatas and db is not None and hasattr(db, "metadata"):
            metadatas = {DEFAULT: db.metadata}
        if not metadatas:
            raise RuntimeError(
                "When not using Flask-SQLAlchemy, pass 'metadatas' when creating "
                "the Alembic extension: Alembic(app, metadatas=Model.metadata)."
            )
        engines = dict(self.engines)
        if not engines and db is not None:
            engines = _engines_of(db)
        if not engines:
            raise RuntimeError(
                "Either use Flask-SQLAlchemy(-Lite) with engines configured, or "
                "pass 'engines' when creating the Alembic extension."
            )
        missing = [name for name in metadatas if name not in engines]
        if missing:
            plural = "config" if len(missing) == 1 else "configs"
            names = ", ".join(repr(name) for name in missing)
            raise RuntimeError(
                f"Missing engine {plural} for {names}: add them to the engines "
                "(SQLALCHEMY_ENGINES, SQLALCHEMY_BINDS or engines=...)."
            )
        if self.engines:
            # Given: kept, so that one dict serves the app's whole life.
            cache.engines, cache.metadatas = engines, metadatas
        return engines, metadatas

    def _migrate_state(self) -> MigrateState:
        """The state the core works with while this extension runs a command."""
        cache = self._app_cache()
        if cache.state is None:
            app = cache.app()
            assert app is not None  # the cache lives in app.extensions
            cache.state = _State(self, _Runner(self, self._directory()), app)
        return cache.state

    @contextmanager
    def _running(self) -> Iterator[None]:
        with using_state(self._migrate_state):
            yield

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Run a command that changes the databases.

        It runs on connections of its own (under the migration lock), not on
        those kept for :attr:`migration_contexts`. Flask-Alembic ran it on
        the kept ones, so their open transaction is committed first: work
        done through :attr:`op` is kept, as it was there, it holds no lock
        the command would wait on, and their next read sees the command's
        result instead of an older snapshot (MariaDB's repeatable read).
        """
        cache = self._app_cache()
        for context in (cache.contexts or {}).values():
            connection = context.connection
            if connection is None or connection.closed:
                continue
            # get_transaction(): SQLAlchemy 1.4's Connection has no commit().
            found = connection.get_transaction()
            if found is not None:
                found.commit()
            else:
                # SQLAlchemy 1.4's legacy Connection reads outside any
                # transaction it knows of, in the driver's implicit one,
                # whose snapshot MariaDB keeps: end that one.
                connection.connection.commit()
        with self._running():
            yield

    # ------------------------------------------------------------------
    # Alembic objects

    def rev_id(self) -> str:
        """Return the id of a new revision: the current UTC time in seconds.

        Never the same twice from one extension, even within one second;
        :meth:`revision` and :meth:`merge` also step past an id the
        repository already has. Override the method, or assign a function,
        to change it.
        """
        with self._rev_lock:
            self._last_rev = max(int(time.time()), self._last_rev + 1)
            return str(self._last_rev)

    def _new_rev_id(self) -> str:
        found = str(self.rev_id())
        taken = {sc.revision for sc in self.script_directory.walk_revisions()}
        while found in taken and found.isdigit():
            found = str(int(found) + 1)
        return found

    @property
    def config(self) -> Config:
        """The Alembic ``Config`` of the current app (kept for the app's life)."""
        from .config import flask_alembic_config

        cache = self._app_cache()
        if cache.config is None:
            cache.config = flask_alembic_config(
                current_app.root_path,
                current_app.config["ALEMBIC"],
                databases=self.metadatas,
            )
        return cache.config

    @property
    def script_directory(self) -> ScriptDirectory:
        """The repository's ``ScriptDirectory``, read afresh on each access."""
        from .config import script_directory

        return script_directory(self.config)

    @property
    def environment_context(self) -> EnvironmentContext:
        """An ``EnvironmentContext`` for the current app context."""
        from alembic.runtime.environment import EnvironmentContext

        cache = self._app_cache()
        if cache.env is None:
            cache.env = EnvironmentContext(self.config, self.script_directory)
        return cache.env

    def _make_contexts(self, stack: ExitStack) -> dict[str, MigrationContext]:
        """A ``MigrationContext`` on a new connection to each database.

        ``stack`` closes the connections.
        """
        from alembic.runtime.migration import MigrationContext

        engines, metadatas = self._targets()
        multi = len(metadatas) > 1
        contexts: dict[str, MigrationContext] = {}
        with self._running():
            options = context_options()
            for db in databases(multi):
                name = db.bind_key or DEFAULT
                opts = {**options, "target_metadata": metadatas.get(name)}
                if multi:
                    opts["upgrade_token"] = f"{name}_upgrades"
                    opts["downgrade_token"] = f"{name}_downgrades"
                connection: Connection = stack.enter_context(db.engine.connect())
                contexts[name] = MigrationContext.configure(connection, opts=opts)
        return contexts

    @contextmanager
    def _open_contexts(self) -> Iterator[dict[str, MigrationContext]]:
        """Contexts whose connections are closed when the block ends."""
        with ExitStack() as stack:
            yield self._make_contexts(stack)

    @property
    def migration_contexts(self) -> dict[str, MigrationContext]:
        """A ``MigrationContext`` for each database, by name.

        They are kept for the app context, and their connections closed
        when it ends. The methods of this class open their own.
        """
        cache = self._app_cache()
        if cache.contexts is None:
            with ExitStack() as stack:
                contexts = self._make_contexts(stack)
                # Kept open: from now on _teardown closes them.
                stack.pop_all()
            cache.contexts = contexts
        return cache.contexts

    @property
    def migration_context(self) -> MigrationContext:
        """The ``MigrationContext`` of the ``"default"`` database."""
        return self.migration_contexts[DEFAULT]

    @property
    def ops(self) -> dict[str, Operations]:
        """Alembic ``Operations`` on each database, by name."""
        from alembic.operations import Operations

        cache = self._app_cache()
        if cache.ops is None:
            cache.ops = {
                name: Operations(context)
                for name, context in self.migration_contexts.items()
            }
        return cache.ops

    @property
    def op(self) -> Operations:
        """Alembic ``Operations`` on the ``"default"`` database."""
        return self.ops[DEFAULT]

    def run_migrations(self, fn: Callable[..., Any], **kwargs: Any) -> None:
        """Run ``fn`` as the migration function on every database.

        What ``env.py`` does: ``fn(heads, context)`` returns the steps to
        run, and ``kwargs`` go to each revision's ``upgrade()`` or
        ``downgrade()``. All databases commit together, under the migration
        lock.
        """
        from alembic.runtime.environment import EnvironmentContext

        from .config import script_directory
        from .environment import run_repository

        with self._changing():
            config = self._migrate_state().migrate.get_config()

            @commands.restores_configure_args
            def run(directory: str | None = None) -> None:
                with commands.guarded(directory):
                    with EnvironmentContext(
                        config, script_directory(config), fn=fn
                    ) as env:
                        run_repository(env, run_args=kwargs)

            run()

    def mkdir(self) -> None:
        """Create the repository folder, its ``script.py.mako`` and the version folders.

        Alembic's ``generic`` template, or ``multidb`` when several
        databases are configured. Existing files are kept.
        """
        import importlib.util

        spec = importlib.util.find_spec("alembic")
        roots = list(spec.submodule_search_locations or ()) if spec else []
        template = "multidb" if len(self.metadatas) > 1 else "generic"
        source = os.path.join(roots[0] if roots else "", "templates", template)
        source = os.path.join(source, "script.py.mako")
        if not os.path.isfile(source):
            raise RuntimeError(f"Template {source} does not exist")
        root = current_app.root_path
        options = current_app.config["ALEMBIC"]
        cache = self._app_cache()
        if cache.config is not None:
            directory = self._directory()
        else:  # without building the Config (and importing Alembic)
            directory = resource_path(str(options["script_location"]), root)
        folders = [directory]
        for item in options.get("version_locations") or ():
            path = os.fspath(item if isinstance(item, (str, os.PathLike)) else item[-1])
            folders.append(resource_path(path, root))
        for folder in folders:
            if os.path.exists(folder) and not os.path.isdir(folder):
                raise RuntimeError(
                    f"{folder} is a file, not a folder: move it away or change "
                    "script_location / version_locations in app.config['ALEMBIC']"
                )
        target = os.path.join(directory, "script.py.mako")
        # A failure part way leaves the files as they were: what this call
        # made is removed again, newest first.
        created: list[str] = []
        try:
            for folder in folders:
                _make_folders(folder, created)
            if not os.path.exists(target):
                shutil.copy(source, target)
                created.append(target)
        except BaseException:
            for path in reversed(created):
                if os.path.isdir(path):
                    os.rmdir(path)
                else:
                    os.remove(path)
            raise

    # ------------------------------------------------------------------
    # reading the history

    def _simplify_rev(self, rev: Revisions, *, current: bool = False) -> list[str]:
        """Revision ids from an id, a ``Script``, or several of either."""
        from alembic.script import Script

        if rev is None:
            return []
        if isinstance(rev, str):
            if rev == "current" and current:
                return [sc.revision for sc in self.current()]
            return [rev]
        if isinstance(rev, Script):
            return [rev.revision]
        if isinstance(rev, int):
            return [f"{rev:+d}"]
        return [r.revision if isinstance(r, Script) else str(r) for r in rev]

    def current(self) -> tuple[Script, ...]:
        """The revisions the ``"default"`` database is at."""
        with self._open_contexts() as contexts:
            heads = contexts[DEFAULT].get_current_heads()
        return tuple(
            sc for sc in self.script_directory.get_revisions(heads) if sc is not None
        )

    def needs_upgrade(self) -> bool:
        """Whether ``upgrade()`` would run a revision on some database.

        A head that a current revision depends on counts as applied: the
        version table then keeps only the dependent revision.
        """
        from .inspection import pending_upgrade

        script = self.script_directory
        with self._open_contexts() as contexts:
            found = [context.get_current_heads() for context in contexts.values()]
        return any(pending_upgrade(script, current) for current in found)

    def heads(self, resolve_dependencies: bool = False) -> tuple[Script, ...]:
        """The revisions that have no child revision.

        :param resolve_dependencies: treat dependencies as down revisions.
        """
        script = self.script_directory
        found = script.get_revisions(
            "heads" if resolve_dependencies else script.get_heads()
        )
        return tuple(sc for sc in found if sc is not None)

    def branches(self) -> list[Script]:
        """The revisions that have more than one next revision."""
        return [
            sc for sc in self.script_directory.walk_revisions() if sc.is_branch_point
        ]

    def log(self, start: Revisions = "base", end: Revisions = "heads") -> list[Script]:
        """The revisions from ``end`` down to ``start``, newest first.

        ``"current"`` stands for the ``"default"`` database's revisions.
        """
        base = self._simplify_rev(start, current=True) or ["base"]
        head = self._simplify_rev(end, current=True) or ["heads"]
        return list(
            self.script_directory.walk_revisions(
                base[0] if len(base) == 1 else base,  # type: ignore[arg-type]
                head[0] if len(head) == 1 else head,  # type: ignore[arg-type]
            )
        )

    # ------------------------------------------------------------------
    # changing the databases

    def _target(self, target: Revisions, direction: str) -> str | int | list[str]:
        """Flask-Alembic's target: an int, or a digit string that no revision
        has as its id, is a number of steps."""
        from alembic.script import Script

        if isinstance(target, Script):
            return target.revision
        if isinstance(target, int) and not isinstance(target, bool):
            return target
        if isinstance(target, str):
            digits = target.lstrip("+-")
            if digits.isdigit():
                taken = {sc.revision for sc in self.script_directory.walk_revisions()}
                if target not in taken:
                    steps = int(target)
                    return -abs(steps) if direction == "down" else steps
            return target
        return self._simplify_rev(target)

    def stamp(self, target: Revisions = "heads") -> list[str]:
        """Set the version table to ``target`` without running migrations."""
        revision = self._simplify_rev(target)
        with self._changing():
            return _quiet(commands.stamp)(
                None, revision=revision[0] if len(revision) == 1 else revision
            )

    def upgrade(self, target: Revisions = "heads") -> list[str]:
        """Upgrade the databases to ``target``; return the ids applied.

        An int, or a digit string that is not a revision id, is a number of
        steps up.
        """
        with self._changing():
            return _quiet(commands.upgrade)(None, revision=self._target(target, "up"))

    def downgrade(self, target: Revisions = -1) -> list[str]:
        """Downgrade the databases to ``target``; return the ids undone.

        An int, or a digit string that is not a revision id, is a number of
        steps down, whatever its sign.
        """
        with self._changing():
            return _quiet(commands.downgrade)(
                None, revision=self._target(target, "down")
            )

    # ------------------------------------------------------------------
    # writing revisions

    def revision(
        self,
        message: str,
        empty: bool = False,
        branch: str = DEFAULT,
        parent: Revisions = "head",
        splice: bool = False,
        depend: Revisions = None,
        label: str | Sequence[str] | None = None,
        path: str | None = None,
    ) -> list[Script | None]:
        """Write a new revision; autogenerated from the models unless ``empty``.

        :param branch: the independent branch the revision belongs to. The
            first revision of a branch starts from the base and is labelled
            with its name; later ones go on top of ``<branch>@head``.
        :param parent: the parent revision(s).
        :param splice: allow a parent that is not a head.
        :param depend: revisions this one depends on.
        :param label: branch labels for the new revision.
        :param path: the folder to write it to (relative to the app's root),
            by default the branch's ``(branch, path)`` version location, else
            the repository folder.
        :return: a list holding the new revision; empty when autogenerate
            found no change.
        """
        labels = [label] if isinstance(label, str) else list(label or ())
        with self._running():
            script = self.script_directory
            parents = self._simplify_rev(parent)
            if branch:
                parents = [
                    f"{branch}@{item}" if item in ("base", "head") else item
                    for item in parents
                ]
                if not path:
                    pairs = [
                        item
                        for item in current_app.config["ALEMBIC"].get(
                            "version_locations", ()
                        )
                        if not isinstance(item, (str, os.PathLike))
                    ]
                    path = dict((name, where) for name, where in pairs).get(branch)
                if not any(
                    branch in sc.branch_labels for sc in script.walk_revisions()
                ):
                    labels.insert(0, branch)
                    parents = ["base"]
            where = (
                resource_path(os.fspath(path), current_app.root_path) if path else None
            )
            created = _quiet(commands.revision)(
                None,
                message,
                autogenerate=not empty,
                head=parents if len(parents) != 1 else parents[0],
                splice=splice,
                branch_label=labels or None,
                version_path=where or self._directory(),
                rev_id=self._new_rev_id(),
                depends_on=None if depend is None else self._simplify_rev(depend),
            )
        if created is None:
            return []
        return list(created) if isinstance(created, list) else [created]

    def merge(
        self,
        revisions: Revisions = "heads",
        message: str | None = None,
        label: str | Sequence[str] | None = None,
    ) -> Script | None:
        """Write a revision merging ``revisions`` (default: every head)."""
        ids = self._simplify_rev(revisions) or ["heads"]
        if message is None:
            message = f"merge {', '.join(ids)}"
        with self._running():
            return _quiet(commands.merge)(
                None,
                revisions=ids,
                message=message,
                branch_label=[label] if isinstance(label, str) else label,
                rev_id=self._new_rev_id(),
            )

    # ------------------------------------------------------------------
    # comparing the models with the databases

    def produce_migrations(self) -> MigrationScript:
        """The ``MigrationScript`` that a new revision would hold.

        With several databases its ``upgrade_ops`` and ``downgrade_ops``
        are lists, one entry per database (``upgrade_ops_list``), whose
        ``upgrade_token`` is ``<name>_upgrades``.
        """
        from alembic import autogenerate

        scripts = []
        with self._open_contexts() as contexts:
            for name, context in contexts.items():
                found = autogenerate.produce_migrations(
                    context, context.opts["target_metadata"]
                )
                if len(contexts) > 1 and found.upgrade_ops and found.downgrade_ops:
                    # As a revision file names them: upgrade_<name>().
                    found.upgrade_ops.upgrade_token = f"{name}_upgrades"
                    found.downgrade_ops.downgrade_token = f"{name}_downgrades"
                scripts.append(found)
        script = scripts[0]
        if len(scripts) > 1:
            # Alembic's shape for several databases (upgrade_ops_list).
            script.upgrade_ops = [s.upgrade_ops for s in scripts if s.upgrade_ops]
            script.downgrade_ops = [s.downgrade_ops for s in scripts if s.downgrade_ops]
        return script

    def compare_metadata(self) -> list[Any]:
        """The differences between the models and the databases.

        With several databases, those of each database in turn.
        """
        script = self.produce_migrations()
        return [diff for ops in script.upgrade_ops_list for diff in ops.as_diffs()]

    def needs_revision(self) -> bool:
        """Whether the models differ from a database (a revision is needed)."""
        return bool(self.compare_metadata())


def _make_folders(folder: str, created: list[str]) -> None:
    """``os.makedirs``, appending each folder it creates to ``created``."""
    if os.path.isdir(folder):
        return
    parent = os.path.dirname(os.path.abspath(folder))
    if parent != os.path.abspath(folder):
        _make_folders(parent, created)
    os.mkdir(folder)
    created.append(folder)


def _engines_of(db: Any) -> dict[str, Any]:
    """The engines of a Flask-SQLAlchemy(-Lite) object, by database name."""
    from .databases import as_mapping

    engines = getattr(db, "engines", None)
    if engines is None:  # Flask-SQLAlchemy 2
        engine = getattr(db, "engine", None)
        return {} if engine is None else {DEFAULT: engine}
    found = as_mapping(dict(engines)) or {}
    return {(DEFAULT if key is None else key): engine for key, engine in found.items()}
