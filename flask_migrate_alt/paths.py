"""Where the shipped repository templates are, and what makes a template.

Kept apart from :mod:`.config` because it must not import Alembic: the
fast path of ``upgrade`` compares env.py files with the shipped ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = [
    "CACHE_FILE",
    "CACHE_VERSION",
    "available_templates",
    "is_revision_file",
    "is_template",
    "template_root",
    "version_folders",
]

#: The revision cache of a folder of revision files (see speedups/revisions.py),
#: relative to that folder, and the format version it is written in. The
#: interpreter is part of it, as in bytecode file names: Python 3.13 reads
#: docstrings differently, and an entry written by another Python is not
#: trusted.
CACHE_FILE = Path("__pycache__") / "flask_migrate_alt.revisions.json"
CACHE_VERSION = f"2/{sys.implementation.cache_tag}"


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
        if not is_template(path):
            continue
        readme = path / "README"
        synopsis = ""
        if readme.is_file():
            with readme.open(encoding="utf-8") as f:
                synopsis = f.readline().strip()
        found[path.name] = synopsis
    return found


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
