"""The :class:`Migrate` extension: where the migrations live and for which database.

Registering the extension is on the path of every ``flask run`` and every
request worker start, so this module imports neither Alembic nor SQLAlchemy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .state import MigrateState

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy import MetaData

    from .config import Config

__all__ = ["Migrate"]

ConfigureCallback = Callable[["Config"], "Config"]


def _directory(value: str | os.PathLike[str]) -> str:
    return os.fspath(value)


def _timeouts(**values: float | None) -> None:
    """Refuse a timeout that is not a number of seconds, when it is given.

    A NaN lock timeout waited forever and a negative one was taken; the
    mistake belongs to the line that made the extension, not to a deploy.
    """
    from .locking import seconds

    for name, value in values.items():
        if value is not None:
            seconds(name, value, zero=name == "lock_timeout")


class Migrate:
    """Connect a Flask app and its database to an Alembic migration repository.

    :param app: the Flask app, or ``None`` to call :meth:`init_app` later.
    :param db: the Flask-SQLAlchemy ``SQLAlchemy`` object (or any object
        with ``engine``/``engines`` and ``metadata``/``metadatas``).
    :param directory: the migration repository, relative to the current
        working directory unless absolute.
    :param command: name of the ``flask`` command group; ``""`` or ``None``
        registers no command group.
    :param compare_type: let autogenerate detect column type changes.
    :param render_as_batch: write ``batch_alter_table`` operations, which
        SQLite needs to alter tables and other databases accept.
    :param metadata: the models' ``MetaData``, or a dict from bind key
        (``None`` or ``"default"`` for the default database) to ``MetaData``.
        Needed with Flask-SQLAlchemy-Lite or plain SQLAlchemy; Flask-SQLAlchemy
        provides it.
    :param engines: an ``Engine`` (or ``AsyncEngine``), or a dict from bind
        key to engine, for apps without a Flask SQLAlchemy extension.
    :param rev_id: a function returning the id of each new revision when
        ``--rev-id`` is not given (for example a timestamp).
    :param lock: take the migration lock in each database during
        ``upgrade``, ``downgrade`` and ``stamp``, so that concurrent deploys
        migrate once (see :doc:`/deploys`). ``FLASK_DB_LOCK=0`` turns it off.
    :param lock_timeout: seconds to wait for another process's migration to
        finish (default 300, 0 to try once; ``FLASK_DB_LOCK_TIMEOUT``
        overrides it).
    :param table_lock_timeout: seconds a migration statement may wait for a
        table lock held by the running app before failing (PostgreSQL
        ``lock_timeout``, MySQL/MariaDB ``lock_wait_timeout``).
    :param statement_timeout: seconds a migration statement may run
        (PostgreSQL ``statement_timeout``, MariaDB ``max_statement_time``).
        The three timeouts must be finite numbers of seconds, more than 0
        (``lock_timeout`` may be 0); anything else raises
        :class:`ValueError` here. ``None`` means the default (no limit for
        the last two).
    :param exclude_tables: table name patterns (``"legacy_*"``,
        ``"reports.*"``) autogenerate leaves alone: never created, altered
        or dropped. ``app.config["MIGRATE_EXCLUDE_TABLES"]`` adds more.
    :param exclude_schemas: schemas autogenerate leaves alone;
        ``app.config["MIGRATE_EXCLUDE_SCHEMAS"]`` adds more.
    :param exclude_system_tables: also leave alone the tables and schemas
        database extensions create (PostGIS's ``spatial_ref_sys`` and the
        like, see ``flask_migrate_alt.autogenerate.SYSTEM_TABLES``).
    :param kwargs: further keyword arguments for Alembic's
        ``context.configure()``, such as ``include_object`` or
        ``version_table``. ``app.config["ALEMBIC_CONTEXT"]`` overrides them.
    """

    def __init__(
        self,
        app: Flask | None = None,
        db: Any = None,
        directory: str | os.PathLike[str] = "migrations",
        command: str | None = "db",
        compare_type: bool = True,
        render_as_batch: bool = True,
        *,
        metadata: MetaData | Mapping[str | None, MetaData] | None = None,
        engines: Any = None,
        rev_id: Callable[[], str] | None = None,
        lock: bool = True,
        lock_timeout: float | None = None,
        table_lock_timeout: float | None = None,
        statement_timeout: float | None = None,
        exclude_tables: Sequence[str] = (),
        exclude_schemas: Sequence[str] = (),
        exclude_system_tables: bool = True,
        **kwargs: Any,
    ) -> None:
        _timeouts(
            lock_timeout=lock_timeout,
            table_lock_timeout=table_lock_timeout,
            statement_timeout=statement_timeout,
        )
        self.configure_callbacks: list[ConfigureCallback] = []
        self.exclude_tables = list(exclude_tables)
        self.exclude_schemas = list(exclude_schemas)
        self.exclude_system_tables = exclude_system_tables
        self.lock = lock
        self.lock_timeout = lock_timeout
        self.table_lock_timeout = table_lock_timeout
        self.statement_timeout = statement_timeout
        self.db = db
        self.metadata = metadata
        self.engines = engines
        self.rev_id = rev_id
        self.command = command
        self.directory = _directory(directory)
        self.alembic_ctx_kwargs: dict[str, Any] = dict(kwargs)
        self.alembic_ctx_kwargs["compare_type"] = compare_type
        self.alembic_ctx_kwargs["render_as_batch"] = render_as_batch
        if app is not None:
            self.init_app(app)

    def init_app(
        self,
        app: Flask,
        db: Any = None,
        directory: str | os.PathLike[str] | None = None,
        command: str | None = None,
        compare_type: bool | None = None,
        render_as_batch: bool | None = None,
        *,
        metadata: MetaData | Mapping[str | None, MetaData] | None = None,
        engines: Any = None,
        rev_id: Callable[[], str] | None = None,
        lock: bool | None = None,
        lock_timeout: float | None = None,
        table_lock_timeout: float | None = None,
        statement_timeout: float | None = None,
        exclude_tables: Sequence[str] | None = None,
        exclude_schemas: Sequence[str] | None = None,
        exclude_system_tables: bool | None = None,
        **kwargs: Any,
    ) -> None:
        """Register the extension on ``app``.

        Arguments left as ``None`` keep the values given to the
        constructor; pass ``command=""`` to skip the command group.
        """
        _timeouts(
            lock_timeout=lock_timeout,
            table_lock_timeout=table_lock_timeout,
            statement_timeout=statement_timeout,
        )
        overrides = {
            "db": db,
            "metadata": metadata,
            "engines": engines,
            "rev_id": rev_id,
            "lock": lock,
            "lock_timeout": lock_timeout,
            "table_lock_timeout": table_lock_timeout,
            "statement_timeout": statement_timeout,
            "exclude_tables": None if exclude_tables is None else list(exclude_tables),
            "exclude_schemas": None
            if exclude_schemas is None
            else list(exclude_schemas),
            "exclude_system_tables": exclude_system_tables,
        }
        for name, value in overrides.items():
            if value is not None:
                setattr(self, name, value)
        if directory is not None:
            self.directory = _directory(directory)
        if command is not None:
            self.command = command
        self.alembic_ctx_kwargs.update(kwargs)
        if compare_type is not None:
            self.alembic_ctx_kwargs["compare_type"] = compare_type
        if render_as_batch is not None:
            self.alembic_ctx_kwargs["render_as_batch"] = render_as_batch

        if self.command:
            from .cli import check_command_name
            from .cli import db as db_group

            check_command_name(app, self.command, db_group)

        # app.config["ALEMBIC"]["script_location"] (Flask-Alembic's setting)
        # picks this app's directory over the one given to Migrate.
        app_directory = (app.config.get("ALEMBIC") or {}).get("script_location")
        # Each app gets its own copy, so that one Migrate object shared by
        # several apps (an app factory called twice) keeps them apart.
        app.extensions["migrate"] = MigrateState(
            self,
            self.db,
            _directory(app_directory) if app_directory else self.directory,
            dict(self.alembic_ctx_kwargs),
            default_get_config=type(self).get_config is Migrate.get_config,
        )
        if self.command:
            app.cli.add_command(db_group, name=self.command)

    def configure(self, f: ConfigureCallback) -> ConfigureCallback:
        """Register ``f`` to adjust every Alembic ``Config`` before use.

        Use it as a decorator. Callbacks run in registration order; each
        receives the ``Config`` and must return it (or a replacement).
        """
        self.configure_callbacks.append(f)
        return f

    def call_configure_callbacks(self, config: Config) -> Config:
        """Run the :meth:`configure` callbacks on ``config`` and return it."""
        for callback in self.configure_callbacks:
            config = callback(config)
        return config

    def get_config(
        self,
        directory: str | os.PathLike[str] | None = None,
        x_arg: str | Sequence[str] | None = None,
        opts: Sequence[str] | None = None,
    ) -> Config:
        """Return the Alembic ``Config`` for the repository in ``directory``.

        :param directory: defaults to the extension's directory.
        :param x_arg: ``key=value`` strings that ``env.py`` reads with
            ``context.get_x_argument()``.
        :param opts: names of command-line flags to set on
            ``config.cmd_opts`` (for example ``["autogenerate"]``).
        """
        from flask import current_app, has_app_context

        from .config import apply_app_options, build_config

        if directory is None:
            directory = self.directory
        config = build_config(_directory(directory), x_arg=x_arg, opts=opts)
        if has_app_context():
            apply_app_options(config, current_app.config.get("ALEMBIC") or {})
        return self.call_configure_callbacks(config)
