"""``check``, ``migrate`` and ``compare_metadata()`` give exactly Alembic's answer.

Each case builds a database at a "before" state, changes the models or the
database by hand, and then compares what this package says with what plain
Alembic says on the same database: ``MigrationContext.configure()`` with the
options ``Migrate`` passes, and ``alembic.autogenerate.compare_metadata()``.
Differences are compared in a normalized form (see :func:`describe`), the
warnings Alembic emits must be the same, and the revision ``migrate()``
writes must hold the operations Alembic renders for that comparison.

Every case is compared twice: a package that remembers an earlier answer
(a cache of tables found unchanged, say) is caught by the second run, which
for most cases follows a change made by hand, or an event listener the app
registers after the first check.
"""

from __future__ import annotations

import re
import signal
import textwrap
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata as alembic_compare_metadata
from alembic.autogenerate import produce_migrations as alembic_produce_migrations
from alembic.autogenerate import render_python_code
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import Script
from flask import Flask
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeDecorator

import flask_migrate_alt as fma

from .conftest import Server

# --------------------------------------------------------------------------
# normalized differences


def describe(obj: Any) -> Any:
    """Return a comparable, hashable description of a piece of an Alembic diff.

    Diff entries hold SQLAlchemy objects, which compare by identity; they
    become tuples of what Alembic compares and renders: names, columns,
    types (by repr), defaults and expressions (by their SQL text).
    """
    if isinstance(obj, (list, tuple)):
        return tuple(describe(item) for item in obj)
    if isinstance(obj, dict):
        return tuple(sorted(((k, describe(v)) for k, v in obj.items()), key=repr))
    if isinstance(obj, sa.Table):
        return (
            "Table",
            obj.schema,
            obj.name,
            obj.comment,
            tuple(describe(c) for c in obj.columns),
            tuple(sorted((describe(c) for c in obj.constraints), key=repr)),
            tuple(sorted((describe(i) for i in obj.indexes), key=repr)),
            describe(dict(obj.dialect_kwargs)),
        )
    if isinstance(obj, sa.Column):
        return (
            "Column",
            getattr(obj.table, "name", None) if hasattr(obj, "table") else None,
            obj.name,
            repr(obj.type),
            obj.nullable,
            obj.primary_key,
            describe(obj.server_default),
            obj.comment,
            repr(obj.identity),
            repr(obj.computed),
            str(obj.autoincrement),
        )
    if isinstance(obj, sa.Index):
        return (
            "Index",
            obj.table.name if obj.table is not None else None,
            obj.name,
            obj.unique,
            tuple(str(e) for e in obj.expressions),
            describe(dict(obj.dialect_kwargs)),
        )
    if isinstance(obj, sa.ForeignKeyConstraint):
        return (
            "ForeignKeyConstraint",
            obj.table.name if obj.table is not None else None,
            obj.name,
            tuple(obj.column_keys),
            tuple(e.target_fullname for e in obj.elements),
            obj.ondelete,
            obj.onupdate,
            obj.deferrable,
            obj.initially,
        )
    if isinstance(obj, sa.CheckConstraint):
        return ("CheckConstraint", obj.name, str(obj.sqltext))
    if isinstance(obj, sa.Constraint):
        return (
            type(obj).__name__,
            obj.table.name if obj.table is not None else None,
            obj.name,
            tuple(c.name for c in getattr(obj, "columns", ())),
            describe(dict(obj.dialect_kwargs)),
        )
    if isinstance(obj, sa.DefaultClause):
        return ("DefaultClause", describe(obj.arg), obj.reflected)
    if isinstance(obj, sa.types.TypeEngine):
        return repr(obj)
    if isinstance(obj, ClauseElement):
        return ("sql", str(obj))
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    text = repr(obj)
    assert " at 0x" not in text, f"no stable description for {text}"
    return text


def normalized(diffs: Any) -> tuple[Any, ...]:
    """The described differences, in an order of their own.

    Alembic's order is not stable between two comparisons of the same
    database (foreign keys come from a set), so the answer is a multiset.
    """
    return tuple(sorted((describe(diff) for diff in diffs), key=repr))


def kinds(line: str) -> list[str]:
    """The kinds of difference named in a "New upgrade operations" line."""
    return sorted(re.findall(r"\('(add_\w+|remove_\w+|modify_\w+)',", line))


def lines(code: str) -> list[str]:
    """A rendered body as a multiset of lines (Alembic's order is not stable)."""
    return sorted(textwrap.dedent(code).splitlines())


@contextmanager
def recorded() -> Iterator[list[tuple[str, str]]]:
    """Record the warnings emitted in the block as ``(category, message)``."""
    found: list[tuple[str, str]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield found
    found.extend((w.category.__name__, str(w.message)) for w in caught)


@contextmanager
def deadline(what: str, seconds: float = 15) -> Iterator[None]:
    """Fail, instead of hanging the test run, if the block does not end in time.

    Each call compared here takes well under a second; one that loops
    forever (re-emitting warnings it records, say) becomes a failure.
    """

    def expired(signum: int, frame: Any) -> None:
        pytest.fail(f"{what} did not return within {seconds} s", pytrace=False)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------
# the cases


@dataclass
class Env:
    """What a hand-made change gets: Alembic ``op`` on the test database."""

    op: Operations
    backend: str
    listeners: list[tuple[Any, str, Callable[..., Any]]]

    def sql(self, *statements: str) -> None:
        for statement in statements:
            self.op.execute(sa.text(statement))

    def listen(self, target: Any, identifier: str, fn: Callable[..., Any]) -> None:
        """Register a SQLAlchemy event listener, removed after the test."""
        sa.event.listen(target, identifier, fn)
        self.listeners.append((target, identifier, fn))


Models = Callable[[sa.MetaData, str], None]
Change = Callable[[Env], None]


@dataclass(frozen=True)
class Case:
    """One comparison scenario.

    ``before`` models are created with ``create_all``; ``change`` then runs
    on the database (after ``prepare`` and create_all), and the app
    declares ``after`` models (``before`` when ``None``). ``again`` is a
    change made between the first and the repeated comparison.
    """

    id: str
    before: Models
    after: Models | None = None
    change: Change | None = None
    again: Change | None = None
    prepare: Change | None = None
    backends: tuple[str, ...] = ("sqlite", "postgresql", "mysql")
    #: Passed to Migrate() and, except the exclude_* ones, to Alembic.
    options: dict[str, Any] = field(default_factory=dict)
    #: Given to plain Alembic only: hooks equivalent to Migrate's own options.
    oracle_options: dict[str, Any] = field(default_factory=dict)
    before_naming: dict[str, str] | None = None
    after_naming: dict[str, str] | None = None
    #: Registered when the app is built, before the first comparison.
    app_setup: Change | None = None
    #: Whether the first comparison must find differences.
    changes: bool = True
    #: Whether the second comparison must differ from the first.
    again_changes: bool = True
    #: ``(kind, table, name)`` entries Alembic must report on the first run.
    expect: tuple[tuple[str, str, str], ...] = ()


MIGRATE_ONLY = ("exclude_tables", "exclude_schemas", "exclude_system_tables")


def batch(env: Env, table: str, fn: Callable[[Any], None]) -> None:
    """Alter ``table`` on every backend (SQLite copies the table)."""
    with env.op.batch_alter_table(table) as b:
        fn(b)


def wider(table: str, column: str, old: int, new: int) -> Change:
    def change(env: Env) -> None:
        batch(
            env,
            table,
            lambda b: b.alter_column(
                column, type_=sa.String(new), existing_type=sa.String(old)
            ),
        )

    return change


def add_hand_column(table: str, column: str = "hand") -> Change:
    def change(env: Env) -> None:
        env.op.add_column(table, sa.Column(column, sa.Integer, nullable=True))

    return change


# ---- column types


class Upper(TypeDecorator[str]):
    """A custom type, stored as a VARCHAR."""

    impl = sa.String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else value.upper()


def typed_models(after: bool) -> Models:
    def models(md: sa.MetaData, backend: str) -> None:
        sa.Table(
            "typed",
            md,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("s_len", sa.String(40 if after else 20)),
            sa.Column("i_big", sa.BigInteger if after else sa.Integer),
            sa.Column("s_int", sa.Integer if after else sa.String(10)),
            sa.Column("num", sa.Numeric(12, 4) if after else sa.Numeric(10, 2)),
            sa.Column("flag", sa.Boolean if after else sa.Integer),
            sa.Column("ts", sa.DateTime(timezone=after)),
            sa.Column(
                "kind",
                sa.Enum("a", "b", "c", name="typed_kind")
                if after
                else sa.Enum("a", "b", name="typed_kind"),
            ),
            sa.Column("doc", sa.JSON),
            sa.Column("shout", Upper(50 if after else 30)),
            sa.Column("untouched", sa.String(15)),
        )

    return models


# ---- nullability and server defaults


def defaults_models(after: bool) -> Models:
    def models(md: sa.MetaData, backend: str) -> None:
        sa.Table(
            "defaults",
            md,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("n_on", sa.String(10), nullable=not after),
            sa.Column("n_off", sa.String(10), nullable=after),
            sa.Column("d_change", sa.String(10), server_default="y" if after else "x"),
            sa.Column(
                "d_add", sa.Integer, server_default=sa.text("0") if after else None
            ),
            sa.Column(
                "d_drop", sa.Integer, server_default=None if after else sa.text("1")
            ),
            sa.Column("keep", sa.String(10), server_default="k", nullable=False),
            sa.Column("created", sa.DateTime, server_default=sa.func.now()),
        )

    return models


def hand_default(env: Env) -> None:
    batch(
        env,
        "defaults",
        lambda b: b.alter_column(
            "keep",
            server_default="zz",
            existing_type=sa.String(10),
            existing_nullable=False,
        ),
    )


# ---- comments


def comments_models(after: bool) -> Models:
    def models(md: sa.MetaData, backend: str) -> None:
        sa.Table(
            "commented",
            md,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column(
                "c_change", sa.String(20), comment="after" if after else "before"
            ),
            sa.Column("c_add", sa.String(20), comment="added" if after else None),
            sa.Column("c_keep", sa.String(20), comment="kept"),
            comment="table after" if after else "table before",
        )
        sa.Table(
            "uncommented",
            md,
            sa.Column("id", sa.Integer, primary_key=True),
            comment=None if after else "to be removed",
        )

    return models


def hand_comment(env: Env) -> None:
    if env.backend == "postgresql":
        env.sql("COMMENT ON COLUMN commented.c_keep IS 'by hand'")
    else:
        env.sql(
            "ALTER TABLE commented MODIFY c_keep VARCHAR(20) NULL COMMENT 'by hand'"
        )


# ---- indexes


def indexes_models(after: bool) -> Models:
    def models(md: sa.MetaData, backend: str) -> None:
        t = sa.Table(
            "indexed",
            md,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("a", sa.String(20)),
            sa.Column("b", sa.String(20)),
            sa.Column("c", sa.Integer),
            sa.Column("d", sa.Integer),
            sa.Column("e", sa.String(20)),
        )
        sa.Index("ix_indexed_a", t.c.a, unique=after)
        if after:
            sa.Index("ix_indexed_b_c", t.c.b, t.c.c)
            sa.Index("ix_indexed_d", t.c.d)
        else:
            sa.Index("ix_indexed_c_b", t.c.c, t.c.b)
            sa.Index("ix_indexed_dropped", t.c.d, t.c.e)
        if backend == "postgresql":
            sa.Index(
                "ix_indexed_partial",
                t.c.e,
                postgresql_where=t.c.c > (10 if after else 5),
            )
            if after:
                sa.Index("ix_indexed_lower", sa.func.lower(t.c.e))
        if backend == "sqlite":
            sa.Index(
                "ix_indexed_partial",
                t.c.e,
                sqlite_where=t.c.c > (10 if after else 5),
            )
            if after:
                sa.Index("ix_indexed_lower", sa.func.lower(t.c.e))

    return models


def hand_index(env: Env) -> None:
    env.op.create_index("ix_by_hand", "indexed", ["e", "d"])


# ---- unique constraints


def unique_models(after: bool) -> Models:
    def models(md: sa.MetaData, backend: str) -> None:
        sa.Table(
            "uniq",
            md,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("a", sa.String(20), unique=after),
            sa.Column("b", sa.String(20)),
            sa.Column("c", sa.String(20)),
            sa.Column("d", sa.String(20)),
            sa.Column("e", sa.String(20)),
            *(
                [
                    sa.UniqueConstraint("b", name="uq_uniq_b"),
                    sa.UniqueConstraint("c", "e", name="uq_uniq_ce"),
                ]
                if after
                else [
                    sa.UniqueConstraint("d", name="uq_uniq_d"),
                    sa.UniqueConstraint("c", name="uq_uniq_ce"),
                ]
            ),
        )

    return models


# ---- foreign keys


def fk_models(after: bool) -> Models:
    def models(md: sa.MetaData, backend: str) -> None:
        sa.Table("parent", md, sa.Column("id", sa.Integer, primary_key=True))
        deferrable: dict[str, Any] = {}
        if backend == "postgresql":
            deferrable = {"deferrable": True, "initially": "DEFERRED"} if after else {}
        sa.Table(
            "child",
            md,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column(
                "p_add",
                sa.Integer,
                *([sa.ForeignKey("parent.id", name="fk_child_p_add")] if after else []),
            ),
            sa.Column(
                "p_drop",
                sa.Integer,
                *(
                    []
                    if after
                    else [sa.ForeignKey("parent.id", name="fk_child_p_drop")]
                ),
            ),
            sa.Column(
                "p_cascade",
                sa.Integer,
                sa.ForeignKey(
                    "parent.id",
                    name="fk_child_p_cascade",
                    ondelete="CASCADE" if after else None,
                    onupdate="CASCADE" if after else None,
                ),
            ),
            sa.Column(
                "p_defer",
                sa.Integer,
                sa.ForeignKey("parent.id", name="fk_child_p_defer", **deferrable),
            ),
            sa.Column(
                "p_keep",
                sa.Integer,
                sa.ForeignKey("parent.id", name="fk_child_p_keep"),
            ),
        )

    return models


# ---- naming conventions, check constraints

CONVENTION = {
    "ix": "idx_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def convention_models(after: bool) -> Models:
    def models(md: sa.MetaData, backend: str) -> None:
        sa.Table("conv_parent", md, sa.Column("id", sa.Integer, primary_key=True))
        sa.Table(
            "conv",
            md,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("code", sa.String(10)),
            sa.Column("label", sa.String(10), index=True),
            sa.Column("amount", sa.Integer),
            sa.Column("ref_id", sa.Integer, sa.ForeignKey("conv_parent.id")),
            sa.UniqueConstraint("code"),
            *([sa.CheckConstraint("amount >= 0", name="positive")] if after else []),
        )

    return models


# ---- identity and autoincrement


def identity_models(after: bool) -> Models:
    def models(md: sa.MetaData, backend: str) -> None:
        if backend == "postgresql":
            sa.Table(
                "ident",
                md,
                sa.Column(
                    "id",
                    sa.Integer,
                    sa.Identity(start=10, increment=2) if after else sa.Identity(),
                    primary_key=True,
                ),
                sa.Column(
                    "seq",
                    sa.BigInteger,
                    *([sa.Identity(always=True)] if after else []),
                    nullable=False,
                ),
            )
        else:
            sa.Table(
                "ident",
                md,
                sa.Column(
                    "id",
                    sa.BigInteger if after else sa.Integer,
                    primary_key=True,
                    autoincrement=True,
                ),
                sa.Column("seq", sa.BigInteger, nullable=False),
            )

    return models


# ---- a second schema


def schema_models(after: bool) -> Models:
    def models(md: sa.MetaData, backend: str) -> None:
        sa.Table("local", md, sa.Column("id", sa.Integer, primary_key=True))
        sa.Table(
            "remote",
            md,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("local_id", sa.Integer, sa.ForeignKey("local.id")),
            sa.Column("name", sa.String(20 if after else 10)),
            *([sa.Column("added", sa.Integer)] if after else []),
            schema="other",
        )

    return models


def create_other_schema(env: Env) -> None:
    env.sql("CREATE SCHEMA other")


# ---- event listeners


def listened_models(md: sa.MetaData, backend: str) -> None:
    sa.Table(
        "listened",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(20)),
    )


def listen_after_first_check(env: Env) -> None:
    """The app registers a ``column_reflect`` listener that reads code as wider."""

    def column_reflect(inspector: Any, table: sa.Table, info: dict[str, Any]) -> None:
        if table.name == "listened" and info["name"] == "code":
            info["type"] = sa.String(40)

    env.listen(sa.Table, "column_reflect", column_reflect)


def attached_models(md: sa.MetaData, backend: str) -> None:
    sa.Table(
        "attached",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(20)),
        sa.Column("note", sa.String(20)),
    )


def text_when_reflected(env: Env) -> None:
    """The app registers a listener that types reflected ``attached.code`` as Text."""

    def after_parent_attach(column: sa.Column[Any], table: sa.Table) -> None:
        # Only reflected tables: the models' MetaData is marked.
        if (
            isinstance(table, sa.Table)
            and table.name == "attached"
            and column.name == "code"
            and not table.metadata.info.get("models")
        ):
            column.type = sa.Text()

    env.listen(sa.Column, "after_parent_attach", after_parent_attach)


# ---- exclusions


def skip_me(
    obj: Any, name: str | None, type_: str, reflected: bool, other: Any
) -> bool:
    return not (type_ == "table" and name == "skip_me")


def exclude_legacy_name(name: str | None, type_: str, parent: dict[str, Any]) -> bool:
    return not (type_ == "table" and name and fnmatchcase(name, "legacy_*"))


def exclude_legacy_object(
    obj: Any, name: str | None, type_: str, reflected: bool, other: Any
) -> bool:
    if type_ == "table" and name and fnmatchcase(name, "legacy_*"):
        return False
    return skip_me(obj, name, type_, reflected, other)


def exclusion_models(md: sa.MetaData, backend: str) -> None:
    sa.Table(
        "kept",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(20)),
    )
    sa.Table(
        "skip_me",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(30)),
    )
    sa.Table("legacy_model", md, sa.Column("id", sa.Integer, primary_key=True))


def exclusion_change(env: Env) -> None:
    env.op.create_table("legacy_one", sa.Column("id", sa.Integer, primary_key=True))
    env.op.create_table("legacy_two", sa.Column("id", sa.Integer, primary_key=True))
    env.op.drop_table("legacy_model")
    batch(
        env,
        "skip_me",
        lambda b: b.alter_column(
            "name", type_=sa.String(10), existing_type=sa.String(30)
        ),
    )
    env.op.add_column("kept", sa.Column("extra", sa.Integer))


def exclusion_again(env: Env) -> None:
    env.op.add_column("legacy_one", sa.Column("more", sa.Integer))
    env.op.add_column("skip_me", sa.Column("more", sa.Integer))
    env.op.create_table("legacy_three", sa.Column("id", sa.Integer, primary_key=True))


# ---- what the models do not declare


def blog_models(md: sa.MetaData, backend: str) -> None:
    sa.Table(
        "author",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(120), nullable=False, unique=True),
        sa.Column("name", sa.String(50), server_default="anon"),
    )
    post = sa.Table(
        "post",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "author_id",
            sa.Integer,
            sa.ForeignKey("author.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text),
        sa.Column("published", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    sa.Index("ix_post_author_created", post.c.author_id, post.c.created)


def undeclared_change(env: Env) -> None:
    env.op.create_table(
        "stray",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("note", sa.String(20)),
    )
    env.op.create_index("ix_post_title", "post", ["title"])
    env.op.add_column("author", sa.Column("nickname", sa.String(20)))


def undeclared_again(env: Env) -> None:
    env.op.drop_table("stray")
    env.op.drop_index("ix_post_title", table_name="post")


def hand_changes_to_unchanged_tables(env: Env) -> None:
    """A database changed by hand after a comparison found it matching."""
    env.op.add_column("post", sa.Column("slug", sa.String(50)))
    env.op.create_index("ix_author_name", "author", ["name"])
    batch(
        env,
        "author",
        lambda b: b.alter_column(
            "name", type_=sa.String(80), existing_type=sa.String(50)
        ),
    )


CASES = [
    Case(
        "column_types",
        before=typed_models(False),
        after=typed_models(True),
        again=wider("typed", "untouched", 15, 25),
        expect=(
            ("modify_type", "typed", "s_len"),
            ("modify_type", "typed", "i_big"),
            ("modify_type", "typed", "s_int"),
            ("modify_type", "typed", "num"),
            ("modify_type", "typed", "shout"),
        ),
    ),
    Case(
        "nullability_and_server_defaults",
        before=defaults_models(False),
        after=defaults_models(True),
        options={"compare_server_default": True},
        again=hand_default,
        expect=(
            ("modify_nullable", "defaults", "n_on"),
            ("modify_nullable", "defaults", "n_off"),
            ("modify_default", "defaults", "d_change"),
            ("modify_default", "defaults", "d_add"),
            ("modify_default", "defaults", "d_drop"),
        ),
    ),
    Case(
        "comments",
        before=comments_models(False),
        after=comments_models(True),
        backends=("postgresql", "mysql"),
        again=hand_comment,
        expect=(
            ("modify_comment", "commented", "c_change"),
            ("modify_comment", "commented", "c_add"),
            ("add_table_comment", "commented", "commented"),
            ("remove_table_comment", "uncommented", "uncommented"),
        ),
    ),
    Case(
        "indexes",
        before=indexes_models(False),
        after=indexes_models(True),
        again=hand_index,
        expect=(
            ("add_index", "indexed", "ix_indexed_b_c"),
            ("remove_index", "indexed", "ix_indexed_dropped"),
        ),
    ),
    Case(
        "unique_constraints",
        before=unique_models(False),
        after=unique_models(True),
        again=lambda env: batch(
            env, "uniq", lambda b: b.create_unique_constraint("uq_by_hand", ["e"])
        ),
    ),
    Case(
        "foreign_keys",
        before=fk_models(False),
        after=fk_models(True),
        again=add_hand_column("child", "p_hand"),
        expect=(
            ("add_fk", "child", "fk_child_p_add"),
            ("remove_fk", "child", "fk_child_p_drop"),
        ),
    ),
    Case(
        "naming_convention_and_check_constraint",
        before=convention_models(False),
        after=convention_models(True),
        after_naming=CONVENTION,
        again=add_hand_column("conv"),
    ),
    Case(
        "identity_and_autoincrement",
        before=identity_models(False),
        after=identity_models(True),
        # Alembic compares identities along with server defaults.
        options={"compare_server_default": True},
        again=add_hand_column("ident"),
    ),
    Case(
        "second_schema",
        before=schema_models(False),
        after=schema_models(True),
        prepare=create_other_schema,
        change=lambda env: env.op.create_table(
            "stray", sa.Column("id", sa.Integer, primary_key=True), schema="other"
        ),
        again=lambda env: env.op.add_column(
            "remote", sa.Column("hand", sa.Integer), schema="other"
        ),
        backends=("postgresql",),
        options={"include_schemas": True},
        expect=(
            ("add_column", "remote", "added"),
            ("remove_table", "stray", "stray"),
            ("modify_type", "remote", "name"),
        ),
    ),
    Case(
        "listener_registered_after_first_check",
        before=listened_models,
        again=listen_after_first_check,
        changes=False,
    ),
    Case(
        "listener_on_column_attach",
        before=attached_models,
        app_setup=text_when_reflected,
        again=wider("attached", "note", 20, 30),
        expect=(("modify_type", "attached", "code"),),
    ),
    Case(
        "exclusions",
        before=exclusion_models,
        change=exclusion_change,
        again=exclusion_again,
        options={"exclude_tables": ["legacy_*"], "include_object": skip_me},
        oracle_options={
            "include_name": exclude_legacy_name,
            "include_object": exclude_legacy_object,
        },
        again_changes=False,
        expect=(("remove_column", "kept", "extra"),),
    ),
    Case(
        "undeclared_objects",
        before=blog_models,
        change=undeclared_change,
        again=undeclared_again,
        expect=(
            ("remove_table", "stray", "stray"),
            ("remove_index", "post", "ix_post_title"),
            ("remove_column", "author", "nickname"),
        ),
    ),
    Case(
        "hand_change_after_matching_check",
        before=blog_models,
        again=hand_changes_to_unchanged_tables,
        changes=False,
    ),
]


def entries(diffs: list[Any]) -> set[tuple[str, str, str]]:
    """``(kind, table, name)`` of each difference, to check a case's intent."""
    found = set()
    for diff in diffs:
        for item in diff if isinstance(diff, list) else [diff]:
            kind = item[0]
            if kind.startswith("modify_"):
                found.add((kind, item[2], item[3]))
            elif kind in ("add_column", "remove_column"):
                found.add((kind, item[2], item[3].name))
            elif kind.endswith("_table") or kind.endswith("_table_comment"):
                found.add((kind, item[1].name, item[1].name))
            else:
                obj = item[1]
                found.add((kind, obj.table.name, obj.name))
    return found


# --------------------------------------------------------------------------
# running a case


@dataclass
class Answer:
    """What plain Alembic says about the database."""

    diffs: Any
    raw: list[Any]
    warnings: list[tuple[str, str]]
    upgrade: str
    downgrade: str
    #: What rendering the revision adds (e.g. an unnamed constraint dropped).
    render_warnings: list[tuple[str, str]]


def alembic_answer(url: str, metadata: sa.MetaData, opts: dict[str, Any]) -> Answer:
    """Plain Alembic's comparison, configured with ``opts``."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={**opts, "target_metadata": metadata}
            )
            with recorded() as found:
                diffs = alembic_compare_metadata(context, metadata)
            with recorded() as produced:
                script = alembic_produce_migrations(context, metadata)
            assert script.upgrade_ops is not None
            assert script.downgrade_ops is not None
            # compare_metadata() is produce_migrations()'s diffs: the oracle
            # is consistent with itself.
            assert normalized(script.upgrade_ops.as_diffs()) == normalized(diffs)
            assert produced == found
            with recorded() as rendering:
                upgrade = render_python_code(
                    script.upgrade_ops, render_as_batch=True, migration_context=context
                )
                downgrade = render_python_code(
                    script.downgrade_ops,
                    render_as_batch=True,
                    migration_context=context,
                )
    finally:
        engine.dispose()
    return Answer(normalized(diffs), diffs, found, upgrade, downgrade, rendering)


def function_body(source: str, name: str) -> str:
    """The body of the top-level function ``name`` in a revision file."""
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {name}("))
    body = []
    for line in lines[start + 1 :]:
        if line and not line.startswith((" ", "\t")):
            break
        body.append(line)
    return textwrap.dedent("\n".join(body)).strip()


class Differential:
    """Builds a case's database and app, and compares our answers with Alembic's."""

    def __init__(
        self,
        case: Case,
        server: Server,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.case = case
        self.backend = server.backend
        self.server = server
        self.tmp_path = tmp_path
        self.capsys = capsys
        self.listeners: list[tuple[Any, str, Callable[..., Any]]] = []
        self.engines: list[sa.Engine] = []
        self.url = server.new_database()
        self.revisions = 0

    def close(self) -> None:
        for target, identifier, fn in self.listeners:
            sa.event.remove(target, identifier, fn)
        for engine in self.engines:
            engine.dispose()

    def run_change(self, change: Change | None) -> None:
        if change is None:
            return
        engine = sa.create_engine(self.url)
        try:
            with engine.begin() as connection:
                op = Operations(MigrationContext.configure(connection))
                change(Env(op, self.backend, self.listeners))
        finally:
            engine.dispose()

    def build_database(self) -> None:
        metadata = sa.MetaData(naming_convention=self.case.before_naming or {})
        self.case.before(metadata, self.backend)
        self.run_change(self.case.prepare)
        engine = sa.create_engine(self.url)
        try:
            with engine.begin() as connection:
                metadata.create_all(connection)
        finally:
            engine.dispose()
        self.run_change(self.case.change)

    def build_app(self) -> Flask:
        from flask_sqlalchemy import SQLAlchemy

        self.run_change(self.case.app_setup)
        app = Flask("differential", root_path=str(self.tmp_path))
        app.config["SQLALCHEMY_DATABASE_URI"] = self.url
        naming = self.case.after_naming
        metadata = sa.MetaData(naming_convention=naming) if naming else sa.MetaData()
        metadata.info["models"] = True
        db = SQLAlchemy(app, metadata=metadata)
        (self.case.after or self.case.before)(db.metadata, self.backend)
        fma.Migrate(app, db, **self.case.options)
        self.db = db
        with app.app_context():
            self.engines.append(db.engine)
            fma.init()
        self.capsys.readouterr()
        return app

    def oracle_options(self) -> dict[str, Any]:
        """What Migrate passes to Alembic, with hooks written out by hand."""
        options = {
            key: value
            for key, value in self.case.options.items()
            if key not in MIGRATE_ONLY
        }
        return {
            "compare_type": True,
            "render_as_batch": True,
            **options,
            **self.case.oracle_options,
        }

    def oracle(self) -> Answer:
        answer = alembic_answer(self.url, self.db.metadata, self.oracle_options())
        # The same comparison with the MigrationContext the package
        # configures: its options and default hooks change nothing here.
        with fma.migration_context() as context:
            assert context.opts["compare_type"] is True
            assert context.opts["render_as_batch"] is True
            with recorded() as found:
                diffs = alembic_compare_metadata(context, self.db.metadata)
        assert normalized(diffs) == answer.diffs
        assert found == answer.warnings
        return answer

    def compare(self, app: Flask, expected: Answer) -> None:
        """Every answer of the package must be ``expected``, Alembic's."""
        case = f"{self.case.id} on {self.backend}"
        with recorded() as found, deadline(f"compare_metadata(), {case}"):
            diffs = fma.compare_metadata()
        assert isinstance(diffs, list)
        assert normalized(diffs) == expected.diffs, f"compare_metadata(), {case}"
        assert found == expected.warnings, f"compare_metadata() warnings, {case}"

        with recorded() as found, deadline(f"needs_revision(), {case}"):
            needed = fma.needs_revision()
        assert needed is bool(expected.diffs), f"needs_revision(), {case}"
        assert found == expected.warnings, f"needs_revision() warnings, {case}"

        with recorded() as found, deadline(f"produce_migrations(), {case}"):
            script = fma.produce_migrations()
        assert not isinstance(script, dict) and script.upgrade_ops is not None
        assert script.downgrade_ops is not None
        assert normalized(script.upgrade_ops.as_diffs()) == expected.diffs, case
        assert found == expected.warnings, f"produce_migrations() warnings, {case}"

        self.capsys.readouterr()
        with recorded() as found, deadline(f"check(), {case}"):
            if expected.diffs:
                with pytest.raises(fma.CommandFailed) as info:
                    fma.check()
                cause = info.value.__cause__
                message = str(cause)
                # Alembic 1.16 added the diffs to the exception; before,
                # they are only in its message.
                found_diffs = getattr(cause, "diffs", None)
                if hasattr(cause, "diffs"):
                    assert normalized(found_diffs) == expected.diffs, case
                    assert message == f"New upgrade operations detected: {found_diffs}"
                expected_message = f"New upgrade operations detected: {expected.raw}"
                assert message.startswith("New upgrade operations detected: [")
                assert kinds(message) == kinds(expected_message), case
                err = self.capsys.readouterr().err
                assert err.splitlines()[-1] == f"Error: {message}"
            else:
                assert fma.check() is None, case
                out = self.capsys.readouterr().out
                assert "No new upgrade operations detected." in out
        assert found == expected.warnings, f"check() warnings, {case}"

        with recorded() as found, deadline(f"flask db check, {case}"):
            result = app.test_cli_runner().invoke(args=["db", "check"])
        assert "Traceback" not in result.output
        if expected.diffs:
            assert result.exit_code == 1, (case, result.output)
            last = result.stderr.rstrip("\n").splitlines()[-1]
            assert last.startswith("Error: New upgrade operations detected: ["), last
            assert kinds(last) == kinds(message), case
        else:
            assert result.exit_code == 0, (case, result.output)
            assert "No new upgrade operations detected." in result.stdout
        assert found == expected.warnings, f"flask db check warnings, {case}"

        self.revisions += 1
        rev_id = f"diff{self.revisions}"
        with recorded() as found, deadline(f"migrate(), {case}"):
            written = fma.migrate(message="differential", rev_id=rev_id)
        self.capsys.readouterr()
        assert found == expected.warnings + expected.render_warnings, (
            f"migrate() warnings, {case}"
        )
        versions = self.tmp_path / "migrations" / "versions"
        if not expected.diffs:
            assert written is None, case
            assert list(versions.glob("*.py")) == []
            return
        assert isinstance(written, Script), case
        path = Path(written.path)
        source = path.read_text()
        compile(source, str(path), "exec")
        upgrade = function_body(source, "upgrade")
        assert lines(upgrade) == lines("    " + expected.upgrade), case
        downgrade = function_body(source, "downgrade")
        assert lines(downgrade) == lines("    " + expected.downgrade), case
        # The next comparison runs at the same (empty) history again.
        path.unlink()

    def run(self) -> None:
        self.build_database()
        app = self.build_app()
        with app.app_context():
            first = self.oracle()
            # The case introduced what it meant to: a broken oracle cannot
            # make the comparison pass trivially.
            assert bool(first.diffs) is self.case.changes, first.diffs
            missing = set(self.case.expect) - entries(first.raw)
            assert not missing, (missing, entries(first.raw))
            self.compare(app, first)

            self.run_change(self.case.again)
            second = self.oracle()
            if self.case.again is not None and self.case.again_changes:
                assert second.diffs != first.diffs
            else:
                assert second.diffs == first.diffs
            self.compare(app, second)


def case_params() -> list[Any]:
    return [
        pytest.param(case, backend, id=f"{case.id}-{backend}")
        for case in CASES
        for backend in ("sqlite", "postgresql", "mysql")
        if backend in case.backends
    ]


@pytest.fixture
def database_server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue(f"{request.param}_server")  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("case", "database_server"), case_params(), indirect=["database_server"]
)
def test_same_answer_as_alembic(
    case: Case,
    database_server: Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    differential = Differential(case, database_server, tmp_path, capsys)
    try:
        differential.run()
    finally:
        differential.close()
