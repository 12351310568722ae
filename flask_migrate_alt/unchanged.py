"""Not comparing again the tables autogenerate already found unchanged.

Autogenerate spends most of its time in Alembic's Python comparison of each
table of the models with the same table reflected from the database. Most
runs of ``flask db check`` or ``flask db migrate`` find most tables exactly
as they were last time, and the comparison is a pure function of two
things: what reflection returns for the table, and the model's ``Table``
(under the same options and versions). This module remembers, for every
table a comparison found no difference in, a digest of both; when the next
comparison sees the same digest, the table is left out of it with
Alembic's own ``include_name``/``include_object`` hooks, exactly as if it
had been compared and found equal.

Soundness comes before speed:

* the database side is what SQLAlchemy's reflection itself returns, read in
  bulk for the digest (see :mod:`flask_migrate_alt.reflection`), so any
  change in the database changes the digest;
* the model side covers every attribute of a table, column, constraint and
  index that Alembic compares, and a table holding anything this module
  does not know (a type or a constraint class from outside SQLAlchemy, an
  object whose text has no stable form) is always compared;
* anything that could make the comparison itself behave differently turns
  the whole thing off: ``include_name``/``include_object`` hooks of the app,
  callable ``compare_type``/``compare_server_default``, third-party
  comparators or plugins, another migration implementation for the dialect.
  Versions, the server version, the default schema and the options are
  part of every digest.

With no digest to go by (a first run, a fresh CI checkout), a table is
also left out when the rows bulk reflection read for it and the
model's table are the same in every attribute Alembic compares (see
:mod:`flask_migrate_alt.equal_tables`); its digest is then remembered too.

The digests are kept in ``<migrations>/__pycache__``; deleting the file, or
``FLASK_DB_COMPARE_CACHE=0``/``app.config["MIGRATE_COMPARE_CACHE"] = False``,
makes every table compared again by Alembic.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .equal_tables import given_options, sqlalchemy_type
from .errors import log
from .reflection import digest, table_fingerprints, table_rows

__all__ = ["UnchangedTables", "enabled", "leaving_out_unchanged"]

#: The file of digests, in the ``__pycache__`` folder of the repository.
FILE_NAME = "flask_migrate_alt.unchanged.json"

#: At most this many digests are kept (the newest).
LIMIT = 20_000

_FORMAT = 1


def enabled(config: Any) -> bool:
    """Whether the app and the environment allow the cache (both default to yes)."""
    if os.environ.get("FLASK_DB_COMPARE_CACHE", "1").strip().lower() in (
        "0",
        "false",
        "no",
        "off",
    ):
        return False
    return bool(config.get("MIGRATE_COMPARE_CACHE", True))


# --------------------------------------------------------------------------
# the model side


class _Unknown(Exception):
    """Something in a table has no stable text: the table is always compared."""


class _ModelText:
    """The text of model tables, compiled as Alembic compiles them for ``dialect``."""

    def __init__(self, dialect: Any) -> None:
        self.dialect = dialect

    def clause(self, value: Any) -> Any:
        """SQL expressions as the SQL Alembic compares, literal values included.

        Their repr shows only the object's address, and ``str()`` leaves
        bound values out (``:param_1``).
        """
        from sqlalchemy.exc import SQLAlchemyError
        from sqlalchemy.sql.elements import ClauseElement

        if isinstance(value, ClauseElement):
            try:
                compiled = value.compile(
                    dialect=self.dialect, compile_kwargs={"literal_binds": True}
                )
            except (SQLAlchemyError, TypeError, NotImplementedError) as exc:
                raise _Unknown(str(exc)) from exc
            return ("sql", str(compiled))
        if isinstance(value, dict):
            return sorted((str(k), self.clause(v)) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return [self.clause(item) for item in value]
        return value

    def options(self, item: Any) -> Any:
        """The dialect options given to ``item`` (see :func:`.given_options`)."""
        return self.clause(given_options(item))

    def type_text(self, type_: Any) -> tuple[str, str, str]:
        """Class, repr and DDL of a type that is, with every type inside, SQLAlchemy's.

        A type from elsewhere may compare itself with the database in its
        own way (``compare_against_backend``), which no digest can capture.
        The repr misses some settings (variants, an interval's precision);
        the DDL for the dialect, which Alembic compares, has them.
        """
        from sqlalchemy.exc import SQLAlchemyError
        from sqlalchemy.types import NullType

        if not sqlalchemy_type(type_):
            raise _Unknown(type(type_).__qualname__)
        if isinstance(type_, NullType):
            raise _Unknown("NullType")
        try:
            ddl = type_.compile(dialect=self.dialect)
        except (SQLAlchemyError, TypeError, NotImplementedError) as exc:
            raise _Unknown(str(exc)) from exc
        return (type(type_).__qualname__, repr(type_), ddl)

    def default(self, default: Any) -> Any:
        if default is None:
            return None
        return (
            type(default).__qualname__,
            self.clause(getattr(default, "arg", None)),
            getattr(default, "for_update", None),
        )

    def constraint(self, constraint: Any) -> Any:
        kind = _schema_object(
            constraint,
            (
                "PrimaryKeyConstraint",
                "UniqueConstraint",
                "ForeignKeyConstraint",
                "CheckConstraint",
            ),
        )
        parts = [
            kind,
            str(constraint.name) if constraint.name is not None else None,
            # Iterating, not .columns: that memoizes a collection on every
            # model constraint, for the life of the process.
            [column.name for column in constraint],
            constraint.deferrable,
            constraint.initially,
            getattr(constraint, "comment", None),
            self.options(constraint),
        ]
        if kind == "ForeignKeyConstraint":
            parts += [
                [(e.parent.name, _target(e)) for e in constraint.elements],
                constraint.onupdate,
                constraint.ondelete,
                constraint.match,
                constraint.use_alter,
            ]
        elif kind == "CheckConstraint":
            parts.append(self.clause(constraint.sqltext))
        return parts

    def index(self, index: Any) -> Any:
        from sqlalchemy import Column

        _schema_object(index, ("Index",))
        expressions = list(index.expressions)
        if not all(isinstance(e, Column) for e in expressions):
            # Alembic may warn about expression indexes (operator classes,
            # SQLite), and a skipped table would no longer warn.
            raise _Unknown("an expression index")
        return [
            str(index.name) if index.name is not None else None,
            index.unique,
            [column.name for column in expressions],
            self.options(index),
        ]

    def table(self, table: Any) -> str:
        """Everything of a model ``Table`` that Alembic's comparison can look at.

        Raises :class:`_Unknown` for a table that must always be compared.
        """
        metadata = table.metadata
        # Resolving the foreign keys first also settles the types of columns
        # that take theirs from the column they point to.
        targets = {id(fk): _target(fk) for fk in table.foreign_keys}
        autoincrement = table.autoincrement_column
        parts: list[Any] = [
            table.name,
            table.schema,
            table.comment,
            self.options(table),
            self.clause(
                dict(metadata.naming_convention) if metadata is not None else None
            ),
            autoincrement.name if autoincrement is not None else None,
        ]
        for column in table.columns:
            if column.computed is not None:
                # Alembic warns that a computed default cannot be changed.
                raise _Unknown("a computed column")
            default = column.default
            parts.append(
                (
                    column.name,
                    column.key,
                    self.type_text(column.type),
                    column.nullable,
                    getattr(column, "_user_defined_nullable", None),
                    column.primary_key,
                    column.autoincrement,
                    column.system,
                    column.comment,
                    column.index,
                    column.unique,
                    None if default is None else type(default).__qualname__,
                    self.default(column.server_default),
                    self.default(column.server_onupdate),
                    _generated(column.identity),
                    self.options(column),
                    sorted(repr(targets[id(fk)]) for fk in column.foreign_keys),
                )
            )
        parts.append(sorted(repr(self.constraint(c)) for c in table.constraints))
        parts.append(sorted(repr(self.index(i)) for i in table.indexes))
        text = repr(parts)
        if " at 0x" in text:
            raise _Unknown(table.name)  # an object with no stable text
        return text


def _schema_object(value: Any, names: tuple[str, ...]) -> Any:
    """Check that ``value`` is one of SQLAlchemy's own schema classes ``names``."""
    kind = type(value)
    if kind.__module__ != "sqlalchemy.sql.schema" or kind.__name__ not in names:
        raise _Unknown(kind.__qualname__)
    return kind.__name__


def _target(foreign_key: Any) -> Any:
    """The column a ``ForeignKey`` points to, as Alembic compares it: by names.

    ``target_fullname`` alone is not enough: it may use the column's key,
    and a column type taken from the target is only known once resolved.
    """
    from sqlalchemy.exc import SQLAlchemyError

    try:
        column = foreign_key.column
    except SQLAlchemyError:
        return ("unresolved", foreign_key.target_fullname)
    return (column.table.schema, column.table.name, column.name)


def _generated(value: Any) -> Any:
    """An ``Identity``: its public attributes."""
    if value is None:
        return None
    kind = _schema_object(value, ("Identity",))
    return (
        kind,
        sorted(
            (key, repr(item))
            for key, item in vars(value).items()
            if not key.startswith("_") and key not in ("column", "dispatch")
        ),
    )


def model_text(table: Any, dialect: Any) -> str:
    """Everything of a model ``Table`` Alembic compares, for ``dialect``.

    Raises :class:`_Unknown` for a table that must always be compared.
    """
    return _ModelText(dialect).table(table)


# --------------------------------------------------------------------------
# the options


def _ours(hook: Any) -> bool:
    """Whether ``hook`` is None, or one of ours wrapping no hook of the app."""
    if hook is None:
        return True
    return bool(getattr(hook, "flask_migrate_alt_exclusion", False)) and (
        getattr(hook, "wraps", None) is None
    )


def _why_not(connection: Any, args: dict[str, Any]) -> str | None:
    """The reason the cache cannot be used with these options, or ``None``."""
    if connection.dialect.name not in ("postgresql", "sqlite"):
        return "no bulk reflection for this database"
    if args.get("target_metadata") is None:
        return "no target_metadata"
    for name in ("include_name", "include_object"):
        if not _ours(args.get(name)):
            return f"the app's {name} hook"
    for name in ("compare_type", "compare_server_default"):
        if callable(args.get(name)):
            return f"a callable {name}"
    if "include_symbol" in args:
        return "include_symbol"
    plugins = args.get("autogenerate_plugins")
    if plugins is not None and any(
        not str(p).startswith("alembic.autogenerate.") for p in plugins
    ):
        return "autogenerate plugins"
    if not _only_alembic_comparisons(plugins):
        return "autogenerate plugins"
    from sqlalchemy import MetaData, Table

    if Table("probe", MetaData()).dispatch.column_reflect:
        # Listeners for every table change what reflection gives Alembic.
        return "column_reflect listeners"
    try:
        from alembic.autogenerate.compare import comparators
        from alembic.ddl.impl import _impls

        if any(comparators._registry.values()):
            return "third-party comparators"
        impl = _impls.get(connection.dialect.name)
        if impl is None or not impl.__module__.startswith("alembic."):
            return "a third-party migration implementation"
    except (ImportError, AttributeError):
        return "an Alembic version this cache does not know"
    return None


def _side_by_side(connection: Any, args: dict[str, Any]) -> Any:
    """A :class:`~.equal_tables.TableComparison` if these options allow one."""
    import alembic

    from .equal_tables import TableComparison

    compare_type = args.get("compare_type", True)
    defaults = args.get("compare_server_default", False)
    version = tuple(int(part) for part in alembic.__version__.split(".")[:2])
    if (
        connection.dialect.name not in ("postgresql", "sqlite")
        # Alembic leaves server defaults alone only for False itself (0
        # compares them; None too, given to a MigrationContext directly,
        # though configure() drops it); on PostgreSQL it compares them by
        # running SQL.
        or defaults is not False
        or not isinstance(compare_type, bool)
        # The comparison this was checked against (alembic.autogenerate.compare).
        or version < (1, 18)
    ):
        return None
    return TableComparison(connection.dialect, compare_type=compare_type)


#: The autogenerate plugins Alembic itself sets up (1.18 and later).
_ALEMBIC_PLUGINS = frozenset(
    f"alembic.autogenerate.{name}"
    for name in ("schemas", "tables", "types", "constraints", "defaults", "comments")
)


def _only_alembic_comparisons(plugins: Any) -> bool:
    """Whether the plugins ``autogenerate_plugins`` selects are Alembic's default ones.

    A name under ``alembic.autogenerate.`` may still be another plugin: an
    old name Alembic translates (``checkconstraint_byname``), or a plugin
    an app registered under such a name, which the default wildcard picks
    up. So the selection is made the way Alembic makes it, with its own
    (private) helpers, and checked against the plugins it ships enabled.
    """
    try:
        from alembic.runtime import plugins as registry
    except ImportError:
        return True  # before Alembic 1.18: no plugins, only comparators
    try:
        translate = getattr(registry, "_translate_legacy_name", lambda name: name)
        names = [str(name) for name in plugins or ["alembic.autogenerate.*"]]
        include = [
            registry._make_re(translate(name))
            for name in names
            if not name.startswith("~")
        ]
        exclude = [
            registry._make_re(translate(name[1:]))
            for name in names
            if name.startswith("~")
        ]
        selected = {
            name
            for name in registry._all_plugins
            if any(pattern.match(name) for pattern in include)
            and not any(pattern.match(name) for pattern in exclude)
        }
    except (AttributeError, ValueError, TypeError):
        return False
    return selected <= _ALEMBIC_PLUGINS


def _global_text(connection: Any, args: dict[str, Any]) -> str:
    import alembic
    import sqlalchemy

    from . import __version__

    dialect = connection.dialect
    hook = args.get("include_name")
    options = {
        key: args.get(key)
        for key in (
            "compare_type",
            "compare_server_default",
            "include_schemas",
            "version_table",
            "version_table_schema",
            "autogenerate_plugins",
        )
    }
    return repr(
        (
            _FORMAT,
            __version__,
            alembic.__version__,
            sqlalchemy.__version__,
            dialect.name,
            dialect.driver,
            dialect.server_version_info,
            dialect.default_schema_name,
            dialect.max_identifier_length,
            sorted(options.items()),
            getattr(hook, "patterns", None),
        )
    )


# --------------------------------------------------------------------------
# the cache


class _Store:
    """The digests of the tables found unchanged, in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digests: dict[str, None] | None = None

    def digests(self) -> dict[str, None]:
        if self._digests is None:
            self._digests = {}
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if data.get("format") == _FORMAT:
                    self._digests = dict.fromkeys(str(d) for d in data["digests"])
            except (OSError, ValueError, AttributeError, KeyError, TypeError):
                pass  # no file yet, or not ours: start empty
        return self._digests

    def add(self, new: Iterable[str]) -> None:
        new = [d for d in new if d not in self.digests()]
        if not new:
            return
        # Another process may have written since: keep its digests too.
        self._digests = None
        merged = self.digests()
        merged.update(dict.fromkeys(new))
        kept = list(merged)[-LIMIT:]
        self._digests = dict.fromkeys(kept)
        try:
            self.path.parent.mkdir(exist_ok=True)
            temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            temporary.write_text(
                json.dumps({"format": _FORMAT, "digests": kept}), encoding="utf-8"
            )
            os.replace(temporary, self.path)
        except OSError:
            pass  # a read-only checkout simply goes without the cache


class UnchangedTables:
    """Leave out of one database's comparison the tables found unchanged before.

    Made for one connection while autogenerate runs on it:
    :meth:`install` wraps the ``include_name``/``include_object`` hooks of
    the ``context.configure()`` arguments, and :meth:`record` is given the
    ``UpgradeOps`` the comparison produced (before any
    ``process_revision_directives`` hook of the app changes them).
    """

    def __init__(self, directory: str, connection: Any, args: dict[str, Any]) -> None:
        self.connection = connection
        self.reason = _why_not(connection, args)
        self.store = _Store(Path(directory) / "__pycache__" / FILE_NAME)
        self._args = args
        self._global: str | None = None
        self._models: dict[tuple[str | None, str], Any] = {}
        self._database: dict[str | None, dict[str, str]] = {}
        self._digests: dict[tuple[str | None, str], str | None] = {}
        self._texts = _ModelText(connection.dialect)
        # PostgreSQL compares server defaults by running SQL whose answer may
        # depend on more than the two texts (the time, the role, functions).
        self._defaults_run_sql = connection.dialect.name == "postgresql" and bool(
            args.get("compare_server_default")
        )
        self._same = _side_by_side(connection, args) if self.reason is None else None
        self._rows: dict[str | None, Callable[[str], Any] | None] = {}
        #: Tables left out of the comparison.
        self.skipped: set[tuple[str | None, str]] = set()
        #: Of those, the ones seen to be the same as the database's rows.
        self.seen_same: set[tuple[str | None, str]] = set()
        #: Tables the comparison looked at.
        self.compared: set[tuple[str | None, str]] = set()
        if self.reason is not None:
            log.debug("every table is compared: %s", self.reason)

    # -- keys

    def _key(self, table: Any) -> tuple[str | None, str]:
        schema = table.schema
        if schema == self.connection.dialect.default_schema_name:
            schema = None
        return (schema, table.name)

    def _reflected(self, schema: str | None) -> dict[str, str]:
        """Table name -> digest of what reflection returns for it, for ``schema``.

        Read when the comparison starts: the bulk catalog rows are handed
        to Alembic afterwards.
        """
        if schema in self._database:
            return self._database[schema]
        if self._global is None:
            self._global = _global_text(self.connection, self._args)
            metadata = self._args["target_metadata"]
            for item in metadata if isinstance(metadata, (list, tuple)) else [metadata]:
                for table in item.tables.values():
                    key = self._key(table)
                    # Two model tables for one name: leave both to Alembic.
                    self._models[key] = None if key in self._models else table
        found = table_fingerprints(
            self.connection, schema, with_defaults=not self._defaults_run_sql
        )
        self._database[schema] = found or {}
        return self._database[schema]

    def _table_digest(self, schema: str | None, name: str) -> str | None:
        """The digest of both sides of one table, or None if it is always compared."""
        key = (schema, name)
        if key in self._digests:
            return self._digests[key]
        found = None
        database = self._reflected(schema).get(name)
        table = self._models.get(key)
        if database is not None and table is not None:
            if not (
                self._defaults_run_sql
                and any(column.server_default for column in table.columns)
            ):
                try:
                    model = self._texts.table(table)
                except _Unknown:
                    pass
                else:
                    found = digest(str(self._global), database, model)
        self._digests[key] = found
        return found

    def _seen_same(self, schema: str | None, name: str) -> bool:
        """Whether the table is, without Alembic, the same as the database's."""
        if self._same is None or self._reflected(schema).get(name) is None:
            # No fingerprint: a table Alembic or SQLAlchemy warns about.
            return False
        table = self._models.get((schema, name))
        if schema not in self._rows:
            self._rows[schema] = table_rows(self.connection, schema)
        rows = self._rows[schema]
        found = rows(name) if rows is not None and table is not None else None
        return found is not None and self._same.same(table, schema, found)

    # -- hooks

    def install(self, args: dict[str, Any]) -> None:
        """Wrap the hooks in ``args`` (a ``context.configure()`` argument dict)."""
        if self.reason is not None:
            return
        include_name = args.get("include_name")
        include_object = args.get("include_object")
        known = self.store.digests()

        def name_hook(name: Any, type_: str, parent_names: dict[str, Any]) -> bool:
            if include_name is not None and not include_name(name, type_, parent_names):
                return False
            if type_ == "table" and name is not None:
                schema = parent_names.get("schema_name")
                self._reflected(schema)
                # The model side only when there is something to find: a
                # first comparison computes it after comparing, when the
                # reflected tables no longer take memory.
                found = self._table_digest(schema, name) if known else None
                if found is not None and found in known:
                    self.skipped.add((schema, name))
                    return False
                if self._seen_same(schema, name):
                    self.skipped.add((schema, name))
                    self.seen_same.add((schema, name))
                    return False
            return True

        def object_hook(
            obj: Any, name: Any, type_: str, reflected: bool, compare_to: Any
        ) -> bool:
            if type_ == "table" and not reflected:
                key = self._key(obj)
                if compare_to is None and key in self.skipped:
                    return False
            if include_object is not None and not include_object(
                obj, name, type_, reflected, compare_to
            ):
                return False
            if type_ == "table" and not reflected and compare_to is not None:
                self.compared.add(self._key(obj))
            return True

        args["include_name"] = name_hook
        args["include_object"] = object_hook

    def record(self, upgrade_ops: Any) -> None:
        """Remember the compared tables ``upgrade_ops`` does not touch."""
        if self.reason is not None:
            return
        if self.skipped:
            log.info(
                "Skipped %d unchanged tables (compared %d); "
                "FLASK_DB_COMPARE_CACHE=0 compares them all",
                len(self.skipped),
                len(self.compared),
            )
        touched = _touched_tables(upgrade_ops.ops)
        if touched is None:
            return
        clean = []
        for schema, name in self.compared | self.seen_same:
            if (schema, name) in touched or (None, name) in touched:
                continue
            found = self._table_digest(schema, name)
            if found is not None:
                clean.append(found)
        self.store.add(clean)


def _touched_tables(ops: Iterable[Any]) -> set[tuple[str | None, str]] | None:
    """The (schema, table) of every top-level operation, or ``None``.

    Autogenerate puts what it finds in a table inside that table's
    ``ModifyTableOps``; an operation with no table at all makes the answer
    ``None``, and nothing is recorded.
    """
    touched: set[tuple[str | None, str]] = set()
    for op in ops:
        name = getattr(op, "table_name", None)
        if name is None:
            return None
        touched.add((getattr(op, "schema", None), name))
    return touched


def wrap_directives_hook(
    hook: Callable[..., Any] | None, tables: UnchangedTables
) -> Callable[..., Any]:
    """A ``process_revision_directives`` that records before ``hook`` runs."""

    def wrapped(context: Any, revision: Any, directives: list[Any]) -> None:
        if directives:
            # This database's operations: with several databases, each
            # comparison adds its own, named by its upgrade token.
            token = context.opts.get("upgrade_token", "upgrades")
            mine = [
                ops
                for ops in directives[0].upgrade_ops_list
                if ops.upgrade_token == token
            ]
            if len(mine) == 1:
                tables.record(mine[0])
        if hook is not None:
            hook(context, revision, directives)

    return wrapped


@contextmanager
def leaving_out_unchanged(
    context: Any, directory: str, metadata: Any
) -> Iterator[Callable[[Any], None]]:
    """The same for a comparison made on a ``MigrationContext`` directly.

    For the functions of the Python API that compare without running
    env.py (``compare_metadata()``, ``produce_migrations()``): the hooks go
    into the context's options for the length of the block, and the
    function yielded records from the ``UpgradeOps`` the comparison made.
    """
    from flask import current_app

    if not enabled(current_app.config):
        yield lambda upgrade_ops: None
        return
    options = context.opts
    args = dict(options, target_metadata=metadata)
    tables = UnchangedTables(directory, context.connection, args)
    tables.install(args)
    hooks = ("include_name", "include_object")
    saved = {name: options[name] for name in hooks if name in options}
    options.update({name: args[name] for name in hooks if name in args})
    try:
        yield tables.record
    finally:
        for name in hooks:
            options.pop(name, None)
        options.update(saved)
