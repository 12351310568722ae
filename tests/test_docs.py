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
