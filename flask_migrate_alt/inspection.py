"""Quiet helpers: questions about migrations, answered without printing.

For use inside a running app (admin views, health checks) and in tests.
They never print, never raise ``SystemExit``, and do not run ``env.py``:
they connect with the app's own engines and pass the ``context.configure()``
arguments given to ``Migrate`` (and ``app.config["ALEMBIC_CONTEXT"]``) to
Alembic, so a custom ``version_table`` or ``include_object`` is honoured.

Results for a repository made with a multiple-database template are dicts
from bind key (``None`` for the default database) to that database's
answer; for a single-database repository they are the answer itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .extension import current_state

if TYPE_CHECKING:
    from alembic.operations import MigrationScript, Operations
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import Connection

    from .environment import Database

__all__ = [
    "compare_metadata",
    "migration_context",
    "needs_revision",
    "needs_upgrade",
    "operations",
    "produce_migrations",
    "script_directory",
]

T = TypeVar("T")


def repository(directory: str | os.PathLike[str] | None) -> str:
    """Return the migration repository's path (default: the app's directory).

    :raises FileNotFoundError: it does not exist.
    """
    state = current_state()
    path = os.fspath(directory) if directory is not None else state.directory
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"migration directory {path!r} not found; run 'flask db init' to "
            "create it, or point to it with -d/--directory (directory=...)"
        )
    return path


def is_multidb(directory: str) -> bool:
    """Tell whether the repository was made from a multiple-database template.

    Their ``script.py.mako`` (ours and Flask-Migrate's) dispatch on the
    ``engine_name`` argument Alembic passes to ``upgrade()``.
    """
    template = Path(directory) / "script.py.mako"
    return template.is_file() and "engine_name" in template.read_text(encoding="utf-8")


def context_options() -> dict[str, Any]:
    """The ``context.configure()`` arguments in force for the current app."""
    from flask import current_app

    from .autogenerate import exclusion_hooks
    from .environment import _metadatas

    state = current_state()
    migrate = current_state().migrate
    options = dict(current_state().configure_args)
    options.update(current_app.config.get("ALEMBIC_CONTEXT") or {})
    tables = [
        *migrate.exclude_tables,
        *current_app.config.get("MIGRATE_EXCLUDE_TABLES", ()),
    ]
    schemas = [
        *migrate.exclude_schemas,
        *current_app.config.get("MIGRATE_EXCLUDE_SCHEMAS", ()),
    ]
    if tables or schemas or migrate.exclude_system_tables:
        options["include_name"], options["include_object"] = exclusion_hooks(
            tables,
            schemas,
            migrate.exclude_system_tables,
            options.get("include_name"),
            options.get("include_object"),
            models=lambda: _metadatas(state).values(),
        )
    return options


def _migration_context(connection: Connection, db: Database) -> MigrationContext:
    from alembic.runtime.migration import MigrationContext

    options = context_options()
    options.setdefault("target_metadata", db.metadata)
    return MigrationContext.configure(connection, opts=options)


def _each_database(
    directory: str | os.PathLike[str] | None,
    fn: Callable[[MigrationContext, Database], T],
) -> dict[str | None, T] | T:
    """Run ``fn`` on a MigrationContext of each database of the repository."""
    from .environment import databases, run_with_connection

    multidb = is_multidb(repository(directory))
    results: dict[str | None, T] = {}
    for db in databases(multidb):

        def call(connection: Connection, db: Database = db) -> T:
            return fn(_migration_context(connection, db), db)

        results[db.bind_key] = run_with_connection(db, call)
    return results if multidb else results[None]


def script_directory(
    directory: str | os.PathLike[str] | None = None,
) -> ScriptDirectory:
    """Return Alembic's ``ScriptDirectory`` for the repository."""
    from alembic.script import ScriptDirectory

    from .commands import _config

    return ScriptDirectory.from_config(_config(directory))


def needs_upgrade(directory: str | os.PathLike[str] | None = None) -> bool:
    """Tell whether any database is not at all the heads of the history."""
    heads = set(script_directory(directory).get_heads())

    def behind(context: MigrationContext, db: Database) -> bool:
        return set(context.get_current_heads()) != heads

    found = _each_database(directory, behind)
    return any(found.values()) if isinstance(found, dict) else found


def compare_metadata(
    directory: str | os.PathLike[str] | None = None,
) -> list[Any] | dict[str | None, list[Any]]:
    """Return Alembic's list of differences between the models and the database.

    The comparison ``flask db migrate`` makes, with the options given to
    ``Migrate`` and ``app.config["ALEMBIC_CONTEXT"]`` (``compare_type``,
    ``include_object``, ...); options passed only in ``env.py`` are not
    seen, since env.py is not run. An empty list means the database matches
    the models.
    """
    from alembic.autogenerate import compare_metadata as compare

    def diffs(context: MigrationContext, db: Database) -> list[Any]:
        if db.metadata is None:
            return []
        return list(compare(context, db.metadata))

    return _each_database(directory, diffs)


def needs_revision(directory: str | os.PathLike[str] | None = None) -> bool:
    """Tell whether the models differ from the database.

    ``True`` means ``flask db migrate`` would write a revision.
    """
    found = compare_metadata(directory)
    if isinstance(found, dict):
        return any(found.values())
    return bool(found)


def produce_migrations(
    directory: str | os.PathLike[str] | None = None,
) -> MigrationScript | dict[str | None, MigrationScript]:
    """Return the ``MigrationScript`` autogenerate would render, without writing it."""
    from alembic.autogenerate import produce_migrations as produce

    def script(context: MigrationContext, db: Database) -> MigrationScript:
        from sqlalchemy import MetaData

        metadata = db.metadata if db.metadata is not None else MetaData()
        return produce(context, metadata)

    return _each_database(directory, script)


def _sync_database(bind: str | None) -> Database:
    from .environment import Database, databases

    key = bind or None
    found = databases(multidb=key is not None)
    for db in found:
        if db.bind_key == key:
            break
    else:
        known = ", ".join(repr(d.bind_key) for d in found)
        raise LookupError(f"no database with bind key {bind!r}; the app has {known}")
    if db.is_async:
        raise TypeError(
            f"the engine of {'the default database' if key is None else repr(key)} "
            "is async; migration_context() and operations() need a synchronous "
            "engine (use needs_upgrade(), compare_metadata() and the commands, "
            "which handle async engines)"
        )
    return Database(db.name, db.engine, db.metadata)


@contextmanager
def migration_context(bind: str | None = None) -> Iterator[MigrationContext]:
    """Yield a ``MigrationContext`` on a new connection to database ``bind``.

    The connection runs in a transaction that is committed when the block
    ends normally, rolled back if it raises, and closed in both cases.

    :raises TypeError: the engine is async; use the commands or the other
        helpers, which handle async engines.
    :raises LookupError: the app has no database with that bind key.
    """
    db = _sync_database(bind)
    with db.engine.begin() as connection:
        yield _migration_context(connection, db)


@contextmanager
def operations(bind: str | None = None) -> Iterator[Operations]:
    """Yield Alembic ``Operations`` (what ``op`` is in a revision) on database ``bind``.

    Like :func:`migration_context`: committed when the block ends normally,
    rolled back if it raises, and the connection is closed either way.
    """
    from alembic.operations import Operations

    with migration_context(bind) as context:
        yield Operations(context)
