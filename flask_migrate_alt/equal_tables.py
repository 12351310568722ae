"""Seeing, without Alembic's comparison, that a table has not changed.

A first ``flask db check`` (every CI job starts from a fresh checkout, with
no digests remembered by :mod:`flask_migrate_alt.unchanged`) sends every
table through Alembic: each is rebuilt as a ``Table`` from the reflected
rows, then compared column by column and index by index. On most runs
nothing has changed, and the rows bulk reflection has already read show
it: when the model's table and those rows say the same thing about every
attribute Alembic's comparison reads, the comparison has nothing to find.

"The same" here is stricter than Alembic: names, types, flags and options
must be identical as written, not merely equivalent. The answer then never
depends on copying one of Alembic's normalisations (type synonyms, ``NO
ACTION`` against no option, letter case), only on its comparison finding
no difference between two identical things. Anything outside the plain
shapes below answers ``False``, and Alembic compares that table as usual:

* columns: the same names, and for each the same type DDL for the dialect
  (the text Alembic's type comparison tokenizes), nullability and comment;
  only types of SQLAlchemy's own (see :func:`sqlalchemy_type`);
  no identity or computed column on either side; server defaults only
  while ``compare_server_default`` is off, when Alembic ignores them;
* the table comment;
* indexes on plain columns with no dialect option or sort order: the same
  final names, uniqueness and columns;
* unique constraints: a named one by final name and columns, an unnamed
  one by its columns (Alembic matches those by columns);
* foreign keys: the same columns, target, ``ON UPDATE``/``ON DELETE``,
  ``MATCH``, ``DEFERRABLE``/``INITIALLY`` and comment.

The rows are those of SQLAlchemy's reflection on PostgreSQL and SQLite (see
:func:`flask_migrate_alt.reflection.table_rows`). The checks Alembic's
PostgreSQL implementation adds on top of its default ones
(``postgresql_nulls_not_distinct`` of indexes and unique constraints) are
covered by requiring no dialect options at all. On SQLite, which keeps no
comments, a model comment means "compare", though Alembic would ignore it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["TableComparison", "given_options", "sqlalchemy_type"]

# The keys of SQLAlchemy's reflected dicts this module understands; a key
# it does not know (a newer SQLAlchemy, an unusual object) means "compare".
_INDEX_KEYS = frozenset(
    {"name", "unique", "column_names", "dialect_options", "duplicates_constraint"}
)
_UNIQUE_KEYS = frozenset({"name", "column_names", "comment", "dialect_options"})
_FOREIGN_KEY_KEYS = frozenset(
    {
        "name",
        "constrained_columns",
        "referred_schema",
        "referred_table",
        "referred_columns",
        "options",
        "comment",
    }
)
# The tokens of Alembic's type comparison (DefaultImpl._tokenize_column_type):
# it fails on a type whose DDL has no token outside parentheses.
_TYPE_TOKENS = re.compile(r"[\w\-_]+|\(.+?\)")
_FOREIGN_KEY_OPTIONS = ("onupdate", "ondelete", "match", "deferrable", "initially")
_COLUMN_KEYS = frozenset(
    {"name", "type", "nullable", "default", "autoincrement", "comment", "primary_key"}
)


def sqlalchemy_type(type_: Any) -> bool:
    """Whether ``type_``, with every type inside it, is one of SQLAlchemy's.

    A type from elsewhere (a ``TypeDecorator`` of the app, another
    package's) may compare itself with the database in its own way
    (``compare_against_backend``, in some Alembic versions): such columns
    are always left to Alembic.
    """
    from sqlalchemy.types import TypeEngine

    seen: list[Any] = [type_]
    while seen:
        item = seen.pop()
        if not type(item).__module__.startswith("sqlalchemy."):
            return False
        for value in vars(item).values():
            values = value.values() if isinstance(value, dict) else [value]
            seen.extend(v for v in values if isinstance(v, TypeEngine))
    return True


class _Different(Exception):
    """The two sides differ, or cannot be shown to be the same."""


def _plain_options(options: dict[str, Any] | None) -> bool:
    """Whether reflected dialect options hold only their empty defaults."""
    return all(
        key in ("postgresql_include", "postgresql_nulls_not_distinct") and not value
        for key, value in (options or {}).items()
    )


def given_options(item: Any) -> dict[str, Any]:
    """The dialect options (``postgresql_where=...``) given to a schema item.

    SQLAlchemy builds an object's mapping of dialect options on first use;
    one that was never built holds none, and building it for every column
    of every table would cost memory for nothing.
    """
    if "dialect_options" not in vars(item):
        return {}
    return dict(item.dialect_kwargs)


def _no_model_options(item: Any) -> None:
    """Require that no dialect option was given to a model index or constraint."""
    if given_options(item):
        raise _Different("dialect options")


class TableComparison:
    """Model tables side by side with their reflected rows, for one dialect."""

    def __init__(self, dialect: Any, *, compare_type: bool) -> None:
        self.compare_type = compare_type
        self._type_text: Callable[[Any], str] = dialect.type_compiler_instance.process
        self._preparer = dialect.identifier_preparer

    def final_name(self, item: Any) -> str | None:
        """The name Alembic uses for a model index or constraint.

        It is the name the dialect would write (naming conventions applied,
        long names truncated), obtained the way Alembic obtains it.
        """
        if item.name is None:
            return None
        name = self._preparer.format_constraint(item, _alembic_quote=False)
        return None if name is None else str(name)

    def same(self, table: Any, schema: str | None, reflected: dict[str, Any]) -> bool:
        """Whether Alembic's comparison of ``table`` with these rows can find nothing.

        ``reflected`` holds what reflection returned for the table, by
        field: ``columns``, ``indexes``, ``unique_constraints``,
        ``foreign_keys`` and, where the database keeps one, ``table_comment``.
        ``schema`` is the schema the rows were read for (``None`` for the
        default one). The caller makes sure nothing else takes part in the
        comparison: no hooks or comparators of the app,
        ``compare_server_default`` off. ``False`` means only "not shown":
        Alembic then compares the table.
        """
        try:
            # Foreign keys first: resolving them gives a column declared with
            # no type the type of the column it points to.
            self.foreign_keys(table, schema, reflected.get("foreign_keys") or [])
            self.columns(table, reflected.get("columns") or [])
            comment = (reflected.get("table_comment") or {}).get("text")
            if table.comment != comment:
                raise _Different("the table comment")
            index_names = self.indexes(table, reflected.get("indexes") or [])
            self.unique_constraints(
                table, reflected.get("unique_constraints") or [], index_names
            )
        except Exception:
            # _Different, or whatever else fails here (a type of the app that
            # cannot be compiled, a foreign key to a missing table), which is
            # Alembic's to report.
            return False
        return True

    def columns(self, table: Any, reflected: list[dict[str, Any]]) -> None:
        from sqlalchemy.types import NullType

        by_name = {info["name"]: info for info in reflected}
        model = [column for column in table.columns if not column.system]
        if len(by_name) != len(reflected) or len(model) != len(by_name):
            raise _Different("columns")
        for column in model:
            info = by_name.get(column.name)
            if info is None or not set(info) <= _COLUMN_KEYS:
                raise _Different(column.name)
            if column.identity is not None or column.computed is not None:
                raise _Different(column.name)
            if (
                type(column.nullable) is not bool
                or info["nullable"] is not column.nullable
            ):
                raise _Different(column.name)
            if column.comment != info.get("comment"):
                raise _Different(column.name)
            if not sqlalchemy_type(column.type):
                raise _Different(column.name)
            if isinstance(column.type, NullType) or isinstance(info["type"], NullType):
                # Alembic logs that it cannot compare these: leave it to say so.
                raise _Different(column.name)
            if self.compare_type:
                text = self._type_text(column.type)
                if text != self._type_text(info["type"]) or not any(
                    not token.startswith("(")
                    for token in _TYPE_TOKENS.findall(text.lower())
                ):
                    # A type name with no word in it makes Alembic's own
                    # comparison fail: let it.
                    raise _Different(column.name)

    def indexes(
        self, table: Any, reflected: list[dict[str, Any]]
    ) -> dict[str, tuple[str, ...]]:
        """Check the indexes; return the model's index names (for the uniques)."""
        from sqlalchemy import Column

        model = {}
        for index in table.indexes:
            _no_model_options(index)
            expressions = list(index.expressions)
            if not all(isinstance(e, Column) and e.table is table for e in expressions):
                raise _Different("an expression index")
            name = self.final_name(index)
            if name is None or name in model:
                raise _Different("an unnamed index")
            model[name] = (bool(index.unique), tuple(e.name for e in expressions))
        database = {}
        for info in reflected:
            if not set(info) <= _INDEX_KEYS or not _plain_options(
                info.get("dialect_options")
            ):
                raise _Different(str(info.get("name")))
            if "duplicates_constraint" in info:
                continue  # the index of a constraint: Alembic leaves these out
            names = tuple(info["column_names"])
            if not all(isinstance(name, str) for name in names):
                raise _Different("an expression index")
            unique = info["unique"]
            if unique not in (True, False):  # SQLite gives 0 and 1
                raise _Different(str(info["name"]))
            database[info["name"]] = (bool(unique), names)
        if model != database:
            raise _Different("indexes")
        return {name: columns for name, (_, columns) in model.items()}

    def unique_constraints(
        self,
        table: Any,
        reflected: list[dict[str, Any]],
        index_names: dict[str, tuple[str, ...]],
    ) -> None:
        from sqlalchemy import UniqueConstraint

        named: dict[str, tuple[tuple[str, ...], Any]] = {}
        unnamed: list[tuple[str, ...]] = []
        for constraint in table.constraints:
            if not isinstance(constraint, UniqueConstraint):
                continue
            _no_model_options(constraint)
            # Iterating, not .columns: that memoizes a collection on the
            # model constraint for the life of the process.
            columns = tuple(column.name for column in constraint)
            name = self.final_name(constraint)
            if name is None:
                unnamed.append(tuple(sorted(columns)))
            elif name in named or name in index_names:
                raise _Different(name)
            else:
                named[name] = (columns, getattr(constraint, "comment", None))
        left = []
        for info in reflected:
            if not set(info) <= _UNIQUE_KEYS or not _plain_options(
                info.get("dialect_options")
            ):
                raise _Different(str(info.get("name")))
            name, columns = info["name"], tuple(info["column_names"])
            if name in index_names:
                raise _Different(name)
            if name in named:
                if named.pop(name) != (columns, info.get("comment")):
                    raise _Different(name)
            else:
                left.append(tuple(sorted(columns)))
        # Every named one found, and the rest paired with the unnamed ones
        # by their columns, one to one.
        if named or sorted(left) != sorted(unnamed):
            raise _Different("unique constraints")

    def foreign_keys(
        self, table: Any, schema: str | None, reflected: list[dict[str, Any]]
    ) -> None:
        from sqlalchemy import ForeignKeyConstraint

        model = set()
        for constraint in table.constraints:
            if not isinstance(constraint, ForeignKeyConstraint):
                continue
            _no_model_options(constraint)
            elements = constraint.elements
            targets = [element.column for element in elements]  # may raise
            target_tables = {column.table for column in targets}
            if len(target_tables) != 1:
                raise _Different("a foreign key to several tables")
            (target,) = target_tables
            model.add(
                (
                    table.schema,
                    tuple(element.parent.name for element in elements),
                    target.schema,
                    target.name,
                    tuple(column.name for column in targets),
                    tuple(getattr(constraint, key) for key in _FOREIGN_KEY_OPTIONS),
                    getattr(constraint, "comment", None),
                )
            )
        database = set()
        for info in reflected:
            options = info.get("options") or {}
            if not set(info) <= _FOREIGN_KEY_KEYS or not set(options) <= set(
                _FOREIGN_KEY_OPTIONS
            ):
                raise _Different(str(info.get("name")))
            database.add(
                (
                    schema,
                    tuple(info["constrained_columns"]),
                    info["referred_schema"],
                    info["referred_table"],
                    tuple(info["referred_columns"]),
                    tuple(options.get(key) for key in _FOREIGN_KEY_OPTIONS),
                    info.get("comment"),
                )
            )
        if model != database:
            raise _Different("foreign keys")
