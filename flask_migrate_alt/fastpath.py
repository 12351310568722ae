"""Answering "is every database already at head?" without importing Alembic.

Most deploys run ``upgrade`` on a database that is already up to date, and
pay for importing Alembic and reading every revision file to learn that
there is nothing to do. When the repository has the plain layout and the
revision cache (see :mod:`.revisions`) is up to date for every file, the
heads come from the cache and each database's revisions from one query of
its version table. Whenever that cannot be known for sure (an unusual
``alembic.ini``, a file the cache has not seen, an async engine, a version
table that cannot be read) the answer is ``None`` and the normal path runs.
"""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path
from typing import Any

from .paths import CACHE_FILE, CACHE_VERSION, is_revision_file, version_folders

__all__ = ["cached_heads", "databases_at"]

# alembic.ini options that change which files are revisions, or where.
_LAYOUT_OPTIONS = ("version_locations", "recursive_version_locations", "sourceless")


def _version_folders(directory: str) -> list[Path] | None:
    ini = Path(directory) / "alembic.ini"
    if ini.is_file():
        parser = configparser.RawConfigParser()
        try:
            parser.read(ini, encoding="utf-8")
        except configparser.Error:
            return None
        if parser.has_section("alembic") and any(
            parser.has_option("alembic", option) for option in _LAYOUT_OPTIONS
        ):
            return None
    return version_folders(directory) or None


def cached_heads(directory: str) -> set[str] | None:
    """The heads of the history, if the revision cache knows every file."""
    folders = _version_folders(directory)
    if folders is None:
        return None
    down: dict[str, tuple[str, ...]] = {}
    for folder in folders:
        try:
            data = json.loads((folder / CACHE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return None
        entries: dict[str, Any] = data.get("files", {})
        with os.scandir(folder) as listing:
            for entry in listing:
                name = entry.name
                if not entry.is_file() or not is_revision_file(name):
                    continue
                if entry.is_symlink():
                    return None
                stat = entry.stat()
                cached = entries.get(name)
                if cached is None or cached["signature"] != [
                    stat.st_size,
                    stat.st_mtime_ns,
                    stat.st_ino,
                ]:
                    return None
                found = cached["found"]
                parents = found["down_revision"]
                if parents is None:
                    parents = ()
                elif isinstance(parents, str):
                    parents = (parents,)
                if found["revision"] in down:
                    return None  # a duplicate id: let Alembic report it
                down[found["revision"]] = tuple(parents)
    if not down:
        return None
    referenced = {parent for parents in down.values() for parent in parents}
    if not referenced <= set(down):
        return None  # a dangling down_revision: let Alembic report it
    return set(down) - referenced


def databases_at(
    heads: set[str], multidb: bool, options: dict[str, Any]
) -> bool | None:
    """Tell whether every database's version table holds exactly ``heads``."""
    import sqlalchemy as sa

    from .environment import databases

    table = sa.Table(
        options.get("version_table") or "alembic_version",
        sa.MetaData(),
        sa.Column("version_num", sa.String(32)),
        schema=options.get("version_table_schema"),
    )
    for db in databases(multidb):
        if db.is_async:
            return None
        try:
            with db.engine.connect() as connection:
                current = set(
                    connection.execute(sa.select(table.c.version_num)).scalars()
                )
        except sa.exc.SQLAlchemyError:
            return None  # no version table yet, or it cannot be read here
        if current != heads:
            return False
    return True
