"""The built wheel and sdist carry the templates, and a plain install works.

This is what a user gets from ``pip install flask_migrate_alt``: no source
checkout next to it, so the templates must come from inside the wheel.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO

TEMPLATES = ["aioflask", "aioflask-multidb", "flask", "flask-multidb"]
TEMPLATE_FILES = ["README", "alembic.ini.mako", "env.py", "script.py.mako"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # Build from a copy: the build must not depend on (or litter) the checkout.
    src = tmp_path_factory.mktemp("src") / "project"
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", "__pycache__", "*.egg-info", "_build", "instance"
        ),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--outdir",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return out


def test_wheel_contains_templates_and_type_marker(dist: Path) -> None:
    wheel = next(dist.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in TEMPLATES:
        for file in TEMPLATE_FILES:
            assert f"flask_migrate_alt/templates/{template}/{file}" in names
    assert "flask_migrate_alt/py.typed" in names
    assert not any(name.startswith("tests/") for name in names)


def test_sdist_contains_templates(dist: Path) -> None:
    sdist = next(dist.glob("*.tar.gz"))
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for template in TEMPLATES:
        for file in TEMPLATE_FILES:
            assert f"templates/{template}/{file}" in names
    assert "LICENSE" in names and "README.rst" in names


def test_plain_install_runs_flask_db(dist: Path, tmp_path: Path) -> None:
    """pip install of the wheel into a fresh virtualenv, then the main job."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    wheel = next(dist.glob("*.whl"))
    subprocess.run(
        [str(bin_dir / "pip"), "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "examples" / "todo" / "app.py", project / "app.py")
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "FLASK_APP": "app.py",
        "HOME": str(tmp_path),
    }

    def flask(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir / "flask"), "db", *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
        )

    listing = flask("list-templates")
    assert listing.returncode == 0, listing.stderr
    for template in TEMPLATES:
        assert f"\n{template} - " in listing.stdout

    location = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import flask_migrate_alt; print(flask_migrate_alt.__file__)",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(venv) in location

    for args in (["init"], ["migrate", "-m", "create todo"], ["upgrade"], ["current"]):
        result = flask(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    assert "(head)" in result.stdout
    assert (project / "migrations" / "env.py").read_text() == (
        REPO / "templates" / "flask" / "env.py"
    ).read_text()
    assert (
        len(list((project / "migrations" / "versions").glob("*_create_todo.py"))) == 1
    )
