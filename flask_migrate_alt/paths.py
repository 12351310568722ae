"""Where the shipped repository templates are, and what makes a template.

Kept apart from :mod:`.config` because it must not import Alembic: the
fast path of ``upgrade`` compares env.py files with the shipped ones.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["available_templates", "is_template", "template_root"]


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
