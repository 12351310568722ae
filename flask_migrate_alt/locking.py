"""The migration lock: one process at a time migrates a database.

Several replicas of an app often run ``flask db upgrade`` at the same
moment. Each command that changes the schema (``upgrade``, ``downgrade``,
``stamp``) first takes a lock in every database it migrates and only then
lets Alembic read the current revision; a process that had to wait finds the
work done and does nothing.

The lock lives in the database server, on a connection of its own, so it is
released when the process ends, however it ends:

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``);
* MySQL and MariaDB: a named lock (``GET_LOCK``), named after the database;
* SQLite: an exclusive ``flock`` on a ``<database>.migration-lock`` file next
  to the database file (SQLite's own locks would block the migration itself).

Other databases are migrated without a lock, with a warning.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from .errors import log

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from .databases import Database

__all__ = [
    "MigrationLockTimeout",
    "lock_settings",
    "migration_lock",
    "repository_lock",
    "session_settings",
]

DEFAULT_TIMEOUT = 300.0
_POLL = 0.2

# Synchronous drivers used to hold the lock of an async engine.
SYNC_DRIVERS = {
    "postgresql": ["postgresql+psycopg", "postgresql+psycopg2"],
    "mysql": ["mysql+pymysql", "mysql+mysqldb"],
}


class MigrationLockTimeout(RuntimeError):
    """Another process held the migration lock for longer than the timeout."""


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    return value.lower() not in ("0", "false", "no", "off")


def lock_settings(enabled: bool, timeout: float | None) -> tuple[bool, float]:
    """Combine the ``Migrate`` options with the environment.

    ``FLASK_DB_LOCK=0`` turns the lock off and ``FLASK_DB_LOCK_TIMEOUT``
    sets the timeout in seconds; both win over the ``Migrate`` options, so
    that one deploy can change them without a code change.
    """
    flag = _env_flag("FLASK_DB_LOCK")
    if flag is not None:
        enabled = flag
    raw = os.environ.get("FLASK_DB_LOCK_TIMEOUT")
    if raw:
        try:
            timeout = float(raw)
        except ValueError:
            raise RuntimeError(
                f"FLASK_DB_LOCK_TIMEOUT must be a number of seconds, not {raw!r}"
            ) from None
    return enabled, DEFAULT_TIMEOUT if timeout is None else timeout


def _where(db: Database) -> str:
    return "the database" if db.bind_key is None else f"database {db.name!r}"


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory locks."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def _sync_engine(engine: Any) -> Iterator[Engine | None]:
    """A synchronous engine on the same database as ``engine``.

    An async engine's connections can only be used inside its event loop,
    but the lock must be held while Alembic runs; a short-lived engine with
    the synchronous driver of the same database holds it instead.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.exc import NoSuchModuleError
    from sqlalchemy.pool import NullPool

    sync_engine = getattr(engine, "sync_engine", None)
    if sync_engine is None:
        yield engine
        return
    url = engine.url
    for driver in SYNC_DRIVERS.get(sync_engine.dialect.name, []):
        try:
            made = create_engine(url.set(drivername=driver), poolclass=NullPool)
        except (ImportError, NoSuchModuleError):
            # The driver is not installed, or this SQLAlchemy has no
            # dialect for it (psycopg 3 needs SQLAlchemy 2).
            continue
        try:
            yield made
        finally:
            made.dispose()
        return
    yield None


@contextmanager
def _sqlite_lock(db: Database, timeout: float) -> Iterator[None]:
    database = db.engine.url.database
    if not database or database == ":memory:" or "mode=memory" in str(db.engine.url):
        yield  # a private in-memory database: nobody else can migrate it
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        log.warning("no migration lock for SQLite on this platform")
        yield
        return
    path = os.path.abspath(database) + ".migration-lock"
    with open(path, "a+b") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise MigrationLockTimeout(
                        f"{_where(db)} is being migrated by another process "
                        f"(it holds {path}); gave up after {timeout:g} s, set "
                        "FLASK_DB_LOCK_TIMEOUT to wait longer"
                    ) from None
                time.sleep(_POLL)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _postgresql_holder(connection: Connection, key: int) -> str:
    from sqlalchemy import text

    row = connection.execute(
        text(
            "SELECT a.pid, a.application_name, a.client_addr, a.backend_start "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            # Advisory locks are per database, but pg_locks shows them all.
            "AND l.database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) "
            # The key is signed: mask the high half too, or it is no oid.
            "AND l.classid = ((:key >> 32) & 4294967295)::oid "
            "AND l.objid = (:key & 4294967295)::oid AND l.objsubid = 1"
        ),
        {"key": key},
    ).first()
    if row is None:
        return "another process"
    client = f" from {row.client_addr}" if row.client_addr else ""
    app = f" ({row.application_name})" if row.application_name else ""
    return f"server process {row.pid}{app}{client}, connected at {row.backend_start}"


def _mysql_holder(connection: Connection, name: str) -> str:
    from sqlalchemy import text

    holder = connection.execute(text("SELECT IS_USED_LOCK(:name)"), {"name": name})
    thread = holder.scalar()
    if thread is None:
        return "another process"
    row = connection.execute(
        text("SELECT USER, HOST FROM information_schema.PROCESSLIST WHERE ID = :id"),
        {"id": thread},
    ).first()
    who = f" ({row.USER}@{row.HOST})" if row is not None else ""
    return f"connection {thread}{who}"


def mysql_lock_name(database: str | None, version_table: str) -> str:
    """The ``GET_LOCK`` name for a database (names are server-wide)."""
    return f"fma:{database}:{version_table}"[:64]


@contextmanager
def _server_lock(db: Database, timeout: float, version_table: str) -> Iterator[None]:
    from sqlalchemy import text

    with _sync_engine(db.engine) as engine:
        if engine is None:
            log.warning(
                "no synchronous driver to hold the migration lock of %s; "
                "migrating without it",
                _where(db),
            )
            yield
            return
        dialect = engine.dialect.name
        deadline = time.monotonic() + timeout
        with engine.connect() as connection:
            # The lock outlives transactions; don't keep one open meanwhile.
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            if dialect == "postgresql":
                key = _lock_key(f"flask_migrate_alt:{version_table}")
                acquire = text("SELECT pg_try_advisory_lock(:key)")
                release = text("SELECT pg_advisory_unlock(:key)")
                params: dict[str, Any] = {"key": key}
            else:
                # MySQL lock names are server-wide: include the database.
                name = mysql_lock_name(engine.url.database, version_table)
                acquire = text("SELECT GET_LOCK(:name, 0)")
                release = text("SELECT RELEASE_LOCK(:name)")
                params = {"name": name}
            while not connection.execute(acquire, params).scalar():
                if time.monotonic() >= deadline:
                    holder = (
                        _postgresql_holder(connection, params["key"])
                        if dialect == "postgresql"
                        else _mysql_holder(connection, params["name"])
                    )
                    raise MigrationLockTimeout(
                        f"{_where(db)} is being migrated by {holder}; gave up "
                        f"after {timeout:g} s, set FLASK_DB_LOCK_TIMEOUT to wait "
                        "longer"
                    )
                time.sleep(_POLL)
            try:
                yield
            finally:
                connection.execute(release, params)


@contextmanager
def migration_lock(
    dbs: Sequence[Database], timeout: float, version_table: str = "alembic_version"
) -> Iterator[None]:
    """Hold the migration lock of every database in ``dbs``.

    The locks are taken in the order given (default database first), which
    every process uses, so two processes cannot each wait for the other.
    """
    with ExitStack() as stack:
        for db in dbs:
            dialect = db.engine.dialect.name
            if dialect == "sqlite":
                stack.enter_context(_sqlite_lock(db, timeout))
            elif dialect in ("postgresql", "mysql"):
                stack.enter_context(_server_lock(db, timeout, version_table))
            else:
                log.warning(
                    "no migration lock for %s (%s); migrating without it",
                    _where(db),
                    dialect,
                )
        yield


def _session_variables(engine: Any, settings: dict[str, float]) -> dict[str, str]:
    """The session variables, with their values, for the timeouts asked for."""
    dialect = engine.dialect
    lock_wait = settings.get("table_lock_timeout")
    statement = settings.get("statement_timeout")
    found: dict[str, str] = {}
    if dialect.name == "postgresql":
        if lock_wait is not None:
            found["lock_timeout"] = str(int(lock_wait * 1000))
        if statement is not None:
            found["statement_timeout"] = str(int(statement * 1000))
    elif dialect.name == "mysql":
        if lock_wait is not None:
            found["lock_wait_timeout"] = str(max(1, int(lock_wait)))
            found["innodb_lock_wait_timeout"] = str(max(1, int(lock_wait)))
        if statement is not None:
            if getattr(dialect, "is_mariadb", False):
                found["max_statement_time"] = str(float(statement))
            else:  # MySQL limits only SELECT statements this way
                found["max_execution_time"] = str(int(statement * 1000))
    return found


def _run(dbapi_connection: Any, statements: list[str]) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for sql in statements:
            cursor.execute(sql)
    finally:
        cursor.close()


@contextmanager
def session_settings(
    dbs: Sequence[Database], settings: dict[str, float]
) -> Iterator[None]:
    """Apply lock and statement timeouts to the migration's connections.

    ``table_lock_timeout`` bounds the wait for a table lock held by the
    running app (PostgreSQL ``lock_timeout``, MySQL ``lock_wait_timeout``),
    so a migration fails fast instead of queueing every query of the site
    behind it; ``statement_timeout`` bounds each statement (PostgreSQL
    ``statement_timeout``, MariaDB ``max_statement_time``). Connections
    checked out of the app's engines by this thread while the command runs
    get the settings, and have them reset when they go back to the pool, so
    the running app never inherits them. Other threads sharing the engines
    (a web server migrating at start-up) are left alone: the listeners act
    only for the thread that runs the command.
    """
    import threading

    from sqlalchemy import event

    owner = threading.get_ident()
    changed: set[int] = set()  # ids of the DBAPI connections given the settings

    hooks: list[tuple[Any, str, Any]] = []
    for db in dbs:
        engine = getattr(db.engine, "sync_engine", db.engine)
        variables = _session_variables(engine, settings)
        if not variables:
            continue
        if engine.dialect.name == "postgresql":
            apply = [f"SET {name} = {value}" for name, value in variables.items()]
            reset = [f"RESET {name}" for name in variables]
        else:
            apply = [
                f"SET SESSION {name} = {value}" for name, value in variables.items()
            ]
            reset = [f"SET SESSION {name} = DEFAULT" for name in variables]

        def on_checkout(
            dbapi_connection: Any, record: Any, proxy: Any, apply: list[str] = apply
        ) -> None:
            if threading.get_ident() != owner:
                return
            _run(dbapi_connection, apply)
            changed.add(id(dbapi_connection))

        def on_checkin(
            dbapi_connection: Any, record: Any, reset: list[str] = reset
        ) -> None:
            if dbapi_connection is None or id(dbapi_connection) not in changed:
                return
            changed.discard(id(dbapi_connection))
            try:
                _run(dbapi_connection, reset)
                # Don't leave the pooled connection inside a transaction.
                dbapi_connection.commit()
            except Exception:  # a broken connection is discarded by the pool
                log.debug("could not reset the migration session", exc_info=True)

        for name, fn in (("checkout", on_checkout), ("checkin", on_checkin)):
            event.listen(engine, name, fn)
            hooks.append((engine, name, fn))
    try:
        yield
    finally:
        for engine, name, fn in hooks:
            event.remove(engine, name, fn)


@contextmanager
def repository_lock(directory: str, timeout: float) -> Iterator[None]:
    """Let one process at a time write revision files into ``directory``.

    Two ``flask db migrate`` (or ``revision``, ``merge``) commands run at
    once in one checkout would both read the same head and write two
    revisions on it: two heads, each unaware of the other. Held from before
    the head is read until the new file is in place, this lock makes the
    second command wait and then behave as if it had been started after
    the first: a plain revision goes on top of the new head, and an
    autogenerated one is refused until the database is upgraded to it.

    The lock is an ``flock`` on the repository folder itself, so that no
    file is added to the user's repository, and it ends with the process.
    Without ``flock`` (Windows) revisions are written unlocked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        deadline = time.monotonic() + timeout
        waiting = False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise MigrationLockTimeout(
                        f"another command is writing a revision into {directory}; "
                        f"gave up after {timeout:g} s, let it finish (or set "
                        "FLASK_DB_LOCK_TIMEOUT to wait longer)"
                    ) from None
                if not waiting:
                    # A warning, so that it shows before env.py sets up logging.
                    log.warning(
                        "another command is writing a revision into %s; "
                        "waiting for it to finish",
                        directory,
                    )
                    waiting = True
                time.sleep(_POLL)
        yield
    finally:
        # Closing the descriptor releases the lock.
        os.close(descriptor)
