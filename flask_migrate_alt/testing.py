"""Throwaway databases for testing migrations, and for tests that need a schema.

The pytest plugin (:mod:`flask_migrate_alt.pytest_plugin`) is built on
this module; it can also be used on its own. Nothing here touches the
databases the app is configured with: every database is a new one made on
the same server (a new file next to nothing for SQLite), named after the
configured one, and dropped afterwards. While a test runs, the app's
engines are swapped for engines on those databases, so ``db.session``,
``db.engine`` and the migration commands all see them.

A database migrated to the heads is built once (the *template*) and copied
for each test that asks for one, which is much faster than replaying the
whole history every time:

* PostgreSQL: ``CREATE DATABASE ... TEMPLATE``, a file-level copy made by
  the server.
* SQLite: a copy of the database file.
* MySQL/MariaDB have no such statement; the copy replays ``SHOW CREATE
  TABLE`` of every table and view of the template and copies the rows with
  ``INSERT ... SELECT`` (triggers, routines, events and sequences are not
  copied).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .state import app_state

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy import Connection, Engine
    from sqlalchemy.engine import URL

__all__ = [
    "DatabaseCopies",
    "app_urls",
    "describe_difference",
    "MigratedDatabases",
    "Migrator",
    "schema_snapshot",
    "use_databases",
]

# PostgreSQL cuts identifiers at 63 bytes, MySQL refuses names over 64.
_MAX_NAME = 63

# Synchronous drivers that create and drop the databases of async URLs.
SYNC_DRIVERS = {
    "postgresql": ["postgresql+psycopg", "postgresql+psycopg2"],
    "mysql": ["mysql+pymysql", "mysql+mysqldb"],
}


def _sync_url(url: URL) -> URL:
    """The URL with a synchronous driver, for creating and dropping databases."""
    import importlib.util

    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite")
    if not url.get_dialect().is_async:
        return url
    for candidate in SYNC_DRIVERS.get(backend, []):
        module = {"mysqldb": "MySQLdb"}.get(*[candidate.partition("+")[2]] * 2)
        if importlib.util.find_spec(module) is not None:
            return url.set(drivername=candidate)
    raise RuntimeError(
        f"making test databases for the async URL {url.drivername!r} needs a "
        f"synchronous driver too: install one of {SYNC_DRIVERS.get(backend)}"
    )


def _admin_engine(url: URL) -> Engine:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine(
        _sync_url(url), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or bool(
        url.query.get("mode") == "memory"
    )


@dataclass
class DatabaseCopies:
    """Makes and drops throwaway databases on the server of ``url``.

    ``url`` is the URL of one of the app's engines; the databases made here
    use the same server, user and driver, under names starting with the
    configured database's name. ``workdir`` holds SQLite files.
    """

    url: URL
    workdir: Path
    made: list[URL] = field(default_factory=list)
    _admin_url: URL | None = field(default=None, repr=False)

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    def _name(self, label: str) -> str:
        base = self.url.database or "db"
        if self.backend == "sqlite":
            base = "memory" if _is_memory(self.url) else Path(base).stem
        suffix = f"_{label}_{uuid.uuid4().hex[:10]}"
        return base[: _MAX_NAME - len(suffix)] + suffix

    def _admin(self) -> Engine:
        """An engine for CREATE/DROP DATABASE on the server.

        It connects to the configured database when it exists; a CI job
        often configures one that nobody created, so the server's
        maintenance database (PostgreSQL) or no database (MySQL) is tried
        next.
        """
        from sqlalchemy.engine import URL
        from sqlalchemy.exc import OperationalError

        if self._admin_url is not None:
            return _admin_engine(self._admin_url)
        fallbacks: dict[str, list[str | None]] = {
            "postgresql": ["postgres", "template1"],
            "mysql": [None],
        }
        # URL.set() ignores None, which here means "no database": rebuild it.
        url = self.url
        candidates = [url] + [
            URL.create(
                url.drivername,
                url.username,
                url.password,
                url.host,
                url.port,
                name,
                url.query,
            )
            for name in fallbacks.get(self.backend, [])
        ]
        failure: OperationalError | None = None
        for candidate in candidates:
            engine = _admin_engine(candidate)
            try:
                with engine.connect():
                    pass
            except OperationalError as exc:
                failure = failure or exc
                continue
            self._admin_url = candidate
            return engine
        assert failure is not None
        raise failure

    def _quote(self, name: str) -> str:
        dialect = self.url.get_dialect()()
        return dialect.identifier_preparer.quote_identifier(name)

    def empty(self, label: str = "test") -> URL:
        """Create an empty database and return its URL."""
        name = self._name(label)
        if self.backend == "sqlite":
            path = self.workdir / f"{name}.db"
            path.touch()
            made = self.url.set(database=str(path), query={})
        else:
            self._create(f"CREATE DATABASE {self._quote(name)}")
            made = self.url.set(database=name)
        self.made.append(made)
        return made

    def copy(self, template: URL, label: str = "test") -> URL:
        """Create a database holding the same schema and rows as ``template``.

        Nothing may be connected to ``template`` while it is copied (dispose
        its engines first): PostgreSQL refuses to copy a database in use.
        """
        if self.backend == "sqlite":
            name = self._name(label)
            path = self.workdir / f"{name}.db"
            assert template.database is not None
            shutil.copyfile(template.database, path)
            made = self.url.set(database=str(path), query={})
            self.made.append(made)
            return made
        if self.backend == "postgresql":
            name = self._name(label)
            assert template.database is not None
            self._create(
                f"CREATE DATABASE {self._quote(name)} "
                f"TEMPLATE {self._quote(template.database)}"
            )
            made = self.url.set(database=name)
            self.made.append(made)
            return made
        made = self.empty(label)
        _copy_mysql(template, made)
        return made

    def _create(self, statement: str) -> None:
        from sqlalchemy.exc import DBAPIError

        from .errors import describe

        try:
            with self._admin().connect() as conn:
                conn.exec_driver_sql(statement)
        except DBAPIError as exc:
            where = self.url.render_as_string(hide_password=True)
            raise RuntimeError(
                f"cannot create a test database on {where}: {describe(exc)}; "
                f"the user {self.url.username!r} needs the right to create "
                "databases (PostgreSQL: ALTER ROLE ... CREATEDB; MySQL: GRANT "
                "ALL ON `<database>_%`.* TO ...)"
            ) from exc

    def drop(self, url: URL) -> None:
        """Drop a database made here (a no-op for one already dropped)."""
        if url in self.made:
            self.made.remove(url)
        if self.backend == "sqlite":
            assert url.database is not None
            for suffix in ("", "-journal", "-wal", "-shm", ".migration-lock"):
                Path(url.database + suffix).unlink(missing_ok=True)
            return
        name = self._quote(url.database or "")
        force = " WITH (FORCE)" if self.backend == "postgresql" else ""
        with self._admin().connect() as conn:
            if self.backend == "postgresql":
                version = conn.dialect.server_version_info or (0,)
                force = force if version >= (13,) else ""
            elif self.backend in ("mysql", "mariadb"):
                _disconnect_mysql(conn, url.database or "")
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")

    def drop_all(self) -> None:
        """Drop every database made here."""
        for url in list(self.made):
            self.drop(url)


def _disconnect_mysql(conn: Connection, database: str) -> None:
    """End the other connections to ``database``, as PostgreSQL's FORCE does.

    A connection still in a transaction (a session a test left open) holds
    a metadata lock that DROP DATABASE would wait on for as long as
    ``lock_wait_timeout``, a year by default.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    threads = conn.execute(
        text(
            "SELECT id FROM information_schema.processlist "
            "WHERE db = :db AND id <> CONNECTION_ID()"
        ),
        {"db": database},
    ).scalars()
    for thread in list(threads):
        try:
            conn.exec_driver_sql(f"KILL {int(thread)}")
        except DBAPIError:
            pass  # it ended meanwhile, or belongs to another user


def _copy_mysql(template: URL, target: URL) -> None:
    """Copy tables, views and rows from one MySQL/MariaDB database to another."""
    from sqlalchemy import text

    source = template.database or ""
    engine = _admin_engine(target)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            rows = conn.execute(
                text(
                    "SELECT table_name, table_type FROM information_schema.tables "
                    "WHERE table_schema = :db ORDER BY table_type, table_name"
                ),
                {"db": source},
            ).all()
            quote = conn.dialect.identifier_preparer.quote_identifier
            tables = [name for name, kind in rows if kind == "BASE TABLE"]
            views = [name for name, kind in rows if kind == "VIEW"]
            for name in tables:
                ddl = conn.exec_driver_sql(
                    f"SHOW CREATE TABLE {quote(source)}.{quote(name)}"
                ).one()[1]
                conn.exec_driver_sql(ddl)
                # Generated columns compute their own values.
                columns = ", ".join(
                    quote(column)
                    for (column,) in conn.execute(
                        text(
                            "SELECT column_name FROM information_schema.columns "
                            "WHERE table_schema = :db AND table_name = :table "
                            "AND COALESCE(generation_expression, '') = '' "
                            "ORDER BY ordinal_position"
                        ),
                        {"db": source, "table": name},
                    )
                )
                conn.exec_driver_sql(
                    f"INSERT INTO {quote(name)} ({columns}) SELECT {columns} "
                    f"FROM {quote(source)}.{quote(name)}"
                )
            _copy_views(conn, source, views)
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")
    finally:
        engine.dispose()


def _copy_views(conn: Connection, source: str, views: list[str]) -> None:
    """Create the views of ``source`` in the current database.

    A view can only be made after the views it reads from, so views that
    fail are tried again as long as each round makes at least one.
    """
    from sqlalchemy.exc import DBAPIError

    quote = conn.dialect.identifier_preparer.quote_identifier
    waiting = list(views)
    while waiting:
        failed: list[str] = []
        error: DBAPIError | None = None
        for name in waiting:
            ddl = conn.exec_driver_sql(
                f"SHOW CREATE VIEW {quote(source)}.{quote(name)}"
            ).one()[1]
            try:
                conn.exec_driver_sql(ddl.replace(f"{quote(source)}.", ""))
            except DBAPIError as exc:
                failed.append(name)
                error = exc
        if len(failed) == len(waiting):
            assert error is not None
            raise error
        waiting = failed


# --------------------------------------------------------------------------
# pointing an app at other databases


def _engine_tables(app: Flask) -> list[dict[Any, Any]]:
    """The mutable dicts of engines, by bind key, that the app reads engines from.

    Flask-SQLAlchemy and Flask-SQLAlchemy-Lite hand out the same dict on
    every access to ``db.engines``, so replacing its items is seen by
    sessions made afterwards and by the migration commands.
    """
    state = app_state(app)
    tables: list[dict[Any, Any]] = []
    if isinstance(state.engines, dict):
        tables.append(state.engines)
    elif state.engines is not None:
        raise TypeError(
            "Migrate(engines=<one engine>) cannot be pointed at a test database; "
            "pass engines as a dict ({None: engine}) to use the test fixtures"
        )
    db = state.db
    if db is not None and state.engines is None:
        with app.app_context():
            for attribute in ("engines", "async_engines"):
                engines = getattr(db, attribute, None)
                if isinstance(engines, dict) and engines:
                    tables.append(engines)
    if not tables:
        raise RuntimeError(
            "cannot find the app's engines to point them at a test database "
            "(use Flask-SQLAlchemy, Flask-SQLAlchemy-Lite or Migrate(engines={...}))"
        )
    return tables


def _config_binds(app: Flask) -> list[str | None] | None:
    """The bind keys of a Flask-SQLAlchemy 2.x app; None for other apps.

    Flask-SQLAlchemy 2.x has no ``db.engines``: it makes each engine from
    the URL in ``app.config``, and makes it again when that URL changes,
    which is how it is pointed at another database (:func:`_use_config_urls`).
    """
    state = app_state(app)
    db = state.db
    if (
        state.engines is not None
        or db is None
        or hasattr(type(db), "engines")
        or not callable(getattr(db, "get_engine", None))
    ):
        return None
    return [None, *(app.config.get("SQLALCHEMY_BINDS") or {})]


def _config_engines(app: Flask, keys: list[str | None]) -> dict[str | None, Any]:
    db = app_state(app).db
    with app.app_context():
        return {key: db.get_engine(bind=key) for key in keys}


@contextmanager
def _use_config_urls(
    app: Flask, keys: list[str | None], urls: Mapping[str | None, URL]
) -> Iterator[None]:
    """:func:`use_databases` for Flask-SQLAlchemy 2.x: through ``app.config``."""
    config = app.config
    old = _config_engines(app, keys)
    saved = {
        name: config.get(name)
        for name in ("SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_BINDS")
    }
    binds = dict(saved["SQLALCHEMY_BINDS"] or {})

    def pointed(key: str | None) -> str:
        url = urls[key].set(drivername=old[key].url.drivername)
        return url.render_as_string(hide_password=False)

    try:
        if None in urls:
            config["SQLALCHEMY_DATABASE_URI"] = pointed(None)
        for key in binds:
            if key in urls:
                binds[key] = pointed(key)
        if saved["SQLALCHEMY_BINDS"] is not None:
            config["SQLALCHEMY_BINDS"] = binds
        yield
    finally:
        _end_session(app)
        made = _config_engines(app, [key for key in keys if key in urls])
        config.update(saved)
        for engine in made.values():
            if all(engine is not original for original in old.values()):
                _dispose(engine)


def app_urls(app: Flask) -> dict[str | None, URL]:
    """The URL of each of the app's engines, by bind key (``None``: default)."""
    from .databases import as_mapping

    keys = _config_binds(app)
    if keys is not None:
        return {key: engine.url for key, engine in _config_engines(app, keys).items()}

    urls: dict[str | None, URL] = {}
    for table in _engine_tables(app):
        for key, engine in (as_mapping(table) or {}).items():
            urls.setdefault(key, engine.url)
    return urls


def _new_engine(old: Any, url: URL) -> Any:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    if getattr(old, "sync_engine", None) is not None:
        from sqlalchemy.ext.asyncio import create_async_engine

        return create_async_engine(url, poolclass=NullPool)
    return create_engine(url, poolclass=NullPool)


@contextmanager
def use_databases(app: Flask, urls: Mapping[str | None, URL]) -> Iterator[None]:
    """Point the app's engines at other databases for the duration of the block.

    ``urls`` maps bind keys (``None`` for the default database) to the
    databases to use; engines of other binds are left alone. The engines
    made for the block are disposed of at the end and the app's own engines
    put back.
    """
    from .databases import DEFAULT_KEYS

    keys = _config_binds(app)
    if keys is not None:
        with _use_config_urls(app, keys, urls):
            yield
        return
    restore: list[tuple[dict[Any, Any], Any, Any]] = []
    made: list[Any] = []
    try:
        for table in _engine_tables(app):
            for key in list(table):
                bind = None if key in DEFAULT_KEYS else key
                if bind not in urls:
                    continue
                old = table[key]
                new = _new_engine(old, urls[bind].set(drivername=old.url.drivername))
                made.append(new)
                restore.append((table, key, old))
                table[key] = new
        yield
    finally:
        _end_session(app)
        for table, key, old in reversed(restore):
            table[key] = old
        for engine in made:
            _dispose(engine)


def _end_session(app: Flask) -> None:
    """Close the app's Flask-SQLAlchemy session in an app context left pushed.

    A test that keeps an app context around its fixtures also keeps its
    session's connection to the database about to be dropped: the drop
    would wait for it (MySQL) or cut it under the session (PostgreSQL), and
    the session would go on using a database that no longer exists.
    """
    from flask import current_app, has_app_context

    db = app_state(app).db
    # Flask-SQLAlchemy's scoped session is an instance attribute; the
    # session of Flask-SQLAlchemy-Lite, a property, ends with the context.
    remove = getattr(getattr(db, "__dict__", {}).get("session"), "remove", None)
    if callable(remove) and has_app_context() and current_app.name == app.name:
        remove()


def _dispose(engine: Any) -> None:
    sync_engine = getattr(engine, "sync_engine", None)
    # An async engine with a NullPool holds no connections once its
    # connections are closed; disposing of the sync side needs no loop.
    (sync_engine or engine).dispose()


# --------------------------------------------------------------------------
# databases at the heads, made once and copied


def _repository_fingerprint(path: str) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and times of the repository's files: changes when they do."""
    found = []
    for root, folders, files in os.walk(path):
        folders[:] = [f for f in folders if f != "__pycache__"]
        for name in files:
            if name.endswith((".py", ".mako", ".ini")):
                stat = os.stat(os.path.join(root, name))
                found.append((os.path.join(root, name), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(found))


class MigratedDatabases:
    """Databases migrated to the heads, built once and then copied.

    The first :meth:`copy` for an app upgrades new, empty databases (the
    templates) to the heads; every call then returns fresh copies of them.
    Templates are rebuilt when the app's database URLs or the repository's
    files change, so a test session that edits revisions never gets a
    stale schema.
    """

    def __init__(self, workdir: str | os.PathLike[str]) -> None:
        self.workdir = Path(workdir)
        self._templates: dict[Any, dict[str | None, URL]] = {}
        self._failures: dict[Any, Exception] = {}
        self._copies: dict[tuple[str | None, str], DatabaseCopies] = {}

    def _servers(self, app: Flask) -> dict[str | None, DatabaseCopies]:
        servers = {}
        for key, url in app_urls(app).items():
            server_key = (key, url.render_as_string(hide_password=False))
            if server_key not in self._copies:
                self._copies[server_key] = DatabaseCopies(url, self.workdir)
            servers[key] = self._copies[server_key]
        return servers

    def template(
        self, app: Flask, directory: str | os.PathLike[str] | None = None
    ) -> dict[str | None, URL]:
        """The template databases for ``app``, upgraded to the heads on first use."""
        from .commands import upgrade
        from .state import repository

        servers = self._servers(app)
        with app.app_context():
            path = os.path.abspath(repository(directory))
        key = (
            path,
            tuple(sorted((str(k), str(s.url)) for k, s in servers.items())),
            _repository_fingerprint(path),
        )
        found = self._templates.get(key)
        if found is not None:
            return found
        failure = self._failures.get(key)
        if failure is not None:
            # The same history would fail the same way for every test.
            raise failure
        urls = {bind: copies.empty("template") for bind, copies in servers.items()}
        try:
            with use_databases(app, urls), app.app_context():
                upgrade(directory, "heads")
            self._templates[key] = urls
        except Exception as exc:
            self._failures[key] = exc
            raise
        finally:
            if key not in self._templates:
                for bind, url in urls.items():
                    servers[bind].drop(url)
        return urls

    def copy(
        self, app: Flask, directory: str | os.PathLike[str] | None = None
    ) -> dict[str | None, URL]:
        """New databases at the heads for each of the app's databases."""
        templates = self.template(app, directory)
        servers = self._servers(app)
        return {
            bind: servers[bind].copy(url, "test") for bind, url in templates.items()
        }

    def drop(self, app: Flask, urls: Mapping[str | None, URL]) -> None:
        """Drop databases returned by :meth:`copy`."""
        servers = self._servers(app)
        for bind, url in urls.items():
            servers[bind].drop(url)

    def close(self) -> None:
        """Drop the templates and anything else made here."""
        for copies in self._copies.values():
            copies.drop_all()
        self._templates.clear()


# --------------------------------------------------------------------------
# comparing schemas


def schema_snapshot(
    connection: Connection, version_table: str = "alembic_version"
) -> dict[str, Any]:
    """Describe a database's schema as plain data, for comparing two states.

    Tables (except the version table) with their columns, primary key,
    foreign keys, indexes, unique and check constraints and comments; views;
    and on PostgreSQL the app's other schemas (their tables keyed
    ``schema.table``), enum types and sequences. Two snapshots are equal when
    the schemas are the same as far as a migration could tell.
    """
    from sqlalchemy import inspect

    inspector = inspect(connection)
    tables: dict[str, Any] = {}

    def optional(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except NotImplementedError:
            return None

    schemas: list[str | None] = [None]
    if connection.dialect.name == "postgresql":
        # Tables a revision makes in another schema must vanish on
        # downgrade too; PostgreSQL's own schemas are not the app's.
        schemas += sorted(
            name
            for name in inspector.get_schema_names()
            if name != inspector.default_schema_name
            and name != "information_schema"
            and not name.startswith("pg_")
        )
    for schema in schemas:
        for name in sorted(inspector.get_table_names(schema=schema)):
            if name == version_table:
                continue
            key = name if schema is None else f"{schema}.{name}"
            tables[key] = _table_snapshot(inspector, name, schema, optional)
    views = [
        view if schema is None else f"{schema}.{view}"
        for schema in schemas
        for view in optional(inspector.get_view_names, schema) or []
    ]
    snapshot: dict[str, Any] = {"tables": tables, "views": sorted(views)}
    if connection.dialect.name == "postgresql":
        snapshot["schemas"] = schemas[1:]
        snapshot["enums"] = sorted(
            (e["schema"], e["name"], tuple(e["labels"]))
            for e in inspector.get_enums(schema="*")  # type: ignore[attr-defined]
        )
        snapshot["sequences"] = sorted(
            (schema or "", sequence)
            for schema in schemas
            for sequence in inspector.get_sequence_names(schema=schema)
        )
    return snapshot


def _table_snapshot(
    inspector: Any, name: str, schema: str | None, optional: Any
) -> dict[str, Any]:
    return {
        "columns": [
            {
                "name": column["name"],
                "type": str(column["type"]),
                "nullable": column["nullable"],
                "default": None
                if column.get("default") is None
                else str(column["default"]),
            }
            for column in inspector.get_columns(name, schema=schema)
        ],
        "primary_key": inspector.get_pk_constraint(name, schema=schema).get(
            "constrained_columns"
        ),
        "foreign_keys": sorted(
            (
                fk.get("name") or "",
                tuple(fk["constrained_columns"]),
                fk["referred_table"],
                tuple(fk["referred_columns"]),
            )
            for fk in inspector.get_foreign_keys(name, schema=schema)
        ),
        "indexes": sorted(
            (
                index.get("name") or "",
                tuple(str(c) for c in index["column_names"]),
                bool(index.get("unique")),
            )
            for index in inspector.get_indexes(name, schema=schema)
        ),
        "unique": sorted(
            (u.get("name") or "", tuple(u["column_names"]))
            for u in optional(inspector.get_unique_constraints, name, schema) or []
        ),
        "checks": sorted(
            (c.get("name") or "", str(c.get("sqltext")))
            for c in optional(inspector.get_check_constraints, name, schema) or []
        ),
        "comment": (optional(inspector.get_table_comment, name, schema) or {}).get(
            "text"
        ),
    }


def describe_difference(before: Any, after: Any) -> str:
    """Say how two schemas differ, one line per difference, for test failures.

    ``before`` and ``after`` are :func:`schema_snapshot` results, or dicts of
    them by bind key.
    """
    lines: list[str] = []
    _differences(before, after, [], lines)
    return "\n".join(lines)


_SINGULAR = {"tables": "table", "columns": "column", "views": "views"}


def _label(path: list[str]) -> str:
    words = [_SINGULAR.get(part, part) for part in path if part]
    return " ".join(words) or "schema"


def _differences(before: Any, after: Any, path: list[str], lines: list[str]) -> None:
    if before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            here = [*path, "" if key is None else str(key)]
            if key not in after:
                lines.append(f"  {_label(here)}: there before, gone after")
            elif key not in before:
                lines.append(f"  {_label(here)}: not there before, there after")
            else:
                _differences(before[key], after[key], here, lines)
        return
    if (
        isinstance(before, list)
        and isinstance(after, list)
        and all(isinstance(item, dict) and "name" in item for item in before + after)
    ):
        old = {item["name"]: item for item in before}
        new = {item["name"]: item for item in after}
        for name in [*old, *(n for n in new if n not in old)]:
            if name not in new:
                lines.append(f"  {_label(path)} {name}: there before, gone after")
            elif name not in old:
                lines.append(f"  {_label(path)} {name}: not there before, there after")
            elif old[name] != new[name]:
                lines.append(
                    f"  {_label(path)} {name}: before {old[name]}, after {new[name]}"
                )
        return
    lines.append(f"  {_label(path)}: before {before!r}, after {after!r}")


# --------------------------------------------------------------------------
# running migrations step by step


class Migrator:
    """Runs an app's migrations on throwaway databases, step by step.

    Meant for testing data migrations: upgrade to the revision before the
    one under test, insert rows, upgrade once more, look at the rows::

        migrator.upgrade("1a2b3c")
        migrator.execute("INSERT INTO item (name) VALUES ('ann')")
        migrator.upgrade("4d5e6f")
        assert migrator.execute("SELECT slug FROM item").scalar() == "ann"

    While it is active (``with migrator:``, which the pytest fixture does),
    the app's engines point at its databases, one per database of the app,
    empty at the start.
    """

    def __init__(
        self,
        app: Flask,
        directory: str | os.PathLike[str] | None = None,
        workdir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.app = app
        self.directory = directory
        self._workdir = Path(workdir) if workdir else None
        self._stack = ExitStack()
        self._copies: dict[str | None, DatabaseCopies] = {}
        #: The URL of the database of each bind key (``None``: default).
        self.urls: dict[str | None, URL] = {}

    def __enter__(self) -> Migrator:
        if self._workdir is None:
            self._workdir = Path(
                self._stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="flask-migrate-alt-")
                )
            )
        for key, url in app_urls(self.app).items():
            copies = DatabaseCopies(url, self._workdir)
            self._copies[key] = copies
            self._stack.callback(copies.drop_all)
            self.urls[key] = copies.empty("migrator")
        self._stack.enter_context(use_databases(self.app, self.urls))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def reset(self) -> None:
        """Start again from empty databases."""
        with self.app.app_context():
            for engine in _engine_values(self.app):
                _dispose(engine)
        for key, copies in self._copies.items():
            copies.drop(self.urls[key])
            self.urls[key] = copies.empty("migrator")
        self._stack.enter_context(use_databases(self.app, self.urls))

    def upgrade(self, revision: str = "heads") -> list[str]:
        """Upgrade to ``revision``; return the ids applied."""
        from .commands import upgrade

        with self.app.app_context():
            return upgrade(self.directory, revision)

    def downgrade(self, revision: str = "-1") -> list[str]:
        """Downgrade to ``revision``; return the ids undone."""
        from .commands import downgrade

        with self.app.app_context():
            return downgrade(self.directory, revision)

    def current(self, bind: str | None = None) -> tuple[str, ...]:
        """The revision ids the database of ``bind`` is at (empty: none)."""
        with self.app.app_context():
            options = version_options()
        # A synchronous connection of its own: the app's engine may be async.
        with self.connect(bind) as connection:
            return current_heads(connection, options)

    @contextmanager
    def connect(self, bind: str | None = None) -> Iterator[Connection]:
        """A connection to the database of ``bind``, committed when the block ends."""
        with connect(self.urls[bind]) as connection:
            yield connection

    def execute(
        self, statement: Any, parameters: Any = None, bind: str | None = None
    ) -> Any:
        """Run one statement (SQL text or SQLAlchemy) and return its buffered result."""
        from sqlalchemy import text

        if isinstance(statement, str):
            statement = text(statement)
        with self.connect(bind) as connection:
            return connection.execute(statement, parameters).freeze()()

    def insert(
        self,
        table: str,
        rows: list[dict[str, Any]] | dict[str, Any],
        bind: str | None = None,
    ) -> None:
        """Insert rows into a table as it is now (reflected, not the models)."""
        from sqlalchemy import MetaData, Table

        with self.connect(bind) as connection:
            reflected = Table(table, MetaData(), autoload_with=connection)
            connection.execute(
                reflected.insert(), rows if isinstance(rows, list) else [rows]
            )

    def snapshot(self, bind: str | None = None) -> dict[str, Any]:
        """:func:`schema_snapshot` of the database of ``bind``."""
        with self.connect(bind) as connection:
            return schema_snapshot(connection, _version_table(self.app))


def _engine_values(app: Flask) -> list[Any]:
    keys = _config_binds(app)
    if keys is not None:
        return list(_config_engines(app, keys).values())
    return [engine for table in _engine_tables(app) for engine in table.values()]


def _version_table(app: Flask) -> str:
    with app.app_context():
        return str(version_options().get("version_table", "alembic_version"))


def version_options() -> dict[str, Any]:
    """The app's ``version_table``/``version_table_schema`` options, where set.

    Needs an app context.
    """
    from .databases import context_options

    options = context_options()
    return {
        key: options[key]
        for key in ("version_table", "version_table_schema")
        if options.get(key)
    }


def current_heads(connection: Connection, options: dict[str, Any]) -> tuple[str, ...]:
    """The revisions the database of ``connection`` is at (empty: none)."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts=options)
    return tuple(context.get_current_heads())


@contextmanager
def connect(url: URL) -> Iterator[Connection]:
    """A connection of its own to ``url``, synchronous even for an async URL.

    Committed when the block ends; its engine is disposed of either way.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(_sync_url(url), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()
