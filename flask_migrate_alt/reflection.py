"""Reflecting a whole schema at once while autogenerate compares it.

Alembic's autogenerate reflects the database one table at a time, and on
PostgreSQL each table costs about eight catalog queries: a schema of 500
tables means thousands of round trips. SQLAlchemy can reflect every table of
a schema with those same eight queries. While a comparison runs, the
connection's inspector fetches each schema once in bulk and answers the
per-table questions from that result; anything it was not asked in bulk
goes to the normal code, so the answers are SQLAlchemy's own.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["bulk_reflection"]

# Dialects whose reflection has real multi-table queries.
_BULK_DIALECTS = ("postgresql",)

_PER_TABLE = {
    "get_columns": "columns",
    "get_pk_constraint": "pk_constraint",
    "get_foreign_keys": "foreign_keys",
    "get_indexes": "indexes",
    "get_unique_constraints": "unique_constraints",
    "get_check_constraints": "check_constraints",
    "get_table_comment": "table_comment",
}


def _bulk_inspector(base: type) -> type:
    from sqlalchemy.engine.reflection import ObjectKind, ObjectScope, _ReflectionInfo

    class BulkInspector(base):  # type: ignore[misc]
        """An inspector that reads each schema's tables in one go."""

        def _bulk(self, schema: str | None) -> Any:
            store = self.__dict__.setdefault("_fma_bulk", {})
            if schema not in store:
                store[schema] = super()._get_reflection_info(
                    schema, kind=ObjectKind.ANY, scope=ObjectScope.ANY
                )
            return store[schema]

        def _get_reflection_info(
            self,
            schema: str | None = None,
            filter_names: Any = None,
            available: Any = None,
            _reflect_info: Any = None,
            **kw: Any,
        ) -> Any:
            plain = set(kw) <= {"kind", "scope"} and kw.get("kind") in (
                None,
                ObjectKind.ANY,
            )
            if not plain or filter_names is None:
                return super()._get_reflection_info(
                    schema, filter_names, available, _reflect_info, **kw
                )
            info = self._bulk(schema)
            names = set(filter_names)
            if any((schema, name) not in info.columns for name in names):
                return super()._get_reflection_info(
                    schema, filter_names, available, _reflect_info, **kw
                )
            subset = _ReflectionInfo(
                **{
                    field: {
                        key: copy.deepcopy(value)
                        for key, value in (getattr(info, field) or {}).items()
                        if key[1] in names
                    }
                    for field in info.__dict__
                }
            )
            if _reflect_info is not None:
                _reflect_info.update(subset)
                return _reflect_info
            return subset

    def per_table(method: str, field: str) -> Any:
        def answer(
            self: Any, table_name: str, schema: str | None = None, **kw: Any
        ) -> Any:
            if not kw:
                info = self._bulk(schema)
                key = (schema, table_name)
                if key in info.columns:
                    value = (getattr(info, field) or {}).get(key)
                    if value is not None:
                        return copy.deepcopy(value)
            return getattr(super(BulkInspector, self), method)(table_name, schema, **kw)

        answer.__name__ = method
        return answer

    for method, field in _PER_TABLE.items():
        setattr(BulkInspector, method, per_table(method, field))
    return BulkInspector


@contextmanager
def bulk_reflection(connection: Any) -> Iterator[None]:
    """Let ``sqlalchemy.inspect(connection)`` reflect whole schemas while active.

    It affects the inspectors created for the engine's dialect in the
    meantime (Alembic's autogenerate makes its own with ``inspect()``), and
    is undone afterwards.
    """
    dialect = connection.dialect
    if dialect.name not in _BULK_DIALECTS or "inspector" in vars(dialect):
        yield
        return
    dialect.inspector = _bulk_inspector(type(dialect).inspector)
    try:
        yield
    finally:
        del dialect.inspector
