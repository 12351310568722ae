"""Keeping autogenerate away from what the models do not own.

Autogenerate compares the models with everything it finds in the database
and proposes to drop what the models do not declare: tables another tool
manages, extension tables such as PostGIS's ``spatial_ref_sys``, whole
schemas. This module filters those out (``exclude_tables`` and
``exclude_schemas``), and points out the operations of a new revision that
destroy data, so that they are reviewed before they run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any

__all__ = [
    "SYSTEM_SCHEMAS",
    "SYSTEM_TABLES",
    "destructive_operations",
    "exclusion_hooks",
    "warn_destructive",
]

#: Tables created by database extensions (PostGIS, its raster and topology
#: support), never by the app's models; left out of autogenerate unless
#: ``exclude_system_tables=False``. They are only ignored when found in the
#: database, so a model may still declare a table of the same name.
SYSTEM_TABLES = (
    "spatial_ref_sys",
    "geometry_columns",
    "geography_columns",
    "raster_columns",
    "raster_overviews",
    "topology.layer",
    "topology.topology",
)

#: Schemas created by extensions (PostGIS's tiger geocoder and topology).
SYSTEM_SCHEMAS = ("tiger", "tiger_data", "topology")


def _matches(name: str, schema: str | None, patterns: Iterable[str]) -> bool:
    qualified = f"{schema}.{name}" if schema else name
    return any(
        fnmatchcase(name, pattern) or fnmatchcase(qualified, pattern)
        for pattern in patterns
    )


def exclusion_hooks(
    tables: Sequence[str],
    schemas: Sequence[str],
    system: bool,
    include_name: Callable[..., bool] | None = None,
    include_object: Callable[..., bool] | None = None,
) -> tuple[Callable[..., bool], Callable[..., bool]]:
    """Return ``include_name`` and ``include_object`` hooks for ``context.configure``.

    ``tables`` are shell-style patterns (``"tmp_*"``, ``"audit.*"``) matched
    against the table name and against ``schema.name``; ``schemas`` are
    schema names (patterns too). The hooks the app passed itself run after
    these, so they can exclude more but not bring an excluded table back.
    """
    reflected_tables = [*tables, *(SYSTEM_TABLES if system else ())]
    excluded_schemas = [*schemas, *(SYSTEM_SCHEMAS if system else ())]

    def name_hook(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        # Called while reflecting: excluded tables are not even read.
        if type_ == "schema" and name is not None:
            if any(fnmatchcase(name, pattern) for pattern in excluded_schemas):
                return False
        elif type_ == "table" and name is not None:
            schema = parent_names.get("schema_name")
            if schema and any(fnmatchcase(schema, p) for p in excluded_schemas):
                return False
            if _matches(name, schema, reflected_tables):
                return False
        return include_name(name, type_, parent_names) if include_name else True

    def object_hook(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        # Called for model objects too: tables the app excluded by pattern
        # are left alone even when a model declares them.
        if type_ == "table" and name is not None:
            schema = getattr(obj, "schema", None)
            if _matches(name, schema, tables):
                return False
            if schema and any(fnmatchcase(schema, p) for p in schemas):
                return False
        if include_object is not None:
            return include_object(obj, name, type_, reflected, compare_to)
        return True

    # Marks read by flask_migrate_alt.unchanged: these hooks only apply
    # patterns, which are part of its digests.
    hook: Any
    for hook, wrapped in ((name_hook, include_name), (object_hook, include_object)):
        hook.flask_migrate_alt_exclusion = True
        hook.wraps = wrapped
        hook.patterns = (sorted(tables), sorted(schemas), system)
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
    return type(old)._type_affinity is not type(new)._type_affinity


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
