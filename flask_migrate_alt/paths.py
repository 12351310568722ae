"""Where the shipped repository templates are; what a template and a revision file are.

Kept apart from :mod:`.config` because it must not import Alembic: the
fast path of ``upgrade`` compares env.py files with the shipped ones.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "CACHE_VERSION",
    "REVISION_FIELDS",
    "available_templates",
    "cache_file",
    "configure_keywords",
    "in_process_environment",
    "may_write_cache",
    "is_revision_file",
    "is_template",
    "read_identifiers",
    "resource_path",
    "shipped_env",
    "template_root",
    "version_folders",
]

#: The format version the revision cache is written in (see
#: speedups/revisions.py). The interpreter is part of it, as in bytecode
#: file names: Python 3.13 reads docstrings differently, and an entry written
#: by another Python is not trusted.
CACHE_VERSION = f"2/{sys.implementation.cache_tag}"
_CACHE_NAME = "flask_migrate_alt.revisions.json"


def cache_file(folder: Path) -> Path:
    """Where the revision cache of a folder of revision files lives.

    The cache sits where Python keeps the bytecode of that folder's files,
    by Python's own rules: ``__pycache__/`` next to them, or the mirror of
    the folder under ``sys.pycache_prefix`` (``PYTHONPYCACHEPREFIX``) when
    one is set, so that a source tree kept free of caches stays free of
    ours too. Whether it may be written at all follows
    ``sys.dont_write_bytecode`` (see :func:`may_write_cache`).
    """
    from importlib.util import cache_from_source

    bytecode = cache_from_source(str(Path(folder).absolute() / "_.py"))
    return Path(bytecode).parent / _CACHE_NAME


def may_write_cache() -> bool:
    """Python's own rule for caches next to source: ``PYTHONDONTWRITEBYTECODE``.

    Read each time, as the import system does, since a test runner or an
    app may change ``sys.dont_write_bytecode`` at run time.
    """
    return not sys.dont_write_bytecode


def template_root() -> Path:
    """Return the folder holding the shipped repository templates.

    In an installed wheel the templates are package data next to this
    module; in a source checkout (including editable installs) they are the
    ``templates/`` folder at the top of the repository.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(
        f"the repository templates are missing from {here}; reinstall flask_migrate_alt"
    )


def shipped_env(directory: str | os.PathLike[str]) -> bool:
    """Whether the repository's env.py is one of the shipped templates'.

    Only then is it known what env.py does: it passes the configure
    arguments on to Alembic (so every step is reported) and, for an upgrade
    with nothing to apply, does nothing else (a custom env.py may seed
    data, log, ...).
    """
    try:
        env = (Path(directory) / "env.py").read_bytes()
    except OSError:
        return False
    return any(
        (folder / "env.py").read_bytes() == env
        for folder in template_root().iterdir()
        if (folder / "env.py").is_file()
    )


def is_template(path: Path) -> bool:
    """Tell whether ``path`` looks like an Alembic repository template.

    ``init`` needs ``env.py`` and ``script.py.mako``; ``alembic.ini.mako``
    and ``README`` are optional.
    """
    return (path / "env.py").is_file() and (path / "script.py.mako").is_file()


def available_templates(root: Path | None = None) -> dict[str, str]:
    """Return template names and their one-line synopsis, sorted by name.

    The synopsis is the first line of the template's ``README``.
    """
    root = template_root() if root is None else root
    found: dict[str, str] = {}
    for path in sorted(root.iterdir()):
        # "_in_process" is not a template: it stands in for the env.py that
        # Flask-Alembic's repositories do not have (see config.py).
        if path.name.startswith("_") or not is_template(path):
            continue
        readme = path / "README"
        synopsis = ""
        if readme.is_file():
            with readme.open(encoding="utf-8") as f:
                synopsis = f.readline().strip()
        found[path.name] = synopsis
    return found


def in_process_environment() -> Path:
    """The folder whose ``env.py`` runs a repository that has none.

    Flask-Alembic's repositories hold only ``script.py.mako`` and revision
    files; Alembic loads ``env.py`` from its ``script_location``, so the
    Config that runs them points there and lists the repository's folders
    as version locations.
    """
    return template_root() / "_in_process"


def resource_path(location: str, root_path: str) -> str:
    """The folder ``location`` names, as Flask-Alembic reads its settings.

    A relative path is taken from the app's ``root_path``; ``package:folder``
    names a folder inside an installed package (Alembic's resource syntax).
    """
    if os.path.isabs(location):
        return location
    package, colon, folder = location.partition(":")
    if colon and package and not os.path.splitdrive(location)[0]:
        import importlib.util

        spec = importlib.util.find_spec(package)
        if spec is None:
            raise RuntimeError(
                f"cannot find the package {package!r} of the location "
                f"{location!r} in app.config['ALEMBIC']; install it or use a path"
            )
        roots = list(spec.submodule_search_locations or ())
        base = roots[0] if roots else os.path.dirname(spec.origin or "")
        return os.path.join(base, folder)
    return os.path.join(root_path, location)


def version_folders(directory: str) -> list[Path]:
    """``versions/`` and the folders of named branches below it.

    These are the version locations of a repository whose ``alembic.ini``
    does not list its own (see ``config.build_config``); empty when there is
    no ``versions/`` folder.
    """
    versions = Path(directory) / "versions"
    if not versions.is_dir():
        return []
    branches = sorted(
        child
        for child in versions.iterdir()
        if child.is_dir() and child.name != "__pycache__"
    )
    return [versions, *branches]


def is_revision_file(name: str) -> bool:
    """Alembic's rule for revision source files: ``*.py``, not ``__init__``
    and not an editor's lock file."""
    return name.endswith(".py") and not name.startswith(("__init__", ".#"))


#: The names Alembic reads from a revision module.
REVISION_FIELDS = ("revision", "down_revision", "branch_labels", "depends_on")
_FIELD_NAMES = frozenset(REVISION_FIELDS)


def read_identifiers(path: Path) -> dict[str, Any] | None:
    """The identifiers and docstring of a revision file, or None if unsure.

    Read from the file's syntax tree, without running it: the four names of
    :data:`REVISION_FIELDS` and ``"doc"``. Only plain literals assigned at
    the top level count; for a file that binds one of the names in any other
    way (in an ``if``, a loop, a function, by an import) the answer is None,
    and importing the file is the only way to know.
    """
    import ast

    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):
        return None  # importing it reports the error the usual way
    found: dict[str, Any] = {"doc": ast.get_docstring(tree, clean=False)}
    plain: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in REVISION_FIELDS:
                try:
                    found[target.id] = ast.literal_eval(value)
                except ValueError:
                    return None  # computed at import time: import it
                plain.add(id(target))
    if _bound_otherwise(tree, plain):
        return None
    if "revision" not in found or "down_revision" not in found:
        return None
    found.setdefault("branch_labels", None)
    found.setdefault("depends_on", None)
    if not isinstance(found["revision"], str) or not all(
        _identifiers(found[name]) for name in REVISION_FIELDS[1:]
    ):
        return None  # let Alembic make of it what it makes
    return found


def _bound_otherwise(tree: Any, plain: set[int]) -> bool:
    """Whether the file binds one of the identifier names other than plainly."""
    import ast

    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id in _FIELD_NAMES and not isinstance(node.ctx, ast.Load):
                if id(node) not in plain:
                    return True
        elif isinstance(node, ast.ImportFrom):
            if any(alias.name == "*" for alias in node.names):
                return True
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            if _FIELD_NAMES.intersection(node.names):
                return True
        for attribute in ("name", "asname", "rest"):
            if getattr(node, attribute, None) in _FIELD_NAMES:
                return True  # def/class/import/except/match binding the name
    return False


def _identifiers(value: Any) -> bool:
    """Whether ``value`` is what Alembic reads as revision ids: None, a
    string, or a list or tuple of strings."""
    if value is None or isinstance(value, str):
        return True
    return isinstance(value, (list, tuple)) and all(
        isinstance(item, str) for item in value
    )


def configure_keywords(env_py: Path) -> frozenset[str]:
    """The keywords an env.py passes by name to ``context.configure()``.

    Read from the file's syntax tree, without running it. A common pattern
    is ``context.configure(include_object=..., **configure_args)``: a key the
    package itself adds to ``configure_args`` must then stay out of it, or
    Python refuses the call ("got multiple values for keyword argument").
    Every call of a function or method named ``configure`` counts; keywords
    passed as ``**mapping`` cannot be seen here. Empty when there is no
    env.py or it does not parse (running it reports that the usual way).
    """
    import ast

    try:
        tree = ast.parse(env_py.read_bytes(), filename=str(env_py))
    except (OSError, SyntaxError, ValueError):
        return frozenset()
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else None
        if isinstance(func, ast.Name):
            called = func.id
        if called == "configure":
            names.update(k.arg for k in node.keywords if k.arg is not None)
    return frozenset(names)
