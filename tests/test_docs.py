"""The documentation builds cleanly and says what the code does.

The Sphinx build runs with ``-W``: a docstring that no longer renders, a
reference to something renamed, or a page missing from the table of contents
fails the suite instead of drifting silently.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

DOCS = REPO / "docs"

TRY_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install . && cd examples/todo && "
    "rm -rf migrations instance && ../../.venv/bin/flask db init && "
    '../../.venv/bin/flask db migrate -m "create todo table" && '
    "../../.venv/bin/flask db upgrade && ../../.venv/bin/flask db current"
)
TEST_COMMAND = (
    'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && '
    ".venv/bin/python -m pytest"
)


def test_sphinx_build_has_no_warnings(tmp_path: Path) -> None:
    if importlib.util.find_spec("sphinx") is None:
        pytest.skip('Sphinx is not installed: pip install -e ".[docs]"')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if result.returncode != 0:
        print(result.stdout)
        print(result.stderr, file=sys.stderr)
    assert result.returncode == 0, result.stderr


def test_readme_has_the_commands_to_try_and_test() -> None:
    readme = (REPO / "README.rst").read_text(encoding="utf-8")
    assert TRY_COMMAND in readme
    assert TEST_COMMAND in readme


def test_ci_runs_the_test_command_of_the_readme() -> None:
    ci_script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert TEST_COMMAND in ci_script.splitlines()


def test_readme_and_changes_are_valid_restructuredtext() -> None:
    # README.rst is the package's long_description: a markup error there
    # shows up as raw text on the package index.
    if importlib.util.find_spec("docutils") is None:
        pytest.skip("docutils is not installed (it comes with Sphinx)")
    import docutils.core
    import docutils.utils

    for name in ("README.rst", "CHANGES.rst"):
        text = (REPO / name).read_text(encoding="utf-8")
        try:
            docutils.core.publish_doctree(
                text,
                source_path=name,
                settings_overrides={"halt_level": 2, "report_level": 5},
            )
        except docutils.utils.SystemMessage as exc:
            pytest.fail(f"{name}: {exc}")


def test_api_page_covers_the_public_api() -> None:
    import flask_migrate_alt

    api = (DOCS / "api.rst").read_text(encoding="utf-8")
    missing = [
        name
        for name in flask_migrate_alt.__all__
        if f":: {name}\n" not in api and f":: {name}(" not in api
    ]
    assert not missing, f"docs/api.rst does not document {missing}"
    assert ".. automodule:: flask_migrate_alt.environment" in api


def _documented_options(section: str) -> set[str]:
    """Return the option names of the ``.. option::`` lines in ``section``."""
    names = set()
    for line in section.splitlines():
        if line.startswith(".. option:: "):
            for form in line[len(".. option:: ") :].split(", "):
                names.add(form.split()[0])
    return names


def test_cli_page_covers_every_command_and_option() -> None:
    import click

    from flask_migrate_alt.cli import db

    cli = (DOCS / "cli.rst").read_text(encoding="utf-8")
    # Each ".. program::" directive starts the section of one command.
    programs = {}
    for section in cli.split(".. program:: ")[1:]:
        name, _, body = section.partition("\n")
        programs[name.strip()] = _documented_options(body)
    shared = programs["flask db"]
    missing = []
    for name, command in db.commands.items():
        program = f"flask db {name}"
        if program not in programs:
            missing.append(program)
            continue
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            # -d and -x are described once, for the group.
            if not set(param.opts) & (programs[program] | shared):
                missing.append(f"{program} {'/'.join(param.opts)}")
    assert not missing, f"docs/cli.rst does not describe {missing}"


def test_python_api_page_covers_every_function() -> None:
    import inspect

    import flask_migrate_alt

    page = (DOCS / "python-api.rst").read_text(encoding="utf-8")
    functions = [
        name
        for name in flask_migrate_alt.__all__
        if inspect.isfunction(getattr(flask_migrate_alt, name))
        and name != "catch_errors"
    ]
    missing = [
        name for name in functions if f":func:`~flask_migrate_alt.{name}`" not in page
    ]
    assert not missing, f"docs/python-api.rst does not mention {missing}"


# The public surface of Flask-Alembic 3.3, which docs/flask-alembic.rst maps
# to ours: methods and properties of its Alembic class, constructor and
# revision() parameters, config keys, and flask db commands.
FLASK_ALEMBIC_METHODS = [
    "init_app",
    "rev_id",
    "config",
    "script_directory",
    "environment_context",
    "migration_contexts",
    "migration_context",
    "ops",
    "op",
    "run_migrations",
    "mkdir",
    "current",
    "needs_upgrade",
    "heads",
    "branches",
    "log",
    "stamp",
    "upgrade",
    "downgrade",
    "revision",
    "merge",
    "produce_migrations",
    "needs_revision",
    "compare_metadata",
]
FLASK_ALEMBIC_PARAMETERS = [
    "metadatas",
    "engines",
    "command_name",
    "run_mkdir",
    "empty",
    "branch",
    "parent",
    "splice",
    "depend",
    "label",
    "path",
]
FLASK_ALEMBIC_CONFIG = [
    "ALEMBIC",
    "ALEMBIC_CONTEXT",
    "script_location",
    "version_locations",
    "path_separator",
]
FLASK_ALEMBIC_COMMANDS = [
    "mkdir",
    "current",
    "heads",
    "branches",
    "log",
    "show",
    "check",
    "stamp",
    "upgrade",
    "downgrade",
    "revision",
    "merge",
]


def _in_literal(name: str, text: str) -> bool:
    """Tell whether ``name`` appears as a word inside a ``literal``."""
    import re

    return re.search(rf"``[^`]*\b{re.escape(name)}\b[^`]*``", text) is not None


def test_flask_alembic_page_maps_every_feature() -> None:
    page = (DOCS / "flask-alembic.rst").read_text(encoding="utf-8")
    missing = [
        name
        for name in FLASK_ALEMBIC_METHODS + FLASK_ALEMBIC_PARAMETERS
        if not _in_literal(name, page)
    ]
    missing += [
        f'config["{key}"]' for key in FLASK_ALEMBIC_CONFIG if not _in_literal(key, page)
    ]
    missing += [
        f"flask db {name}"
        for name in FLASK_ALEMBIC_COMMANDS
        if f"flask db {name}" not in page
    ]
    assert not missing, f"docs/flask-alembic.rst does not map {missing}"


def test_flask_alembic_list_matches_the_installed_release() -> None:
    # Only a check when Flask-Alembic 3.3 happens to be installed (it is not
    # a test dependency): the lists above must be its whole public surface.
    if importlib.util.find_spec("flask_alembic") is None:
        return
    from importlib.metadata import version

    if not version("Flask-Alembic").startswith("3.3."):
        return
    import inspect

    from flask_alembic import Alembic
    from flask_alembic.cli import cli

    public = {name for name in vars(Alembic) if not name.startswith("_")}
    assert public == set(FLASK_ALEMBIC_METHODS)
    parameters = set(inspect.signature(Alembic).parameters) - {"app"}
    parameters |= set(inspect.signature(Alembic.revision).parameters)
    parameters -= {"self", "message"}
    assert parameters == set(FLASK_ALEMBIC_PARAMETERS)
    assert set(cli.commands) == set(FLASK_ALEMBIC_COMMANDS)
