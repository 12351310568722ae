"""Sphinx configuration for the flask_migrate_alt documentation.

Only extensions that ship with Sphinx are used, and nothing is fetched from
the network, so ``sphinx-build -W`` gives the same result offline and in CI.
"""

from __future__ import annotations

import importlib.metadata

project = "flask_migrate_alt"
author = "flask_migrate_alt developers"
copyright = "flask_migrate_alt developers"

try:
    release = importlib.metadata.version("flask_migrate_alt")
except importlib.metadata.PackageNotFoundError:  # building from an uninstalled checkout
    release = "0.1.0"
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
