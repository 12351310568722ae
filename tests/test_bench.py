"""The benchmark in bench/ runs end to end on a tiny workload.

Only that it runs and what it writes is checked, never a timing. Flask-Migrate
and matplotlib are not test dependencies: without Flask-Migrate the harness
measures flask_migrate_alt alone (with and without its speed-ups), and
without matplotlib it writes no plot and says why.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from bench import harness, report
from bench.__main__ import _parser, _plan

TINY = {
    "backends": ("sqlite",),
    "repeat": 1,
    "startup_repeat": 1,
    "noop_sizes": (3,),
    "read_only_sizes": (3,),
    "full_sizes": (3,),
    "check_sizes": (3,),
    "mode": "test",
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    plan = harness.Plan(tools=harness.available_tools(), **TINY)
    workdir = tmp_path_factory.mktemp("bench-work")
    return harness.run(plan, workdir, log=lambda message: None)


def _header(markdown: str) -> str:
    """The header of the Time table (the Ratios table, if any, comes first)."""
    lines = markdown.splitlines()
    lines = lines[lines.index("## Time") :]
    return next(line for line in lines if line.startswith("| work"))


def test_bench_writes_results_for_every_workload(
    results: dict[str, Any], tmp_path: Path
) -> None:
    written = report.write(results, tmp_path)

    assert (tmp_path / "results.md").is_file()
    assert (tmp_path / "results.json").is_file()
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "plot.png").is_file()
        assert written["plot"] == tmp_path / "plot.png"
    else:
        assert not (tmp_path / "plot.png").exists()
        assert "matplotlib is not installed" in (tmp_path / "results.md").read_text()

    data = json.loads((tmp_path / "results.json").read_text())
    assert data["workloads"] == list(harness.WORKLOADS)
    tools = set(harness.available_tools())
    assert set(data["tools"]) == tools
    measured = {(m["workload"], m["tool"]) for m in data["measurements"]}
    for workload in harness.WORKLOADS:
        assert {(workload, tool) for tool in tools} <= measured
    assert ("startup", harness.BASELINE) in measured
    assert ("full_upgrade", harness.FLOOR) in measured
    for m in data["measurements"]:
        assert m["backend"] == "sqlite"
        assert len(m["samples"]) == 1
        assert {"seconds", "process_seconds", "max_rss_kib"} <= set(m["samples"][0])
    assert data["versions"]["alembic"]
    assert [row["backend"] for row in data["startup_overhead"]] == ["sqlite"]
    assert [row["n"] for row in data["floor"]] == [3]

    header = _header((tmp_path / "results.md").read_text())
    assert "ours median [min-max]" in header
    assert "ours_plain median [min-max]" in header
    assert "ours / ours_plain" in header
    for row in data["comparisons"]:
        assert set(row["seconds"]["tools"]) == tools
        for ratio in row["seconds"]["ratios"].values():
            assert ratio is not None and ratio > 0
    if "flask_migrate" in tools:
        assert "flask_migrate median [min-max]" in header
        assert "ours_plain / flask_migrate" in header
        assert set(data["comparisons"][0]["seconds"]["ratios"]) == {
            "ours / flask_migrate",
            "ours_plain / flask_migrate",
            "ours / ours_plain",
        }


def test_bench_report_without_flask_migrate(
    results: dict[str, Any], tmp_path: Path
) -> None:
    # What a run without Flask-Migrate installed (or with --tools
    # ours,ours_plain) produces: no Flask-Migrate column, and only the ratio
    # of the speed-ups.
    alone = dict(results)
    alone["tools"] = ["ours", "ours_plain"]
    alone["measurements"] = [
        m for m in results["measurements"] if m["tool"] != "flask_migrate"
    ]
    report.write(alone, tmp_path)

    markdown = (tmp_path / "results.md").read_text()
    header = _header(markdown)
    assert "ours median [min-max]" in header
    assert "flask_migrate" not in header
    assert header.endswith("| ours / ours_plain |")
    data = json.loads((tmp_path / "results.json").read_text())
    assert {m["tool"] for m in data["measurements"]} <= {
        "ours",
        "ours_plain",
        harness.BASELINE,
        harness.FLOOR,
    }


def test_ours_plain_runs_with_the_speedups_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Whatever the caller's shell says, ours runs with the speed-ups on and
    # ours_plain with them off.
    monkeypatch.setenv("FLASK_DB_SPEEDUPS", "0")
    monkeypatch.setenv("FLASK_DB_LOCK", "0")
    ours = harness._child_environment("ours")
    plain = harness._child_environment("ours_plain")
    assert "FLASK_DB_SPEEDUPS" not in ours
    assert "FLASK_DB_LOCK" not in ours
    assert plain["FLASK_DB_SPEEDUPS"] == "0"
    assert "FLASK_DB_LOCK" not in plain
    assert harness.tool_spec("check", "ours_plain")["package"] == "flask_migrate_alt"


def test_tools_option(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in harness.POSTGRESQL_ENV:
        monkeypatch.delenv(name, raising=False)

    def plan(*argv: str) -> harness.Plan:
        return _plan(_parser().parse_args(["--backends", "sqlite", *argv]))

    assert plan().tools == harness.available_tools()
    # Given in any order, measured in the order of the report's columns.
    assert plan("--tools", "ours_plain, ours").tools == ("ours", "ours_plain")
    with pytest.raises(SystemExit, match="--tools takes"):
        plan("--tools", "ours,alembic")
    with pytest.raises(SystemExit, match="--tools takes"):
        plan("--tools", ",")
