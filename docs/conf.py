"""Sphinx configuration for the flask_migrate_alt documentation.

Only extensions that ship with Sphinx are used, and nothing is fetched from
the network, so ``sphinx-build -W`` gives the same result offline and in CI.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Document the checkout this file belongs to, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flask_migrate_alt  # noqa: E402

project = "flask_migrate_alt"
author = "flask_migrate_alt developers"
copyright = "flask_migrate_alt developers"

release = flask_migrate_alt.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc"]

# The package must be importable (``pip install -e .``): autodoc reads the
# docstrings from the code, so the API page cannot drift from it.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
add_module_names = False

root_doc = "index"
exclude_patterns = ["_build"]
default_role = "code"
pygments_style = "sphinx"

html_theme = "alabaster"
html_title = f"flask_migrate_alt {release}"
html_theme_options = {
    "description": "Alembic migrations for Flask, compatible with Flask-Migrate",
    "fixed_sidebar": True,
}
html_static_path: list[str] = []
