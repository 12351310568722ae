"""Turn the results of :func:`bench.harness.run` into results.json, .md and .png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .harness import BASELINE, FLOOR, READ_ONLY, summary

TOOLS = ("ours", "flask_migrate")
LABELS = {
    "startup": "startup (import app)",
    "noop_upgrade": "no-op upgrade",
    "full_upgrade": "full upgrade",
    "extension": "startup: import the package + Migrate(app, db), in process",
    "check": "check, no changes (first run)",
    "check_repeat": "check, no changes (repeat run)",
    "current": "current",
    "heads": "heads",
    "history": "history",
}
#: The workloads drawn against history size in plot.png.
PLOTTED = ("noop_upgrade", *READ_ONLY)


def write(results: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write results.json, results.md and plot.png into ``out``.

    Adds the derived tables (``comparisons``, ``startup_overhead``,
    ``floor``) to ``results`` first, so that the JSON file holds them next
    to the raw samples. plot.png needs matplotlib; without it the Markdown
    says so. Returns the paths written.
    """
    out.mkdir(parents=True, exist_ok=True)
    results["comparisons"] = comparisons(results)
    results["startup_overhead"] = startup_overhead(results)
    results["floor"] = floor(results)
    written = {}
    plot_path = out / "plot.png"
    plot_path.unlink(missing_ok=True)
    plot_error = plot(results, plot_path)
    if plot_error is None:
        written["plot"] = plot_path
    results["plot"] = plot_error or plot_path.name
    written["json"] = out / "results.json"
    written["json"].write_text(json.dumps(results, indent=1) + "\n")
    written["markdown"] = out / "results.md"
    written["markdown"].write_text(markdown(results))
    return written


# --- derived tables --------------------------------------------------------


def _find(
    results: dict[str, Any], workload: str, backend: str, n: int | None, tool: str
) -> dict[str, Any] | None:
    wanted = (workload, backend, n, tool)
    for m in results["measurements"]:
        if (m["workload"], m["backend"], m["n"], m["tool"]) == wanted:
            return m
    return None


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or not theirs:
        return None
    return ours / theirs


#: The quantities compared, each summarised per measurement.
QUANTITIES = ("seconds", "process_seconds", "max_rss_kib")


def comparisons(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per workload, backend and N: both tools' time and memory.

    For each of :data:`QUANTITIES` the row holds both summaries and the
    ratio of the medians, ours / flask_migrate (``None`` without
    Flask-Migrate).
    """
    rows = []
    for m in results["measurements"]:
        if m["tool"] != "ours":
            continue
        key = (m["workload"], m["backend"], m["n"])
        theirs = _find(results, *key, "flask_migrate")
        row: dict[str, Any] = {"workload": key[0], "backend": key[1], "n": key[2]}
        for quantity in QUANTITIES:
            row[quantity] = {
                "ours": m[quantity],
                "flask_migrate": theirs and theirs[quantity],
                "ratio": _ratio(
                    m[quantity]["median"], theirs and theirs[quantity]["median"]
                ),
            }
        rows.append(row)
    return rows


def startup_overhead(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each tool's import cost minus the app's without an extension.

    The differences are paired by repetition (the same round of the
    alternation), then summarised.
    """
    rows = []
    for backend in dict.fromkeys(m["backend"] for m in results["measurements"]):
        none = _find(results, "startup", backend, None, BASELINE)
        if none is None:
            continue
        row: dict[str, Any] = {"backend": backend, "none": none["seconds"]}
        for tool in TOOLS:
            m = _find(results, "startup", backend, None, tool)
            if m is None:
                row[tool] = row[f"{tool}_overhead"] = None
                continue
            row[tool] = m["seconds"]
            row[f"{tool}_overhead"] = summary(
                [
                    s["seconds"] - base["seconds"]
                    for s, base in zip(m["samples"], none["samples"], strict=True)
                ]
            )
        row["ratio"] = _ratio(
            row["ours_overhead"] and row["ours_overhead"]["median"],
            row["flask_migrate_overhead"] and row["flask_migrate_overhead"]["median"],
        )
        rows.append(row)
    return rows


def floor(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The full upgrade against the same DDL run by ``create_all``."""
    rows = []
    for m in results["measurements"]:
        if m["workload"] != "full_upgrade" or m["tool"] != FLOOR:
            continue
        base = m["seconds"]["median"]
        row: dict[str, Any] = {"backend": m["backend"], "n": m["n"]}
        row["floor"] = m["seconds"]
        for tool in TOOLS:
            found = _find(results, "full_upgrade", m["backend"], m["n"], tool)
            row[f"{tool}_per_floor"] = _ratio(
                found and found["seconds"]["median"], base
            )
        rows.append(row)
    return rows


# --- Markdown --------------------------------------------------------------


def _ms(seconds: float) -> str:
    value = seconds * 1000
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _spread(stats: dict[str, float] | None, unit: str = "ms") -> str:
    if stats is None:
        return "n/a"
    if unit == "MiB":
        return (
            f"{stats['median'] / 1024:.1f} "
            f"[{stats['min'] / 1024:.1f}-{stats['max'] / 1024:.1f}]"
        )
    # "to" instead of "-" when the range starts below zero (an overhead
    # within the noise), so that it cannot be read as a minus sign.
    dash = " to " if stats["min"] < 0 else "-"
    return f"{_ms(stats['median'])} [{_ms(stats['min'])}{dash}{_ms(stats['max'])}]"


def _times(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def comparison_table(results: dict[str, Any], quantity: str = "seconds") -> list[str]:
    """The main table: one quantity of both tools, and the ratio."""
    unit = "MiB" if quantity == "max_rss_kib" else "ms"
    rows = []
    for row in results["comparisons"]:
        rows.append(
            [
                LABELS[row["workload"]],
                row["backend"],
                "-" if row["n"] is None else str(row["n"]),
                _spread(row[quantity]["ours"], unit),
                _spread(row[quantity]["flask_migrate"], unit),
                _times(row[quantity]["ratio"]),
            ]
        )
    header = [
        "workload",
        "backend",
        "N",
        f"ours median [min-max] ({unit})",
        f"flask_migrate median [min-max] ({unit})",
        "ratio",
    ]
    return _table(header, rows)


def markdown(results: dict[str, Any]) -> str:
    plan = results["plan"]
    command = "python -m bench" + (" --quick" if plan["mode"] == "quick" else "")
    lines = [
        "# flask_migrate_alt against Flask-Migrate",
        "",
        f"`{command}` on {results['generated']}: {plan['repeat']} repetitions "
        "of every measurement, each in a fresh Python process, alternating the "
        "tools. Times are of the measured operation alone: median [min-max] "
        "in milliseconds. ratio = ours / flask_migrate (medians; below 1.00x "
        "ours is faster). N is the number of revisions in the history, or of "
        "tables for check.",
        "",
    ]
    lines += [*(f"> {note}" for note in plan["notes"]), ""] if plan["notes"] else []
    lines += ["## Time", "", *comparison_table(results), ""]
    lines += [
        "## Startup overhead",
        "",
        "Importing a module that creates the app and db and registers the "
        "extension, minus importing the same app with no migration extension "
        "(paired per repetition; startup is measured "
        f"{max(plan['repeat'], plan.get('startup_repeat', 0))} times), in "
        "milliseconds. overhead ratio = ours / flask_migrate. A difference "
        "of two imports of about half a second each: on a shared machine "
        "its spread can cross zero. The row *startup: import the package + "
        "Migrate(app, db), in process* of the Time table measures the same "
        "cost directly, after the app's other imports.",
        "",
    ]
    lines += _table(
        [
            "backend",
            "no extension",
            "ours",
            "flask_migrate",
            "ours overhead",
            "flask_migrate overhead",
            "overhead ratio",
        ],
        [
            [
                row["backend"],
                _spread(row["none"]),
                _spread(row["ours"]),
                _spread(row["flask_migrate"]),
                _spread(row["ours_overhead"]),
                _spread(row["flask_migrate_overhead"]),
                _times(row["ratio"]),
            ]
            for row in results["startup_overhead"]
        ],
    )
    lines += [
        "",
        "## Full upgrade against the create_all floor",
        "",
        "The same tables and indexes created by `MetaData.create_all()` on one "
        "connection: what no migration tool can beat. Times in milliseconds.",
        "",
    ]
    lines += _table(
        ["backend", "N", "create_all floor", "ours / floor", "flask_migrate / floor"],
        [
            [
                row["backend"],
                str(row["n"]),
                _spread(row["floor"]),
                _times(row["ours_per_floor"]),
                _times(row["flask_migrate_per_floor"]),
            ]
            for row in results["floor"]
        ],
    )
    lines += [
        "",
        "## Whole process",
        "",
        "Wall time of each measuring process, from starting the interpreter "
        "to its exit: importing the app, running the operation (with any "
        "imports it defers) and shutting down. This is what a `flask db` "
        "command or a deploy script pays.",
        "",
        *comparison_table(results, "process_seconds"),
        "",
        "## Peak memory",
        "",
        "Maximum resident set size of the measuring process (importing the "
        "app and running the operation), in MiB.",
        "",
        *comparison_table(results, "max_rss_kib"),
        "",
        "## Setup",
        "",
    ]
    versions = results["versions"]
    lines.append(
        "- "
        + ", ".join(f"{name} {versions[name] or 'not installed'}" for name in versions)
    )
    servers = results["servers"]
    lines.append(
        "- " + ", ".join(f"{backend} {servers[backend]}" for backend in servers)
    )
    machine = results["machine"]
    lines.append(
        f"- Python {machine['python']} ({machine['implementation']}) on "
        f"{machine['platform']}; {machine['cpu_count']} CPUs ({machine['cpu']}), "
        f"{machine['memory_mib']} MiB"
    )
    lines.append(f"- wall time of the whole run: {results['wall_seconds']:.0f} s")
    lines.append("")
    if results.get("plot") == "plot.png":
        lines += ["![cost against history size](plot.png)", ""]
    else:
        lines += [f"plot.png not written: {results.get('plot')}", ""]
    return "\n".join(lines)


# --- plot ------------------------------------------------------------------


def plot(results: dict[str, Any], path: Path) -> str | None:
    """Draw cost against history size; return why not, or ``None`` when drawn."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return 'matplotlib is not installed (pip install -e ".[bench]")'
    figure = Figure(figsize=(11, 8), layout="constrained")
    axes = figure.subplots(2, 2).flatten()
    styles = {"sqlite": ("-", "o"), "postgresql": ("--", "s")}
    colors = {"ours": "tab:blue", "flask_migrate": "tab:orange"}
    sizes_measured = sorted(
        {m["n"] for m in results["measurements"] if m["workload"] in PLOTTED}
    )
    for ax, workload in zip(axes, PLOTTED, strict=True):
        drawn = False
        for tool in TOOLS:
            for backend in dict.fromkeys(m["backend"] for m in results["measurements"]):
                points = sorted(
                    (m["n"], m["seconds"])
                    for m in results["measurements"]
                    if (m["workload"], m["backend"], m["tool"])
                    == (workload, backend, tool)
                )
                if not points:
                    continue
                sizes = [n for n, _ in points]
                medians = [s["median"] * 1000 for _, s in points]
                low = [(s["median"] - s["min"]) * 1000 for _, s in points]
                high = [(s["max"] - s["median"]) * 1000 for _, s in points]
                linestyle, marker = styles.get(backend, (":", "^"))
                ax.errorbar(
                    sizes,
                    medians,
                    yerr=[low, high],
                    label=f"{tool}, {backend}",
                    color=colors[tool],
                    linestyle=linestyle,
                    marker=marker,
                    capsize=3,
                )
                drawn = True
        ax.set_title(LABELS[workload])
        ax.set_xlabel("history size N (revisions)")
        ax.set_ylabel("median time (ms), bars: min-max")
        if drawn:
            ax.set_xscale("log")
            ax.set_xticks(sizes_measured, [str(n) for n in sizes_measured])
            ax.minorticks_off()
            ax.set_ylim(bottom=0)
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", transform=ax.transAxes)
    figure.suptitle("flask_migrate_alt (ours) and Flask-Migrate: cost against N")
    figure.savefig(path, dpi=110)
    return None
