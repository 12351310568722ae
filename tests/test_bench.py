"""The benchmark in bench/ runs end to end on a tiny workload.

Only that it runs and what it writes is checked, never a timing. Flask-Migrate
and matplotlib are not test dependencies: without Flask-Migrate the harness
measures flask_migrate_alt alone, and without matplotlib it writes no plot
and says why.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from bench import harness, report

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
    return next(line for line in markdown.splitlines() if line.startswith("| work"))


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
    assert "flask_migrate median [min-max]" in header


def test_bench_report_without_flask_migrate(
    results: dict[str, Any], tmp_path: Path
) -> None:
    # What a run without Flask-Migrate installed produces: an ours column
    # with times, and n/a where Flask-Migrate's would be.
    alone = dict(results)
    alone["tools"] = ["ours"]
    alone["measurements"] = [
        m for m in results["measurements"] if m["tool"] != "flask_migrate"
    ]
    report.write(alone, tmp_path)

    markdown = (tmp_path / "results.md").read_text()
    assert "ours median [min-max]" in _header(markdown)
    rows = [line for line in markdown.splitlines() if line.startswith("| no-op")]
    assert rows and all(row.endswith("| n/a | n/a |") for row in rows)
    data = json.loads((tmp_path / "results.json").read_text())
    assert {m["tool"] for m in data["measurements"]} <= {
        "ours",
        harness.BASELINE,
        harness.FLOOR,
    }
