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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .databases import Database, each_database, migration_context_on, sync_database

if TYPE_CHECKING:
    from alembic.operations import MigrationScript, Operations
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

__all__ = [
    "compare_metadata",
    "migration_context",
    "needs_revision",
    "needs_upgrade",
    "operations",
    "produce_migrations",
    "script_directory",
]


def script_directory(
    directory: str | os.PathLike[str] | None = None,
) -> ScriptDirectory:
    """Return Alembic's ``ScriptDirectory`` for the repository."""
    from .config import app_config
    from .config import script_directory as build

    return build(app_config(directory))


def needs_upgrade(directory: str | os.PathLike[str] | None = None) -> bool:
    """Tell whether ``upgrade`` to the heads would run a revision on any database.

    A head that a current revision depends on counts as applied: after the
    upgrade Alembic keeps only the dependent revision in the version table,
    and an upgrade would run nothing. A version table naming a revision the
    history does not have counts as behind.
    """
    script = script_directory(directory)

    def behind(context: MigrationContext, db: Database) -> bool:
        return pending_upgrade(script, context.get_current_heads())

    found = each_database(directory, behind)
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

    return each_database(directory, diffs)


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

    return each_database(directory, script)


@contextmanager
def migration_context(bind: str | None = None) -> Iterator[MigrationContext]:
    """Yield a ``MigrationContext`` on a new connection to database ``bind``.

    The connection runs in a transaction that is committed when the block
    ends normally, rolled back if it raises, and closed in both cases.

    :raises TypeError: the engine is async; use the commands or the other
        helpers, which handle async engines.
    :raises LookupError: the app has no database with that bind key.
    """
    db = sync_database(bind)
    with db.engine.begin() as connection:
        yield migration_context_on(connection, db)


@contextmanager
def operations(bind: str | None = None) -> Iterator[Operations]:
    """Yield Alembic ``Operations`` (what ``op`` is in a revision) on database ``bind``.

    Like :func:`migration_context`: committed when the block ends normally,
    rolled back if it raises, and the connection is closed either way.
    """
    from alembic.operations import Operations

    with migration_context(bind) as context:
        yield Operations(context)


def pending_upgrade(script: ScriptDirectory, current: Sequence[str]) -> bool:
    """Whether ``upgrade heads`` would run a revision on a database at ``current``."""
    from alembic.script.revision import RevisionError

    from .config import revisions_between

    try:
        return bool(revisions_between(script, tuple(current), "heads", up=True))
    except RevisionError:
        return True
