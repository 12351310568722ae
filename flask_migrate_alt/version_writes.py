"""Write the version table once per run instead of once per revision.

Alembic updates ``alembic_version`` after every revision it applies: one
UPDATE, compiled anew each time (the revision ids are literal SQL), per step.
On a database with transactional DDL, with the whole run in one transaction,
nobody else can see those intermediate rows: a failure rolls every one of
them back together with the schema changes. There, the steps' changes to the
version table are collected and written as one statement per row when the
run ends, still inside its transaction. Replaying 500 revisions on
PostgreSQL spends about a sixth of its time on those UPDATEs.

The collected changes are written earlier whenever something could see
them or commit them: before a migration reads the current revision
(``get_current_heads()``, ``get_current_revision()``); before anything
commits on the migration's connection (an ``autocommit_block()``,
``connection.commit()``, or a ``COMMIT`` statement, an old recipe for
``ALTER TYPE ... ADD VALUE``); before the ``on_version_apply`` callbacks
of the app; and before Alembic inserts or deletes a version row (branches
and merges). Everywhere else Alembic's own code runs unchanged.

Nothing is held back when each revision runs in its own transaction
(``transaction_per_migration=True``), when DDL is not rolled back with
the transaction (MySQL, MariaDB: each CREATE commits at once, so the
version table must follow every step, whatever ``transactional_ddl``
says), or when emitting SQL (``--sql``).

Alembic creates its ``HeadMaintainer`` inside ``run_migrations()``, with no
way to pass another one in, so :func:`version_written_at_end` puts a
subclass in its place for the length of the run. The subclass behaves
exactly like Alembic's for every migration context that did not ask for it,
so another thread's migrations in the same process are not affected.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext

__all__ = ["reads_no_database", "version_written_at_end"]

T = TypeVar("T")

#: Attribute of a MigrationContext that holds its held-back writes.
_ATTRIBUTE = "_flask_migrate_alt_version_writes"

#: Marks an ``on_version_apply`` callback that does not read the database.
_READS_NOTHING = "_flask_migrate_alt_reads_no_database"

_COMMIT = re.compile(r"\s*(COMMIT|END)\b", re.IGNORECASE)

_install_lock = threading.Lock()
_installed = 0
_original: Any = None
_subclass: Any = None


def reads_no_database(callback: T) -> T:
    """Mark an ``on_version_apply`` callback that need not see the version table.

    The callbacks of the app get the version table written before each
    call, in case they read it; a marked one does not.
    """
    setattr(callback, _READS_NOTHING, True)
    return callback


class _HeldBack:
    """The version rows one migration context has changed but not written.

    ``rows`` maps each revision id the run moved a row *to* onto the id that
    row still holds in the table.
    """

    def __init__(self, migration_context: MigrationContext) -> None:
        self.context = migration_context
        self.rows: dict[str, str] = {}

    def move(self, from_: str, to_: str) -> bool:
        """Record the row of ``from_`` moving to ``to_``; False if it cannot wait.

        A row cannot wait when ``to_`` is still stored in another row: two
        rows would then have to swap ids, which one UPDATE each at the end
        cannot express in a safe order.
        """
        if to_ in self.rows.values() and self.rows.get(from_) != to_:
            return False
        self.rows[to_] = self.rows.pop(from_, from_)
        return True

    def write(self) -> None:
        """Write every held-back row, checking that each matched one row."""
        from alembic.util import CommandError
        from sqlalchemy import bindparam

        rows, self.rows = self.rows, {}
        context = self.context
        table = context._version
        statement = (
            table.update()
            .values(version_num=bindparam("new"))
            .where(table.c.version_num == bindparam("old"))
        )
        for new, old in rows.items():
            if new == old:
                continue
            result = context.impl._exec(statement, params={"new": new, "old": old})
            if (
                context.dialect.supports_sane_rowcount
                and result is not None
                and result.rowcount != 1
            ):
                raise CommandError(
                    f"Expected one row of {context.version_table!r} to hold "
                    f"revision {old!r} while moving it to {new!r}, found "
                    f"{result.rowcount}: something else changed the version "
                    "table during the migration; check it with 'flask db "
                    "current' before running the command again"
                )


def _maintainer_class(base: type[Any]) -> type[Any]:
    class HeldBackHeadMaintainer(base):  # type: ignore[misc]
        """Alembic's HeadMaintainer, holding back UPDATEs where asked to."""

        def _held_back(self) -> _HeldBack | None:
            return getattr(self.context, _ATTRIBUTE, None)

        def _write_held_back(self) -> None:
            held = self._held_back()
            if held is not None:
                held.write()

        def _update_version(self, from_: str, to_: str) -> None:
            held = self._held_back()
            if held is None or not held.move(from_, to_):
                self._write_held_back()
                super()._update_version(from_, to_)
                return
            # The bookkeeping Alembic's _update_version does besides the SQL.
            assert to_ not in self.heads
            self.heads.remove(from_)
            self.heads.add(to_)

        def _insert_version(self, version: str) -> None:
            self._write_held_back()
            super()._insert_version(version)

        def _delete_version(self, version: str) -> None:
            self._write_held_back()
            super()._delete_version(version)

    return HeldBackHeadMaintainer


@contextmanager
def _maintainer_installed() -> Iterator[None]:
    global _installed, _original, _subclass
    from alembic.runtime import migration

    with _install_lock:
        if _installed == 0:
            _original = migration.HeadMaintainer
            _subclass = _maintainer_class(_original)
            migration.HeadMaintainer = _subclass  # type: ignore[misc]
        _installed += 1
    try:
        yield
    finally:
        with _install_lock:
            _installed -= 1
            # Unless someone else replaced it meanwhile (a test's patch).
            if _installed == 0 and migration.HeadMaintainer is _subclass:
                migration.HeadMaintainer = _original  # type: ignore[misc]


def _can_hold_back(migration_context: MigrationContext, ddl_rolls_back: bool) -> bool:
    opts = migration_context.opts
    return (
        ddl_rolls_back
        and not migration_context.as_sql
        and migration_context.connection is not None
        and bool(migration_context.impl.transactional_ddl)
        and not opts.get("transaction_per_migration", False)
    )


def _writing_first(held: _HeldBack, callback: Callable[..., Any]) -> Any:
    if getattr(callback, _READS_NOTHING, False):
        return callback

    def call(**kwargs: Any) -> Any:
        held.write()
        return callback(**kwargs)

    return call


@contextmanager
def version_written_at_end(
    migration_context: MigrationContext, *, ddl_rolls_back: bool
) -> Iterator[None]:
    """Hold back the version-table UPDATEs of the run inside this block.

    Use it inside the run's transaction: the held-back rows are written when
    the block ends without an error. After an error they are dropped; the
    transaction is rolled back with everything else of the run.
    ``ddl_rolls_back`` says whether a rollback on this connection really
    undoes DDL (PostgreSQL; SQLite with the driver's own transaction
    handling off), which Alembic's ``transactional_ddl`` setting alone does
    not prove.
    """
    if not _can_hold_back(migration_context, ddl_rolls_back):
        yield
        return
    from sqlalchemy import event

    held = _HeldBack(migration_context)
    connection = migration_context.connection
    get_current_heads = migration_context.get_current_heads

    def current_heads() -> tuple[str, ...]:
        held.write()
        return get_current_heads()

    # Every commit on the connection: autocommit_block() and a migration's
    # own connection.commit() go through SQLAlchemy's Transaction.
    def before_commit(conn: Any) -> None:
        held.write()

    def before_execute(conn: Any, statement: Any, *args: Any) -> None:
        text = (
            statement
            if isinstance(statement, str)
            else getattr(statement, "text", None)
        )
        if isinstance(text, str) and _COMMIT.match(text):
            held.write()

    instance = vars(migration_context)
    callbacks = migration_context.on_version_apply_callbacks
    with _maintainer_installed():
        instance[_ATTRIBUTE] = held
        instance["get_current_heads"] = current_heads
        instance["on_version_apply_callbacks"] = [
            _writing_first(held, callback) for callback in callbacks
        ]
        event.listen(connection, "commit", before_commit)
        event.listen(connection, "before_execute", before_execute)
        try:
            yield
            held.write()
        finally:
            event.remove(connection, "commit", before_commit)
            event.remove(connection, "before_execute", before_execute)
            for name in (_ATTRIBUTE, "get_current_heads"):
                instance.pop(name, None)
            instance["on_version_apply_callbacks"] = callbacks
