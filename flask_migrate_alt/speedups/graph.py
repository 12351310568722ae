"""Answering from the revision cache, without importing Alembic.

Importing Alembic and reading thousands of revision files costs more than
several commands need:

* ``upgrade`` on a database that is already up to date (most deploys) only
  needs the heads of the history and the revisions in each version table;
* ``heads`` and ``history`` only print the shape of the history.

When the repository has the plain layout and the revision cache (see
:mod:`.revisions`) is up to date for every revision file, the history is
read from the cache alone, and :class:`RevisionGraph` gives Alembic's
answers and prints Alembic's lines for it. Whenever that cannot be known
for sure (an unusual ``alembic.ini``, a file the cache has not seen, a
symbolic link, a graph Alembic would reject or that uses ``depends_on``,
an async engine, a version table that cannot be read) the
answer is ``None`` and the normal path runs, so the answer is the one
Alembic would give (the revision files are not imported, see the
package's docstring).
"""

from __future__ import annotations

import configparser
import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..paths import CACHE_VERSION, cache_file, is_revision_file, version_folders

if TYPE_CHECKING:
    from alembic.script import Script

    from ..databases import Database

__all__ = [
    "CachedRevision",
    "LazyScripts",
    "RevisionGraph",
    "cached_graph",
    "cached_heads",
    "database_versions",
    "cached_revisions",
    "databases_at",
    "write_line",
]

# alembic.ini options that change which files are revisions, or where.
_LAYOUT_OPTIONS = ("version_locations", "recursive_version_locations", "sourceless")

# Characters Alembic refuses in a revision id.
_ILLEGAL_ID_CHARACTERS = frozenset("@-+:")

# How sqlalchemy.util.asbool reads a false value; anything else in
# revision_environment is left to Alembic.
_FALSE = ("false", "no", "off", "n", "f", "0")


def _alembic_options(directory: str) -> dict[str, str] | None:
    """The ``[alembic]`` options of the repository's alembic.ini.

    ``{}`` without an alembic.ini; ``None`` when it cannot be read here.
    """
    ini = Path(directory) / "alembic.ini"
    if not ini.is_file():
        return {}
    parser = configparser.RawConfigParser()
    try:
        parser.read(ini, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None
    if not parser.has_section("alembic"):
        return {}
    return dict(parser.items("alembic"))


def _plain_layout(directory: str, *, env_free: bool = False) -> bool:
    """Whether Alembic reads revisions from the default version folders.

    With ``env_free``, also whether alembic.ini leaves env.py out of
    commands that do not need it (``revision_environment``).
    """
    options = _alembic_options(directory)
    if options is None or any(option in options for option in _LAYOUT_OPTIONS):
        return False
    if env_free:
        value = options.get("revision_environment", "false").strip().lower()
        if value not in _FALSE:
            return False
    if "truncate_slug_length" in options:
        try:
            int(options["truncate_slug_length"])
        except ValueError:
            return False  # Alembic fails reading it: let it say so
    return True


_Listing = tuple[list[tuple[str, os.stat_result]], bool]


def _listing(folder: Path) -> _Listing | None:
    """The revision files of ``folder`` (name, stat), sorted by name as
    Alembic sorts them, and whether it has subfolders besides ``__pycache__``.

    ``None`` if a file is not a plain file: Alembic follows symbolic links,
    and so does the normal path.
    """
    files: list[tuple[str, os.stat_result]] = []
    subfolders = False
    with os.scandir(folder) as listing:
        for entry in listing:
            name = entry.name
            if entry.is_dir():
                subfolders = subfolders or name != "__pycache__"
            elif is_revision_file(name):
                if entry.is_symlink() or not entry.is_file():
                    return None
                files.append((name, entry.stat()))
    files.sort()
    return files, subfolders


@dataclass(frozen=True)
class CachedRevision:
    """What the revision cache holds about one revision file."""

    revision: str
    #: ``down_revision`` as a tuple (empty for a base).
    down: tuple[str, ...]
    branch_labels: tuple[str, ...]
    depends_on: tuple[str, ...]
    doc: str | None
    #: The file's resolved path, as Alembic shows it.
    path: str


def _ids(value: Any) -> tuple[str, ...] | None:
    """A cached identifier field as Alembic's ``to_tuple`` makes it, if plain."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None


def _revision(found: Any, path: str) -> CachedRevision | None:
    if not isinstance(found, dict):
        return None
    revision = found.get("revision")
    down = _ids(found.get("down_revision"))
    labels = _ids(found.get("branch_labels"))
    depends_on = _ids(found.get("depends_on"))
    doc = found.get("doc")
    if (
        not isinstance(revision, str)
        or down is None
        or labels is None
        or depends_on is None
        or not (doc is None or isinstance(doc, str))
    ):
        return None
    if sys.flags.optimize >= 2:
        doc = None  # python -OO: imported modules have no docstring either
    return CachedRevision(revision, down, labels, depends_on, doc, path)


def cached_revisions(
    directory: str, *, env_free: bool = False
) -> list[CachedRevision] | None:
    """Every revision of the repository, in the order Alembic reads them.

    That is folder by folder (``versions/``, then each branch folder), each
    folder's files sorted by name. ``None`` unless the revision cache is up
    to date for every revision file (same size, modification time and
    inode) and nothing about the files needs a closer look.
    """
    versions = Path(directory) / "versions"
    if not _plain_layout(directory, env_free=env_free) or not versions.is_dir():
        return None
    listings = {versions: _listing(versions)}
    first = listings[versions]
    if first is None:
        return None
    # Branch folders are rare; when there are any, paths.version_folders
    # says which folders are version locations.
    folders = version_folders(directory) if first[1] else [versions]
    revisions: list[CachedRevision] = []
    for folder in folders:
        listing = listings[folder] if folder in listings else _listing(folder)
        if listing is None:
            return None
        try:
            data = json.loads(cache_file(folder).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return None
        entries = data.get("files")
        if not isinstance(entries, dict):
            return None
        prefix = os.path.join(folder.resolve(), "")
        for name, stat in listing[0]:
            cached = entries.get(name)
            if not isinstance(cached, dict) or cached.get("signature") != [
                stat.st_size,
                stat.st_mtime_ns,
                stat.st_ino,
            ]:
                return None
            revision = _revision(cached.get("found"), prefix + name)
            if revision is None:
                return None
            revisions.append(revision)
    return revisions


def cached_heads(directory: str) -> set[str] | None:
    """The heads of the history, if the revision cache knows every file."""
    revisions = cached_revisions(directory)
    graph = (
        None if revisions is None else RevisionGraph.build(revisions, printing=False)
    )
    if graph is None or not graph.heads:
        return None
    return set(graph.heads)


def cached_graph(directory: str, *, env_free: bool = False) -> RevisionGraph | None:
    """The revision graph from the cache, when Alembic's answer is sure."""
    revisions = cached_revisions(directory, env_free=env_free)
    if revisions is None:
        return None
    return RevisionGraph.build(revisions)


class RevisionGraph:
    """A revision history as Alembic's ``RevisionMap`` sees it.

    :meth:`build` checks the history as Alembic would: every revision id is
    valid and unique, every ``down_revision`` names a revision that exists,
    branch labels are unique, and there is no cycle. For printing it also
    requires that no revision uses ``depends_on`` and that, once Alembic has
    spread each branch label over its branch, no revision carries more than
    one label (Alembic shows several in an order that depends on the
    interpreter's hashing); it returns ``None`` for anything else.

    The heads, the order of ``history`` and the printed lines follow
    Alembic's ``RevisionMap`` and ``Script.cmd_format``; the tests compare
    them with Alembic's on generated histories with branches, merges and
    labels.
    """

    def __init__(self, revisions: list[CachedRevision]) -> None:
        self.revisions = {rev.revision: rev for rev in revisions}
        self._order = {rev.revision: index for index, rev in enumerate(revisions)}
        # Alembic builds each revision's set of children one union at a
        # time, in file order, then once more for every labelled child
        # (labels are keys of its map too); each union copies the set, and
        # a copy may iterate in another order. Built the same way, the sets
        # iterate as Alembic's do, which "Branches into:" shows.
        self.children: dict[str, frozenset[str]] = dict.fromkeys(
            self.revisions, frozenset()
        )
        labelled = [rev for rev in revisions if rev.branch_labels]
        for rev in [*revisions, *(r for r in labelled for _ in r.branch_labels)]:
            for parent in rev.down:
                self.children[parent] = self.children[parent].union([rev.revision])
        #: The heads, in file order (as ``ScriptDirectory.get_heads()``).
        self.heads = [
            rev.revision for rev in revisions if not self.children[rev.revision]
        ]
        #: Each revision's branch labels, spread as Alembic spreads them.
        self.labels = {rev.revision: set(rev.branch_labels) for rev in revisions}
        for rev in labelled:
            self._spread(rev.revision, set(rev.branch_labels))

    def _spread(self, rid: str, labels: set[str]) -> None:
        """Alembic's ``RevisionMap._add_branches`` for one labelled revision.

        The labels go to every descendant, then, starting from the last
        descendant Alembic's depth-first walk reaches, down the history
        until a branch point or a merge point.
        """
        seen: set[str] = set()
        todo = [rid]
        last = rid
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            todo.extend(self.children[current])
            self.labels[current] |= labels
            last = current
        while len(self.children[last]) <= 1 and len(self.revisions[last].down) <= 1:
            self.labels[last] |= labels
            if not self.revisions[last].down:
                break
            last = self.revisions[last].down[0]

    @classmethod
    def build(
        cls, revisions: list[CachedRevision], *, printing: bool = True
    ) -> RevisionGraph | None:
        """The graph of ``revisions``, or ``None`` if Alembic's answer is unsure.

        Without ``printing`` (only the heads are wanted), ``depends_on`` and
        any number of branch labels are accepted.
        """
        ids = [rev.revision for rev in revisions]
        known = set(ids)
        if len(known) != len(ids):
            return None  # a duplicate id: Alembic warns, let it
        labels: dict[str, str] = {}
        for rev in revisions:
            if (
                not rev.revision
                or _ILLEGAL_ID_CHARACTERS & set(rev.revision)
                or len(set(rev.down)) != len(rev.down)
                or not known.issuperset(rev.down)
                or len(set(rev.branch_labels)) != len(rev.branch_labels)
            ):
                return None
            for label in rev.branch_labels:
                if label in known or label in labels:
                    return None  # Alembic refuses a label used twice
                labels[label] = rev.revision
        if printing and any(rev.depends_on for rev in revisions):
            return None
        requires = {rev.revision: set(rev.down) for rev in revisions}
        for rev in revisions:
            for dependency in rev.depends_on:
                target = dependency if dependency in known else labels.get(dependency)
                if target is None:
                    return None  # Alembic fails on an unknown dependency
                requires[rev.revision].add(target)
        if not _acyclic(requires):
            return None
        graph = cls(revisions)
        if printing and any(len(found) > 1 for found in graph.labels.values()):
            return None
        return graph

    def _ancestors(self, rid: str) -> set[str]:
        found = set()
        todo = [rid]
        while todo:
            current = todo.pop()
            if current not in found:
                found.add(current)
                todo.extend(self.revisions[current].down)
        return found

    def walk(self) -> list[str]:
        """The revision ids as ``history`` lists them (newest first).

        Alembic's topological sort of the whole history: it follows one
        head down until it reaches a revision another pending head still
        depends on, then switches to that head.
        """
        todo = set(self.revisions)
        heads = sorted(self.heads, key=self._order.__getitem__)
        ancestors = [self._ancestors(head) for head in heads]
        output: list[str] = []
        index = 0
        while heads:
            candidate = heads[index]
            for other, above in enumerate(ancestors):
                if other != index and candidate in above:
                    index = other  # another head must come down first
                    break
            else:
                if candidate in todo:
                    output.append(candidate)
                    todo.remove(candidate)
                down = self.revisions[candidate].down
                pending = [r for r in down if r in todo and r not in heads]
                if not pending:
                    del heads[index]
                    del ancestors[index]
                    index = max(index - 1, 0)
                elif len(down) == 1:
                    heads[index] = pending[0]
                    ancestors[index].discard(candidate)
                else:
                    heads[index] = pending[0]
                    heads.extend(pending[1:])
                    ancestors[index] = self._ancestors(pending[0])
                    ancestors.extend(self._ancestors(r) for r in pending[1:])
        return output

    # Alembic's Script.cmd_format, for a revision without depends_on and
    # with at most one branch label.

    def _parents(self, rid: str) -> str:
        down = self.revisions[rid].down
        return ", ".join(down) if down else "<base>"

    def _label(self, rid: str) -> str:
        return "".join(f" ({label})" for label in self.labels[rid])

    def _flags(self, rid: str) -> tuple[str, str, str]:
        children = self.children[rid]
        return (
            "" if children else " (head)",
            " (branchpoint)" if len(children) > 1 else "",
            " (mergepoint)" if len(self.revisions[rid].down) > 1 else "",
        )

    @staticmethod
    def _longdoc(rev: CachedRevision) -> str:
        return rev.doc.strip() if rev.doc else ""

    def _log_entry(self, rid: str) -> str:
        rev = self.revisions[rid]
        head, branchpoint, mergepoint = self._flags(rid)
        entry = f"Rev: {rid}{head}{branchpoint}{mergepoint}\n"
        entry += f"{'Merges' if mergepoint else 'Parent'}: {self._parents(rid)}\n"
        if branchpoint:
            entry += f"Branches into: {', '.join(self.children[rid])}\n"
        for label in self.labels[rid]:
            entry += f"Branch names: {label}\n"
        entry += f"Path: {rev.path}\n"
        paragraphs = self._longdoc(rev).splitlines()
        entry += "\n{}\n".format("\n".join(f"    {line}" for line in paragraphs))
        return entry

    def head_line(self, rid: str, verbose: bool) -> str:
        """What ``heads`` prints for ``rid``."""
        if verbose:
            return self._log_entry(rid)
        return rid + self._label(rid) + self._flags(rid)[0]

    def current_line(self, rid: str, verbose: bool) -> str:
        """What ``current`` prints for ``rid``."""
        if verbose:
            return self._log_entry(rid)
        return rid + "".join(self._flags(rid))

    def history_line(self, rid: str, verbose: bool) -> str:
        """What ``history`` prints for ``rid``."""
        if verbose:
            return self._log_entry(rid)
        head, branchpoint, mergepoint = self._flags(rid)
        doc = re.split("\n\n", self._longdoc(self.revisions[rid]))[0]
        return (
            f"{self._parents(rid)} -> {rid}{self._label(rid)}"
            f"{head}{branchpoint}{mergepoint}, {doc}"
        )


def _acyclic(requires: dict[str, set[str]]) -> bool:
    """Whether the revisions, each requiring ``requires[id]``, have no cycle."""
    waiting = {rid: len(needed) for rid, needed in requires.items()}
    needed_by: dict[str, list[str]] = {rid: [] for rid in requires}
    for rid, needed in requires.items():
        for other in needed:
            needed_by[other].append(rid)
    ready = [rid for rid, count in waiting.items() if count == 0]
    done = 0
    while ready:
        rid = ready.pop()
        done += 1
        for later in needed_by[rid]:
            waiting[later] -= 1
            if waiting[later] == 0:
                ready.append(later)
    return done == len(requires)


def write_line(text: str) -> None:
    """Print ``text`` and a newline as Alembic's ``Config.print_stdout`` does.

    To the current ``sys.stdout``, with characters its encoding cannot show
    replaced, and a closed pipe ignored.
    """
    stream = sys.stdout
    encoding = getattr(stream, "encoding", None) or "ascii"
    for part in (text, "\n"):
        try:
            stream.write(part.encode(encoding, "replace").decode(encoding))
        except OSError:
            break


def database_versions(
    multidb: bool, options: dict[str, Any]
) -> list[tuple[Database, list[str]]] | None:
    """Each database with the rows of its version table, in the order of env.py.

    ``None`` when a database cannot be read here (an async engine, no
    version table yet, an error): Alembic's path then decides.
    """
    import sqlalchemy as sa

    from ..databases import databases

    table = sa.Table(
        options.get("version_table") or "alembic_version",
        sa.MetaData(),
        sa.Column("version_num", sa.String(32)),
        schema=options.get("version_table_schema"),
    )
    found = []
    for db in databases(multidb):
        if db.is_async:
            return None
        try:
            with db.engine.connect() as connection:
                try:
                    rows = list(
                        connection.execute(sa.select(table.c.version_num)).scalars()
                    )
                except sa.exc.SQLAlchemyError:
                    # No version table yet (a database at base), or one that
                    # cannot be read here.
                    connection.rollback()
                    if sa.inspect(connection).has_table(table.name, table.schema):
                        return None
                    rows = []
                found.append((db, rows))
        except sa.exc.SQLAlchemyError:
            return None
    return found


def databases_at(
    heads: Iterable[str], multidb: bool, options: dict[str, Any]
) -> bool | None:
    """Tell whether every database's version table holds exactly ``heads``."""
    found = database_versions(multidb, options)
    if found is None:
        return None
    return all(set(rows) == set(heads) for _, rows in found)


def _filled(name: str) -> Callable[..., Any]:
    method = getattr(list, name)

    def call(self: LazyScripts, *args: Any, **kwargs: Any) -> Any:
        self._fill()
        return method(self, *args, **kwargs)

    call.__name__ = name
    call.__doc__ = method.__doc__
    return call


class LazyScripts(list["Script"]):
    """A list of ``Script`` objects that are built the first time it is used.

    ``heads`` and ``history`` answered from the revision cache print without
    importing Alembic; building the ``Script`` objects they return means
    importing Alembic and reading the history again, which would cost more
    than the rest of the command, and ``flask db`` never looks at them. So
    the list is filled (by calling ``load``) on first use of any kind:
    ``len()``, indexing, iterating, comparing, printing. The revisions are
    then read as the files are at that moment.
    """

    def __init__(self, load: Callable[[], list[Script]]) -> None:
        super().__init__()
        self._load: Callable[[], list[Script]] | None = load

    def _fill(self) -> None:
        load, self._load = self._load, None
        if load is not None:
            list.extend(self, load())

    def __radd__(self, other: Any) -> Any:
        self._fill()
        return other + list(self)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Copies and pickles are plain lists of the loaded scripts.
        self._fill()
        return (list, (list(self),))


for _name in (
    "__add__",
    "__contains__",
    "__delitem__",
    "__eq__",
    "__ge__",
    "__getitem__",
    "__gt__",
    "__iadd__",
    "__imul__",
    "__iter__",
    "__le__",
    "__len__",
    "__lt__",
    "__mul__",
    "__ne__",
    "__repr__",
    "__reversed__",
    "__rmul__",
    "__setitem__",
    "__sizeof__",
    "append",
    "clear",
    "copy",
    "count",
    "extend",
    "index",
    "insert",
    "pop",
    "remove",
    "reverse",
    "sort",
):
    setattr(LazyScripts, _name, _filled(_name))
del _name
