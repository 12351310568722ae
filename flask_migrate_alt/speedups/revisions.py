"""Reading the revision history without running every revision file.

Alembic builds its revision map by importing each revision file, which for
a history of thousands of revisions dominates commands that only need the
graph: ``heads``, ``history``, ``current``, or an ``upgrade`` on a database
that is already at head. Here the four identifiers Alembic reads from a
revision file (``revision``, ``down_revision``, ``branch_labels``,
``depends_on``) and its docstring are read from the file's syntax tree and
kept in a cache next to the bytecode cache
(``__pycache__/flask_migrate_alt.revisions.json``), keyed by each file's
size, modification time and inode. A file whose entry does not match is
read again; a file whose identifiers are not plain literals is imported the
normal way. Each revision's real module is imported the first time anything
else is asked of it (``upgrade``, ``downgrade``, ...), once. Until then its
module-level code has not run, and a file that fails to import has not
failed yet: the one difference from plain Alembic (see the package's
docstring).
"""

from __future__ import annotations

import json
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic.script import Script, ScriptDirectory
from alembic.util import load_python_file, warn

from ..paths import (
    CACHE_VERSION,
    REVISION_FIELDS,
    cache_file,
    is_revision_file,
    may_write_cache,
    read_identifiers,
)

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["CachedScriptDirectory", "script_directory"]


class _LazyModule(types.ModuleType):
    """A revision module that is imported only when its code is needed."""

    def __init__(self, path: Path, found: dict[str, Any]) -> None:
        # Under python -OO an imported module has no docstring.
        super().__init__(path.stem, None if sys.flags.optimize >= 2 else found["doc"])
        for name in REVISION_FIELDS:
            setattr(self, name, found[name])
        self.__file__ = str(path)
        self._fma_path = path
        self._fma_loaded = False

    def __getattr__(self, name: str) -> Any:
        # Alembic probes a legacy attribute no revision file sets; that alone
        # must not import the file.
        if name.startswith("__") or name in (
            "_fma_path",
            "_fma_loaded",
            "_alembic_source_encoding",
        ):
            raise AttributeError(name)
        if self._fma_loaded:
            # Imported already, and the file does not define the name: a
            # second import would run its module-level code again.
            raise AttributeError(
                f"revision module {self.__name__!r} has no attribute {name!r}"
            )
        path = self._fma_path
        module = load_python_file(str(path.parent), path.name)
        for key, value in vars(module).items():
            if key not in ("__name__", "__doc__"):
                setattr(self, key, value)
        self._fma_loaded = True
        return getattr(module, name)


def _read(path: Path) -> dict[str, Any] | None:
    """The identifiers and docstring of a revision file, or None if unsure.

    See :func:`~flask_migrate_alt.paths.read_identifiers`; a file whose
    docstring Python 3.13 would change when compiling is imported instead.
    """
    found = read_identifiers(path)
    doc = found and found["doc"]
    if doc and sys.version_info >= (3, 13) and _indented(doc):
        # Python 3.13 removes the indentation of docstrings when compiling;
        # import the file rather than guess the result.
        return None
    return found


def _indented(doc: str) -> bool:
    return any(line[:1].isspace() for line in doc.splitlines()[1:])


def _signature(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def _json_safe(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class _Cache:
    """The cache file of one folder of revision files."""

    def __init__(self, folder: Path) -> None:
        self.path = cache_file(folder)
        self.entries: dict[str, Any] = {}
        self.changed = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") == CACHE_VERSION:
                self.entries = data["files"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass

    def lookup(self, path: Path) -> dict[str, Any] | None:
        signature = _signature(path.stat())
        entry = self.entries.get(path.name)
        if entry is not None and entry["signature"] == signature:
            return entry["found"]  # type: ignore[no-any-return]
        found = _read(path)
        if found is not None:
            stored = {key: _json_safe(value) for key, value in found.items()}
            self.entries[path.name] = {"signature": signature, "found": stored}
            self.changed = True
        return found

    def save(self, present: set[str]) -> None:
        stale = set(self.entries) - present
        for name in stale:
            del self.entries[name]
        if not (self.changed or stale) or not may_write_cache():
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(
                json.dumps({"version": CACHE_VERSION, "files": self.entries}),
                encoding="utf-8",
            )
            os.replace(temporary, self.path)
        except OSError:
            pass  # a read-only checkout simply goes without the cache


def _resolved(path: Path, real_folders: dict[Path, Path]) -> Path:
    """``path.resolve()``, resolving each folder once.

    Resolving checks every component of the path for a link; for thousands
    of files in one folder that was most of the time spent listing them.
    """
    if path.is_symlink():
        return path.resolve()
    folder = path.parent
    if folder not in real_folders:
        real_folders[folder] = folder.resolve()
    return real_folders[folder] / path.name


class CachedScriptDirectory(ScriptDirectory):
    """A ``ScriptDirectory`` whose revision map is built from the cache."""

    def get_all_current(self, id_: tuple[str, ...]) -> set[Script]:
        """The current revisions: ``id_`` and the branch heads among its ancestors.

        Alembic finds these by walking all descendants of every ancestor,
        which takes quadratic time in the length of the history (seconds for
        a few thousand revisions). An ancestor has a descendant among the
        ancestors exactly when one of its children is among them (the set
        holds every ancestor), so one pass over the children gives the same
        set.
        """
        with self._catch_revision_errors():
            revision_map = self.revision_map
            top = [rev for rev in revision_map.get_revisions(id_) if rev is not None]
            # The one private call: Alembic's own ancestor walk, so that
            # dependencies are followed exactly as Alembic follows them.
            ancestors = revision_map._get_ancestor_nodes(top, include_dependencies=True)
            found = {rev for rev in [*top, *ancestors] if isinstance(rev, Script)}
            ids = {rev.revision for rev in found}
            return {
                rev for rev in found if not any(child in ids for child in rev.nextrev)
            }

    def _load_revisions(self) -> Iterator[Script]:
        if self.sourceless:
            yield from super()._load_revisions()
            return
        seen: set[Path] = set()
        for location in self._version_locations:
            if not location.exists():
                continue
            caches: dict[Path, _Cache] = {}
            present: dict[Path, set[str]] = {}
            real_folders: dict[Path, Path] = {}
            # Alembic's own listing, so both see exactly the same files.
            for file_path in Script._list_py_dir(self, location):
                real_path = _resolved(file_path, real_folders)
                if real_path in seen:
                    # Alembic's warning, word for word.
                    warn(
                        f"File {real_path} loaded twice! ignoring. "
                        "Please ensure version_locations is unique."
                    )
                    continue
                seen.add(real_path)
                if not is_revision_file(real_path.name):
                    continue
                folder = real_path.parent
                if folder not in caches:
                    caches[folder] = _Cache(folder)
                cache = caches[folder]
                present.setdefault(folder, set()).add(real_path.name)
                found = cache.lookup(real_path)
                if found is None:
                    script = Script._from_path(self, real_path)
                    if script is not None:
                        yield script
                    continue
                module = _LazyModule(real_path, found)
                yield Script(module, found["revision"], real_path)
            for folder, cache in caches.items():
                cache.save(present[folder])


def script_directory(config: Config) -> ScriptDirectory:
    """Return the cached ``ScriptDirectory`` for ``config``."""
    from alembic.script.revision import RevisionMap

    # ScriptDirectory.from_config() always builds the base class; build it
    # that way (so every option is read as Alembic reads it) and move its
    # state into the subclass, with a revision map that uses the cache.
    plain = ScriptDirectory.from_config(config)
    cached = CachedScriptDirectory.__new__(CachedScriptDirectory)
    cached.__dict__.update(plain.__dict__)
    cached.revision_map = RevisionMap(cached._load_revisions)
    return cached
