"""The migration lock: one process at a time migrates a database.

Several replicas of an app often run ``flask db upgrade`` at the same
moment. Each command that changes the schema (``upgrade``, ``downgrade``,
``stamp``) takes a lock in every database it migrates before it reads the
current revision; a process that had to wait finds the work done and does
nothing.

PostgreSQL and MySQL/MariaDB keep the lock in the database session that
runs the migration: a session-level advisory lock (``pg_try_advisory_lock``)
or a named lock (``GET_LOCK``) taken on each connection the command checks
out of the app's engine, before anything else runs on it, and released
when the connection goes back to the pool. So the lock needs no connection
of its own (a pool of one connection is enough), it cannot sit idle and be
dropped by a server or proxy that closes idle sessions while the migration
goes on, and if the session is dropped all the same, the migration's
transaction goes with it: nothing is committed after the lock is lost.

SQLite has no sessions: the lock is an exclusive ``flock`` on a
``<database>.migration-lock`` file next to the database file (SQLite's own
locks would block the migration itself), removed when the command ends.

Other databases are migrated without a lock, with a warning.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from .errors import log

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from .databases import Database

__all__ = [
    "MigrationLockTimeout",
    "lock_settings",
    "migration_lock",
    "repository_lock",
    "seconds",
    "session_settings",
]

DEFAULT_TIMEOUT = 300.0
_POLL = 0.2


class MigrationLockTimeout(RuntimeError):
    """Another process held the migration lock for longer than the timeout."""


def seconds(name: str, value: Any, *, zero: bool = True) -> float:
    """``value`` as a number of seconds, or ValueError naming ``name``.

    NaN would make every comparison false (a wait that never ends) and a
    negative or infinite wait is never what was meant; ``zero`` says whether
    0 is allowed (for the lock: try once; the servers' statement and lock
    timeouts take 0 as "no limit", which ``None`` says instead).
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        valid = False
    else:
        valid = zero or number > 0
    if not valid:
        least = "0 or more" if zero else "more than 0 (None for no limit)"
        raise ValueError(f"{name} must be a number of seconds, {least}, not {value!r}")
    return number


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
            timeout = seconds("FLASK_DB_LOCK_TIMEOUT", raw.strip())
        except ValueError as exc:
            # A setting of the environment, not an argument: the CLI's
            # one-line error, raised before anything waits or connects.
            raise RuntimeError(str(exc)) from None
    return enabled, DEFAULT_TIMEOUT if timeout is None else timeout


def _where(db: Database) -> str:
    return "the database" if db.bind_key is None else f"database {db.name!r}"


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory locks."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _sqlite_path(url: URL) -> str | None:
    """The real path of a SQLite database file; None for a private in-memory one.

    With ``?uri=true`` the database part is an SQLite URI filename
    (``file:/srv/app.db?mode=rwc``), whose path is what SQLite opens. The
    path is made absolute and its symbolic links resolved, so that every
    name of one file gives one lock.
    """
    from urllib.parse import parse_qs, unquote, urlsplit

    database = url.database or ""
    options = {key: str(value).lower() for key, value in url.query.items()}
    if options.get("uri") in ("true", "1") and database.startswith("file:"):
        parts = urlsplit(database)
        options.update(
            (key, values[-1].lower()) for key, values in parse_qs(parts.query).items()
        )
        database = unquote(parts.path)
    if not database or database == ":memory:" or options.get("mode") == "memory":
        return None
    return os.path.realpath(database)


@contextmanager
def _sqlite_lock(db: Database, timeout: float) -> Iterator[None]:
    path = _sqlite_path(db.engine.url)
    if path is None:
        yield  # a private in-memory database: nobody else can migrate it
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        log.warning("no migration lock for SQLite on this platform")
        yield
        return
    lock_path = path + ".migration-lock"
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise MigrationLockTimeout(
                    f"{_where(db)} is being migrated by another process "
                    f"(it holds {lock_path}); gave up after {timeout:g} s, set "
                    "FLASK_DB_LOCK_TIMEOUT to wait longer"
                ) from None
            time.sleep(_POLL)
            continue
        # The holder before us removes the file before letting go of it: a
        # lock on a file no longer at that path locks nothing.
        try:
            current = os.path.samestat(os.fstat(fd), os.stat(lock_path))
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    try:
        yield
    finally:
        # Removed while still locked, so that no other process can lock
        # this file after us and think it holds the lock.
        try:
            os.unlink(lock_path)
        except OSError:  # pragma: no cover - a directory made read-only
            log.debug("could not remove %s", lock_path, exc_info=True)
        os.close(fd)


def mysql_lock_name(database: str | None, version_table: str) -> str:
    """The ``GET_LOCK`` name for a database (names are server-wide)."""
    return f"fma:{database}:{version_table}"[:64]


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _scalar(dbapi_connection: Any, sql: str) -> Any:
    """Run one query on a raw DBAPI connection and end its transaction.

    Pool events get the DBAPI connection, and the statements are written
    without parameters because each driver has its own parameter style.
    The rollback leaves the connection as it was checked out: session-level
    locks outlive it.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql)
        row = cursor.fetchone()
    finally:
        cursor.close()
    dbapi_connection.rollback()
    return None if row is None else row[0]


def _postgresql_holder(dbapi_connection: Any, key: int) -> str:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(
            "SELECT a.pid, a.application_name, a.client_addr, a.backend_start "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            # Advisory locks are per database, but pg_locks shows them all.
            "AND l.database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) "
            # The key is signed: mask the high half too, or it is no oid.
            f"AND l.classid = (({key} >> 32) & 4294967295)::oid "
            f"AND l.objid = ({key} & 4294967295)::oid AND l.objsubid = 1"
        )
        row = cursor.fetchone()
    finally:
        cursor.close()
    dbapi_connection.rollback()
    if row is None:
        return "another process"
    pid, application, client, start = row
    client = f" from {client}" if client else ""
    application = f" ({application})" if application else ""
    return f"server process {pid}{application}{client}, connected at {start}"


def _mysql_holder(dbapi_connection: Any, name: str) -> str:
    thread = _scalar(dbapi_connection, f"SELECT IS_USED_LOCK({_quoted(name)})")
    if thread is None:
        return "another process"
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(
            "SELECT USER, HOST FROM information_schema.PROCESSLIST "
            f"WHERE ID = {int(thread)}"
        )
        row = cursor.fetchone()
    finally:
        cursor.close()
    dbapi_connection.rollback()
    who = f" ({row[0]}@{row[1]})" if row is not None else ""
    return f"connection {thread}{who}"


class _SessionLock:
    """The migration lock of one database, held by the sessions that migrate.

    Listens to the pool of the app's engine while the command runs. The
    first connection the command's thread checks out takes the lock before
    anything runs on it, waiting up to ``timeout`` seconds, and releases it
    when it goes back to the pool; connections the same thread checks out
    meanwhile (a migration using the app's session) share it. A connection
    dropped by the server loses the lock with its open transaction; the
    next one checked out (a reconnection) takes the lock again first.
    Other threads sharing the engine are left alone.
    """

    def __init__(self, db: Database, engine: Any, timeout: float, table: str) -> None:
        self.db = db
        self.engine = engine
        self.timeout = timeout
        self.owner = threading.get_ident()
        self.holder: int | None = None  # id() of the DBAPI connection holding it
        if engine.dialect.name == "postgresql":
            self.key = _lock_key(f"flask_migrate_alt:{table}")
            self.acquire = f"SELECT pg_try_advisory_lock({self.key})"
            self.release = f"SELECT pg_advisory_unlock({self.key})"
        else:
            # MySQL lock names are server-wide: include the database.
            self.name = mysql_lock_name(engine.url.database, table)
            self.acquire = f"SELECT GET_LOCK({_quoted(self.name)}, 0)"
            self.release = f"SELECT RELEASE_LOCK({_quoted(self.name)})"

    def _holder(self, dbapi_connection: Any) -> str:
        if self.engine.dialect.name == "postgresql":
            return _postgresql_holder(dbapi_connection, self.key)
        return _mysql_holder(dbapi_connection, self.name)

    def _try(self, dbapi_connection: Any) -> bool:
        from sqlalchemy.exc import DisconnectionError

        try:
            return bool(_scalar(dbapi_connection, self.acquire))
        except Exception as exc:
            if self.engine.dialect.is_disconnect(exc, dbapi_connection, None):
                # A pooled connection the server dropped while idle: the pool
                # opens a new one (and this runs again on it).
                raise DisconnectionError(str(exc)) from exc
            raise

    def checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if threading.get_ident() != self.owner or self.holder is not None:
            return
        deadline = time.monotonic() + self.timeout
        while not self._try(dbapi_connection):
            if time.monotonic() >= deadline:
                raise MigrationLockTimeout(
                    f"{_where(self.db)} is being migrated by "
                    f"{self._holder(dbapi_connection)}; gave up after "
                    f"{self.timeout:g} s, set FLASK_DB_LOCK_TIMEOUT to wait longer"
                )
            time.sleep(_POLL)
        self.holder = id(dbapi_connection)

    def checkin(self, dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is None or id(dbapi_connection) != self.holder:
            return
        self.holder = None
        try:
            _scalar(dbapi_connection, self.release)
        except Exception:
            # The session is gone, and its lock with it; the migration has
            # finished by now, successfully or not, so this changes nothing.
            log.debug("could not release the migration lock", exc_info=True)

    def invalidate(self, dbapi_connection: Any, record: Any, exception: Any) -> None:
        if id(dbapi_connection) == self.holder:
            self.holder = None  # closed with its session: the lock is gone

    @contextmanager
    def listening(self) -> Iterator[None]:
        from sqlalchemy import event

        hooks = (
            ("checkout", self.checkout),
            ("checkin", self.checkin),
            ("invalidate", self.invalidate),
        )
        for name, fn in hooks:
            event.listen(self.engine, name, fn)
        try:
            yield
        finally:
            for name, fn in hooks:
                event.remove(self.engine, name, fn)


@contextmanager
def migration_lock(
    dbs: Sequence[Database], timeout: float, version_table: str = "alembic_version"
) -> Iterator[None]:
    """Hold the migration lock of every database in ``dbs`` while migrating.

    SQLite's lock is taken here, in the order given; the others when the
    command's thread first checks a connection out of each database's
    engine, which env.py does in the same order (default database first)
    in every process, so two processes cannot each wait for the other.
    """
    with ExitStack() as stack:
        for db in dbs:
            engine = getattr(db.engine, "sync_engine", db.engine)
            dialect = engine.dialect.name
            if dialect == "sqlite":
                stack.enter_context(_sqlite_lock(db, timeout))
            elif dialect in ("postgresql", "mysql"):
                lock = _SessionLock(db, engine, timeout, version_table)
                stack.enter_context(lock.listening())
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
            # 0 would mean "no limit": never round a short wait down to it.
            found["lock_timeout"] = str(max(1, int(lock_wait * 1000)))
        if statement is not None:
            found["statement_timeout"] = str(max(1, int(statement * 1000)))
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
    # The statements that reset each DBAPI connection given the settings.
    changed: dict[int, list[str]] = {}

    def statements(engine: Any) -> tuple[list[str], list[str]]:
        variables = _session_variables(engine, settings)
        if engine.dialect.name == "postgresql":
            apply = [f"SET {name} = {value}" for name, value in variables.items()]
            return apply, [f"RESET {name}" for name in variables]
        apply = [f"SET SESSION {name} = {value}" for name, value in variables.items()]
        return apply, [f"SET SESSION {name} = DEFAULT" for name in variables]

    hooks: list[tuple[Any, str, Any]] = []
    for db in dbs:
        engine = getattr(db.engine, "sync_engine", db.engine)
        if engine.dialect.name not in ("postgresql", "mysql"):
            continue

        def on_checkout(
            dbapi_connection: Any, record: Any, proxy: Any, engine: Any = engine
        ) -> None:
            if threading.get_ident() != owner:
                return
            # Only now, connected, does the dialect know MariaDB from MySQL.
            apply, reset = statements(engine)
            if apply:
                _run(dbapi_connection, apply)
                changed[id(dbapi_connection)] = reset

        def on_checkin(dbapi_connection: Any, record: Any) -> None:
            if dbapi_connection is None or id(dbapi_connection) not in changed:
                return
            reset = changed.pop(id(dbapi_connection))
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
