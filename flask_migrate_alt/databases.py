"""Finding the app's databases: engines and MetaData by bind key.

Flask-SQLAlchemy, Flask-SQLAlchemy-Lite and plain SQLAlchemy keep them in
different places; everything that connects (env.py, the quiet helpers,
status, lint, the lock) finds them here. Also where a ``MigrationContext``
gets the ``context.configure()`` arguments in force for the app.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from flask import current_app

from .errors import MigrateNotSetUp
from .state import MigrateState, current_state, is_multidb, repository

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import Connection, MetaData

__all__ = [
    "DEFAULT_KEYS",
    "Database",
    "as_mapping",
    "context_options",
    "database_names",
    "databases",
    "each_database",
    "fresh_pool",
    "migration_context_on",
    "refuse_running_loop",
    "run_with_connection",
    "sync_database",
]

T = TypeVar("T")


DEFAULT_KEYS = (None, "default")  # Flask-SQLAlchemy, Flask-SQLAlchemy-Lite
#: The default database's name in revision files: Migrate's, Flask-Alembic's.
DEFAULT_NAMES = ("", "default")


def as_mapping(value: Any) -> dict[str | None, Any] | None:
    """Turn one object or a dict by bind key into a dict keyed by bind key.

    The default database is ``None``; Flask-SQLAlchemy-Lite's ``"default"``
    key means the same.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return {None: value}
    return {(None if key in DEFAULT_KEYS else key): item for key, item in value.items()}


def _db_engines(db: Any) -> dict[str | None, Any] | None:
    engines = getattr(db, "engines", None)
    if not engines:
        # Flask-SQLAlchemy-Lite apps may configure only async engines.
        engines = getattr(db, "async_engines", None) or engines
    if engines is None:
        return None
    return as_mapping(dict(engines))


def _engines(state: MigrateState) -> dict[str | None, Any]:
    """Every engine the app has, by bind key (``None`` for the default)."""
    explicit = as_mapping(state.engines)
    if explicit is not None:
        return explicit
    db = state.db
    if db is None:
        raise MigrateNotSetUp(
            "Migrate has no database: pass the Flask-SQLAlchemy object as "
            "Migrate(app, db), or engines=... and metadata=... when not using "
            "Flask-SQLAlchemy"
        )
    found = _db_engines(db)
    if found is not None:
        return found
    get_engine = getattr(db, "get_engine", None)
    if callable(get_engine):
        # Flask-SQLAlchemy 2.x has no db.engines: it makes each bind's engine
        # on demand.
        binds = current_app.config.get("SQLALCHEMY_BINDS") or {}
        engines = {key: get_engine(bind=key) for key in binds if key is not None}
        return {None: get_engine(), **engines}
    engine = getattr(db, "engine", None)
    if engine is not None:
        return {None: engine}
    raise RuntimeError(
        f"cannot find a database engine on {type(db).__name__}; pass "
        "engines=... to Migrate when not using Flask-SQLAlchemy"
    )


def _metadatas(state: MigrateState) -> dict[str | None, MetaData]:
    explicit = as_mapping(state.metadatas)
    if explicit is not None:
        return explicit
    db = state.db
    metadatas = getattr(db, "metadatas", None)
    if metadatas is not None:  # Flask-SQLAlchemy 3.x keeps one per bind
        return dict(metadatas)
    metadata = getattr(db, "metadata", None)
    if isinstance(metadata, Mapping) or metadata is None:
        raise RuntimeError(
            "cannot find the models' MetaData; pass metadata=... to Migrate "
            "when not using Flask-SQLAlchemy (for example "
            "Migrate(app, db, metadata=Model.metadata))"
        )
    # Older Flask-SQLAlchemy: one MetaData, tables marked with their bind.
    from sqlalchemy import MetaData

    found: dict[str | None, MetaData] = {None: MetaData()}
    for table in metadata.tables.values():
        key = table.info.get("bind_key")
        table.to_metadata(found.setdefault(key, MetaData()))
    if len(found) == 1:
        found[None] = metadata
    return found


def database_names() -> list[str]:
    """Return ``""`` for the default database followed by each bind key.

    Bind keys come from the ``engines`` given to ``Migrate``, else from
    ``SQLALCHEMY_BINDS``, else from the ``db`` object's engines.
    """
    state = current_state()
    binds = current_app.config.get("SQLALCHEMY_BINDS")
    if state.names_from_metadata:
        keys = [key for key in _metadatas(state) if key is not None]
    elif state.engines is None and binds:
        keys = [key for key in binds if key not in DEFAULT_KEYS]
    else:
        keys = [key for key in _engines(state) if key is not None]
    for key in keys:
        # Revision files get an upgrade_<key>() function per bind.
        if not str(key).isidentifier():
            raise RuntimeError(
                f"bind key {key!r} cannot be used with the multiple-database "
                "templates: revision files name a function after each bind, so "
                "rename it to letters, digits and underscores"
            )
    return [state.default_name, *keys]


@dataclass
class Database:
    """One database that the migrations run on."""

    #: ``""`` for the default database (``"default"`` in a Flask-Alembic
    #: repository), else the bind key. Revision files of multi-database
    #: repositories call ``upgrade_<name>()`` for it.
    name: str
    engine: Any
    metadata: MetaData | None

    @property
    def bind_key(self) -> str | None:
        return None if self.name in DEFAULT_NAMES else self.name

    @property
    def is_async(self) -> bool:
        # An app with an async engine has imported SQLAlchemy's asyncio
        # support already; others must not pay for importing it (it needs
        # greenlet, which is optional).
        asyncio_ext = sys.modules.get("sqlalchemy.ext.asyncio")
        return asyncio_ext is not None and isinstance(
            self.engine, asyncio_ext.AsyncEngine
        )


def databases(multidb: bool = False) -> list[Database]:
    """Return the default database, and with ``multidb`` every bind too."""
    state = current_state()
    engines = _engines(state)
    metadatas = _metadatas(state)
    found = []
    for name in database_names() if multidb else [state.default_name]:
        key = None if name in DEFAULT_NAMES else name
        if key not in engines:
            where = "the default database" if key is None else f"bind {key!r}"
            raise RuntimeError(
                f"no engine for {where}; check SQLALCHEMY_DATABASE_URI and "
                "SQLALCHEMY_BINDS in the app config, or the engines given to "
                "Migrate"
            )
        found.append(Database(name, engines[key], metadatas.get(key)))
    return found


def run_with_connection(db: Database, fn: Callable[[Connection], T]) -> T:
    """Return ``fn(connection)`` for an open, synchronous connection to ``db``.

    For an async engine the call runs inside ``AsyncConnection.run_sync()``
    on a new event loop.
    """
    if not db.is_async:
        with db.engine.connect() as connection:
            return fn(connection)
    import asyncio

    refuse_running_loop()

    async def run() -> T:
        async with fresh_pool(db.engine):
            async with db.engine.connect() as connection:
                return await connection.run_sync(fn)  # type: ignore[no-any-return]

    return asyncio.run(run())


@asynccontextmanager
async def fresh_pool(engine: Any) -> AsyncIterator[None]:
    # Pooled async connections belong to the event loop that opened them,
    # and every command runs on a new loop. Start from an empty pool without
    # closing connections of another loop (that would fail), and close ours
    # before this loop ends. (Replacing the pool does no I/O; SQLAlchemy
    # 1.4's AsyncEngine.dispose() has no close argument, its sync engine has.)
    engine.sync_engine.dispose(close=False)
    try:
        yield
    finally:
        await engine.dispose()


def refuse_running_loop() -> None:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        "migrations on an async engine cannot run inside a running event "
        "loop; call the command from a worker thread instead, for example "
        "await asyncio.to_thread(flask_migrate_alt.upgrade)"
    )


def context_options() -> dict[str, Any]:
    """The ``context.configure()`` arguments in force for the current app."""
    from .autogenerate import exclusion_hooks

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


def migration_context_on(connection: Connection, db: Database) -> MigrationContext:
    from alembic.runtime.migration import MigrationContext

    options = context_options()
    options.setdefault("target_metadata", db.metadata)
    return MigrationContext.configure(connection, opts=options)


def each_database(
    directory: str | os.PathLike[str] | None,
    fn: Callable[[MigrationContext, Database], T],
) -> dict[str | None, T] | T:
    """Run ``fn`` on a MigrationContext of each database of the repository.

    A dict by bind key for a multiple-database repository, else the answer
    for the default database.
    """
    multidb = is_multidb(repository(directory))
    results: dict[str | None, T] = {}
    for db in databases(multidb):

        def call(connection: Connection, db: Database = db) -> T:
            return fn(migration_context_on(connection, db), db)

        results[db.bind_key] = run_with_connection(db, call)
    return results if multidb else results[None]


def sync_database(bind: str | None) -> Database:
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
