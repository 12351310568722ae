"""What the ``env.py`` of every shipped template delegates to.

Keeping the logic here rather than in each generated ``env.py`` means that a
project gets fixes by upgrading the package, without running ``init`` again.
The generated files still look like ordinary Alembic environments: they call
:func:`run_offline` or :func:`run_online` and can pass any keyword argument
of ``context.configure()``.

This module runs inside Alembic's environment, so it may import Alembic and
SQLAlchemy freely.
"""

from __future__ import annotations

import configparser
import io
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .databases import (
    Database,
    database_names,
    databases,
    fresh_pool,
    refuse_running_loop,
    run_with_connection,
)
from .errors import log
from .state import current_state, is_multidb

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.operations import MigrationScript
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import Connection


T = TypeVar("T")

__all__ = [
    "Database",
    "StderrHandler",
    "database_names",
    "databases",
    "run_offline",
    "run_online",
    "run_online_async",
    "run_repository",
    "run_with_connection",
    "setup_logging",
]


# --------------------------------------------------------------------------
# logging


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Write to whatever ``sys.stderr`` is at the time of the record.

    Test runners and ``click.testing.CliRunner`` swap ``sys.stderr``; a
    handler that kept the stream it was created with would write to a
    stream that is gone.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_LEVELS = {"WARN": "WARNING"}


_DEFAULT_FORMAT = "%(levelname)-5.5s [%(name)s] %(message)s"


def _levels_from_ini(path: str | None) -> tuple[dict[str, str], str]:
    """Return {logger name: level} and the format from an alembic.ini file."""
    parser = configparser.RawConfigParser()
    if path is not None and Path(path).is_file():
        parser.read(path, encoding="utf-8")
    levels: dict[str, str] = {}
    for key in parser.get("loggers", "keys", fallback="").split(","):
        section = f"logger_{key.strip()}"
        if key.strip() == "root" or not parser.has_section(section):
            continue
        name = parser.get(section, "qualname", fallback="").strip()
        if name:
            level = parser.get(section, "level", fallback="NOTSET").strip().upper()
            levels[name] = _LEVELS.get(level, level)
    fmt = parser.get("formatter_generic", "format", fallback=_DEFAULT_FORMAT)
    return levels, fmt


def setup_logging(config: Config) -> None:
    """Show Alembic's log lines on stderr without touching the app's logging.

    Alembic's own templates call ``logging.config.fileConfig()``, which
    replaces the root logger's handlers and disables every logger the app
    already set up. Instead, for each ``[logger_*]`` section of
    ``alembic.ini`` other than the root, this sets the level of that logger
    if the app left it unset. Only when the app has configured no logging at
    all (the root logger has no handler) does it also attach a stderr handler
    using the ``[formatter_generic]`` format; otherwise the records go to the
    app's handlers.

    This package's own messages ("No changes in schema detected.") are shown
    at INFO even when ``alembic.ini`` does not name its logger, as in a
    repository created by Flask-Migrate.
    """
    levels, fmt = _levels_from_ini(config.config_file_name)
    levels.setdefault(log.name, "INFO")
    app_has_logging = bool(logging.getLogger().handlers)
    for name, level in levels.items():
        logger = logging.getLogger(name)
        handlers = [
            h for h in logger.handlers if not isinstance(h, logging.NullHandler)
        ]
        if logger.level != logging.NOTSET or handlers:
            continue  # the app (or an earlier command) configured it
        logger.setLevel(level)
        if not app_has_logging:
            handler = StderrHandler()
            handler.setFormatter(logging.Formatter(fmt))
            logger.addHandler(handler)
            logger.propagate = False


# --------------------------------------------------------------------------
# databases


# --------------------------------------------------------------------------
# running


def _configure_args(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Merge ``Migrate(...)`` keyword arguments with those from env.py.

    A copy is made: Flask-Migrate's env.py wrote its callback into the
    shared dictionary, which leaked from one command into the next.
    """
    args = dict(current_state().configure_args)
    args.update(env_kwargs)
    return args


def _skip_empty_autogenerate(
    config: Config, database_count: int
) -> Any:  # the callback's signature is Alembic's
    """Return a ``process_revision_directives`` hook for autogenerate.

    Without it, ``flask db migrate`` with no model changes would write an
    empty revision file. With several databases Alembic calls the hook once
    per database; the decision is made after the last one.
    """

    def hook(
        context: MigrationContext,
        revision: Any,
        directives: list[MigrationScript],
    ) -> None:
        if not getattr(config.cmd_opts, "autogenerate", False) or not directives:
            return
        script = directives[0]
        ops_list = script.upgrade_ops_list
        if len(ops_list) < database_count:
            return
        if all(ops.is_empty() for ops in ops_list):
            directives[:] = []
            log.info("No changes in schema detected.")

    return hook


def _warning_about_data_loss(hook: Any, database_count: int) -> Any:
    """Wrap ``hook`` to warn about operations of the new revision that lose data.

    The warning comes after the app's own hook has had its say, once every
    database has been compared, and only if a revision is still to be written.
    """
    from .autogenerate import warn_destructive

    def wrapped(
        context: MigrationContext, revision: Any, directives: list[Any]
    ) -> None:
        hook(context, revision, directives)
        if directives and len(directives[0].upgrade_ops_list) >= database_count:
            warn_destructive(directives)

    return wrapped


def _per_database(db: Database, args: dict[str, Any]) -> dict[str, Any]:
    """Return the ``context.configure()`` arguments for one of several databases.

    The upgrade/downgrade tokens name the ``upgrade_<name>()`` functions in
    revision files. A ``target_metadata`` given by env.py wins; it may be a
    dict from database name ("" for the default) to ``MetaData``.
    """
    merged = {
        "target_metadata": db.metadata,
        "upgrade_token": f"{db.name}_upgrades",
        "downgrade_token": f"{db.name}_downgrades",
        **args,
    }
    if isinstance(merged["target_metadata"], dict):
        merged["target_metadata"] = merged["target_metadata"].get(db.name)
    return merged


def _sql_file_name(db: Database) -> str:
    return "default.sql" if db.bind_key is None else f"bind-{db.name}.sql"


def run_offline(
    context: EnvironmentContext, *, multidb: bool = False, **configure_args: Any
) -> None:
    """Emit the migration SQL instead of running it (``--sql``).

    With one database the SQL goes to stdout. With several, each database's
    SQL goes to its own file in the current directory: ``default.sql`` for
    the default database and ``bind-<key>.sql`` for each bind.
    ``configure_args`` are passed to ``context.configure()``.
    """
    args = _configure_args(configure_args)
    args.setdefault("literal_binds", True)
    dbs = databases(multidb)
    if not multidb:
        db = dbs[0]
        args.setdefault("target_metadata", db.metadata)
        context.configure(url=db.engine.url, **args)
        with context.begin_transaction():
            context.run_migrations()
        return
    # Each database's SQL is kept in memory and the files are written only
    # once every database's SQL is complete: a failing run (an unknown
    # revision, say) leaves the files of an earlier run as they were, and
    # no new file behind.
    outputs: dict[str, io.StringIO] = {}
    for db in dbs:
        file_name = _sql_file_name(db)
        where = "the default database" if db.bind_key is None else f"bind {db.name!r}"
        log.info("Writing SQL for %s to %s", where, file_name)
        buffer = outputs[file_name] = io.StringIO()
        context.configure(
            url=db.engine.url, output_buffer=buffer, **_per_database(db, args)
        )
        with context.begin_transaction():
            context.run_migrations(engine_name=db.name)
    for file_name, buffer in outputs.items():
        with open(file_name, "w", encoding="utf-8") as f:
            f.write(buffer.getvalue())


def _run_on_connections(
    context: EnvironmentContext,
    dbs: Sequence[Database],
    connections: Sequence[Connection],
    multidb: bool,
    env_kwargs: dict[str, Any],
    run_args: dict[str, Any] | None = None,
) -> None:
    run_args = run_args or {}
    args = _configure_args(env_kwargs)
    if args.get("process_revision_directives") is None:
        args["process_revision_directives"] = _skip_empty_autogenerate(
            context.config, len(dbs)
        )
    args["process_revision_directives"] = _warning_about_data_loss(
        args["process_revision_directives"], len(dbs)
    )
    with ExitStack() as stack:
        ddl = {
            id(connection): stack.enter_context(_transactional_sqlite(connection))
            for connection in connections
        }
        if not multidb:
            args.setdefault("target_metadata", dbs[0].metadata)
            if ddl[id(connections[0])]:
                args.setdefault("transactional_ddl", True)
            _run_on_connection(
                context, connections[0], args, own_transaction=True, **run_args
            )
            return
        # All databases move together: each runs in its own transaction, and
        # they are committed only after every database succeeded.
        transactions = [connection.begin() for connection in connections]
        try:
            for db, connection in zip(dbs, connections, strict=True):
                _run_on_connection(
                    context,
                    connection,
                    _per_database(db, args),
                    own_transaction=False,
                    **{**run_args, "engine_name": db.name},
                )
        except BaseException:
            for transaction in transactions:
                transaction.rollback()
            raise
        for transaction in transactions:
            transaction.commit()


def _run_on_connection(
    context: EnvironmentContext,
    connection: Connection,
    args: dict[str, Any],
    *,
    own_transaction: bool,
    **run_args: Any,
) -> None:
    """Configure ``context`` for one database and run the migrations on it.

    ``args`` are that database's ``context.configure()`` arguments;
    ``own_transaction`` opens Alembic's transaction around the run, where
    the caller has not opened one itself.
    """
    context.configure(connection=connection, **args)
    if own_transaction:
        with context.begin_transaction():
            context.run_migrations(**run_args)
    else:
        context.run_migrations(**run_args)


@contextmanager
def _transactional_sqlite(connection: Connection) -> Iterator[bool]:
    """Make SQLite's DDL part of the migration's transaction.

    Python's sqlite3 driver (and aiosqlite) opens a transaction only before
    INSERT, UPDATE and DELETE, so a CREATE or ALTER is committed at once and
    a failed migration leaves half its changes behind. SQLite itself can
    roll DDL back: with the driver's own transaction handling off, a BEGIN
    sent when SQLAlchemy starts a transaction covers every statement. The
    connection is put back as it was before it returns to the pool. Yields
    whether this was done.
    """
    from sqlalchemy import event

    if connection.dialect.name != "sqlite" or connection.in_transaction():
        yield False
        return
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is None or not hasattr(dbapi_connection, "isolation_level"):
        yield False
        return
    saved = dbapi_connection.isolation_level

    def begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    dbapi_connection.isolation_level = None
    event.listen(connection, "begin", begin)
    try:
        yield True
    finally:
        event.remove(connection, "begin", begin)
        if connection.in_transaction():  # pragma: no cover - closed above
            connection.rollback()
        dbapi_connection.isolation_level = saved


def _run_sync(
    context: EnvironmentContext,
    dbs: Sequence[Database],
    multidb: bool,
    env_kwargs: dict[str, Any],
    run_args: dict[str, Any] | None = None,
) -> None:
    with ExitStack() as stack:
        connections = [stack.enter_context(db.engine.connect()) for db in dbs]
        _run_on_connections(context, dbs, connections, multidb, env_kwargs, run_args)


def run_repository(
    context: EnvironmentContext, *, run_args: dict[str, Any] | None = None
) -> None:
    """Run a repository that has no ``env.py`` (Flask-Alembic's), in process.

    What ``env.py`` would do, decided from the repository itself: offline
    or online, and one database or several (its ``script.py.mako`` takes
    ``engine_name``). ``run_args`` are passed to each revision's
    ``upgrade()``/``downgrade()``, as ``context.run_migrations(**run_args)``
    would.
    """
    multidb = is_multidb(current_state().directory)
    if context.is_offline_mode():
        run_offline(context, multidb=multidb)
        return
    dbs = databases(multidb)
    if any(db.is_async for db in dbs):
        import asyncio

        refuse_running_loop()
        asyncio.run(run_online_async(context, multidb=multidb))
    else:
        _run_sync(context, dbs, multidb, {}, run_args)


def run_online(
    context: EnvironmentContext, *, multidb: bool = False, **configure_args: Any
) -> None:
    """Run the migrations on the app's database(s).

    ``configure_args`` are passed to ``context.configure()`` and win over
    ``app.config["ALEMBIC_CONTEXT"]``, which wins over the keyword arguments
    given to ``Migrate``. Async engines are detected
    and run on a fresh event loop.
    """
    dbs = databases(multidb)
    if any(db.is_async for db in dbs):
        import asyncio

        refuse_running_loop()
        asyncio.run(run_online_async(context, multidb=multidb, **configure_args))
    else:
        _run_sync(context, dbs, multidb, configure_args)


async def run_online_async(
    context: EnvironmentContext, *, multidb: bool = False, **configure_args: Any
) -> None:
    """Run the migrations on async engines (``create_async_engine``).

    Alembic itself is synchronous: the migrations run inside
    ``AsyncConnection.run_sync()``, which lets the synchronous code drive the
    async driver.
    """
    from sqlalchemy.ext.asyncio import AsyncConnection

    dbs = databases(multidb)
    async_engines = [db.engine for db in dbs if db.is_async]
    if not async_engines:
        # An aioflask env.py on an app with ordinary engines still works.
        _run_sync(context, dbs, multidb, configure_args)
        return
    async with AsyncExitStack() as stack:
        for engine in async_engines:
            await stack.enter_async_context(fresh_pool(engine))
        opened: list[Any] = []
        for db in dbs:
            if db.is_async:
                opened.append(await stack.enter_async_context(db.engine.connect()))
            else:
                opened.append(stack.enter_context(db.engine.connect()))
        # An opened AsyncConnection always has its sync_connection set.
        sync_connections = [
            cast("Connection", c.sync_connection)
            if isinstance(c, AsyncConnection)
            else c
            for c in opened
        ]
        runner = next(c for c in opened if isinstance(c, AsyncConnection))
        await runner.run_sync(
            lambda _: _run_on_connections(
                context, dbs, sync_connections, multidb, configure_args
            )
        )
