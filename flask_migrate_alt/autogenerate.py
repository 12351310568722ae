"""Keeping autogenerate away from what the models do not own.

Autogenerate compares the models with everything it finds in the database
and proposes to drop what the models do not declare: tables another tool
manages, extension tables such as PostGIS's ``spatial_ref_sys``, whole
schemas. This module filters those out (``exclude_tables`` and
``exclude_schemas``), and points out the operations of a new revision that
destroy data, so that they are reviewed before they run.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import MetaData, Table

__all__ = [
    "SYSTEM_SCHEMAS",
    "SYSTEM_TABLES",
    "destructive_operations",
    "exclusion_hooks",
    "warn_destructive",
]

#: Tables created by database extensions (PostGIS, its raster and topology
#: support), left out of autogenerate unless ``exclude_system_tables=False``.
#: Only those the extensions made are left out: a model table of the same
#: name (in the same schema) is compared as usual.
SYSTEM_TABLES = (
    "spatial_ref_sys",
    "geometry_columns",
    "geography_columns",
    "raster_columns",
    "raster_overviews",
    "topology.layer",
    "topology.topology",
)

#: Schemas created by extensions (PostGIS's tiger geocoder and topology);
#: left out as long as no model table is in them.
SYSTEM_SCHEMAS = ("tiger", "tiger_data", "topology")


def _matches(name: str, schema: str | None, patterns: Iterable[str]) -> bool:
    qualified = f"{schema}.{name}" if schema else name
    return any(
        fnmatchcase(name, pattern) or fnmatchcase(qualified, pattern)
        for pattern in patterns
    )


def _any_match(name: str | None, patterns: Iterable[str]) -> bool:
    return name is not None and any(fnmatchcase(name, p) for p in patterns)


def exclusion_hooks(
    tables: Sequence[str],
    schemas: Sequence[str],
    system: bool,
    include_name: Callable[..., bool] | None = None,
    include_object: Callable[..., bool] | None = None,
    *,
    models: Callable[[], Iterable[MetaData]],
) -> tuple[Callable[..., bool], Callable[..., bool]]:
    """Return ``include_name`` and ``include_object`` hooks for ``context.configure``.

    ``tables`` are shell-style patterns (``"tmp_*"``, ``"audit.*"``) matched
    against the table name and against ``schema.name``; ``schemas`` are
    schema names (patterns too). Both leave out the database's tables and
    the models' alike. With ``system``, :data:`SYSTEM_TABLES` and
    :data:`SYSTEM_SCHEMAS` are left out of the database only, unless a
    model table (of any ``MetaData`` returned by ``models``) has that name.
    The hooks the app passed itself run after these, so they can exclude
    more but not bring an excluded table back.
    """
    system_tables = SYSTEM_TABLES if system else ()
    system_schemas = SYSTEM_SCHEMAS if system else ()

    # The hooks are made before it is known which databases a command runs
    # on, and most commands never call them: look the models up on first use.
    @functools.cache
    def model_tables() -> list[Table]:
        return [table for metadata in models() for table in metadata.tables.values()]

    def extension_schema(schema: str | None) -> bool:
        return _any_match(schema, system_schemas) and not any(
            table.schema == schema for table in model_tables()
        )

    def extension_table(name: str, schema: str | None) -> bool:
        # By name alone, since which schema the database calls its default
        # one is not known here; include_object then leaves out those that
        # Alembic pairs with no model table.
        return _matches(name, schema, system_tables) and not any(
            table.name == name for table in model_tables()
        )

    def name_hook(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        # Called while reflecting: excluded tables are not even read.
        if type_ == "schema":
            if _any_match(name, schemas) or extension_schema(name):
                return False
        elif type_ == "table" and name is not None:
            schema = parent_names.get("schema_name")
            if _any_match(schema, schemas) or extension_schema(schema):
                return False
            if _matches(name, schema, tables) or extension_table(name, schema):
                return False
        return include_name(name, type_, parent_names) if include_name else True

    def object_hook(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        # Called for model objects too: tables the app excluded by pattern
        # are left alone even when a model declares them.
        if type_ == "table" and name is not None:
            schema = getattr(obj, "schema", None)
            if _matches(name, schema, tables) or _any_match(schema, schemas):
                return False
            # A table of the database that Alembic paired with no model
            # table (it knows the default schema): the extension's own.
            if (
                reflected
                and compare_to is None
                and _matches(name, schema, system_tables)
            ):
                return False
        if include_object is not None:
            return include_object(obj, name, type_, reflected, compare_to)
        return True

    return name_hook, object_hook


def _narrows(old: Any, new: Any) -> bool:
    """Tell whether changing a column from type ``old`` to ``new`` may lose data."""
    import sqlalchemy as sa

    if old is None or new is None:
        return False
    old_length = getattr(old, "length", None)
    new_length = getattr(new, "length", None)
    if isinstance(old, sa.String) and isinstance(new, sa.String):
        if new_length is None:
            return False
        return old_length is None or new_length < old_length
    if isinstance(old, sa.Integer) and isinstance(new, sa.Integer):
        rank = {sa.SmallInteger: 0, sa.Integer: 1, sa.BigInteger: 2}

        def size(t: Any) -> int:
            return next((v for k, v in rank.items() if isinstance(t, k)), 1)

        # SmallInteger and BigInteger are subclasses of Integer: check them first.
        return size(new) < size(old)
    if isinstance(old, sa.Numeric) and isinstance(new, sa.Numeric):
        for attribute in ("precision", "scale"):
            before, after = getattr(old, attribute, None), getattr(new, attribute, None)
            if after is not None and (before is None or after < before):
                return True
        return False
    # Another kind of value (text to number, date to flag, ...) needs a
    # conversion that can fail or lose data. ``python_type`` names the kind
    # for generic, dialect-specific and decorated types alike; ``object`` or
    # no answer means the kind is unknown, so it may not hold the data either.
    old_kind, new_kind = _kind(old), _kind(new)
    return old_kind is object or old_kind is not new_kind


def _kind(type_: Any) -> type:
    try:
        kind: type = type_.python_type
    except NotImplementedError:
        return object
    return kind


def _walk(ops: Iterable[Any]) -> Iterable[Any]:
    for op in ops:
        yield op
        yield from _walk(getattr(op, "ops", ()))


def destructive_operations(script: Any) -> list[str]:
    """Describe the operations of a ``MigrationScript`` that destroy data."""
    from alembic.operations import ops

    found = []
    for upgrade_ops in script.upgrade_ops_list:
        for op in _walk(upgrade_ops.ops):
            if isinstance(op, ops.DropTableOp):
                found.append(f"drops table {op.table_name!r}")
            elif isinstance(op, ops.DropColumnOp):
                found.append(f"drops column {op.table_name}.{op.column_name}")
            elif isinstance(op, ops.AlterColumnOp) and _narrows(
                op.existing_type, op.modify_type
            ):
                found.append(
                    f"changes {op.table_name}.{op.column_name} from "
                    f"{op.existing_type!r} to {op.modify_type!r}"
                )
    return found


def warn_destructive(directives: Sequence[Any]) -> None:
    """Write a warning line to stderr for each destructive operation."""
    for script in directives:
        for description in destructive_operations(script):
            sys.stderr.write(
                f"WARNING: the new revision {description}, which destroys data; "
                "review it before upgrading\n"
            )
    # Written before Alembic's own output goes on; also, a stream that is
    # not line-buffered (click 8.1's test runner) may otherwise never show it.
    sys.stderr.flush()
