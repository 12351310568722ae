"""Turn the results of :func:`bench.harness.run` into results.json, .md and .png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .harness import BASELINE, FLOOR, READ_ONLY, summary
from .workloads import TOOLS

LABELS = {
    "startup": "startup (import app)",
    "noop_upgrade": "no-op upgrade",
    "full_upgrade": "full upgrade",
    "extension": "startup: import the package + Migrate(app, db), in process",
    "check": "check, no changes",
    "current": "current",
    "heads": "heads",
    "history": "history",
}
#: The workloads drawn against history size in plot.png.
PLOTTED = ("noop_upgrade", *READ_ONLY)

#: The ratios of medians reported, each (numerator, denominator), with what
#: each tells.
RATIOS = (
    ("ours", "flask_migrate"),
    ("ours_plain", "flask_migrate"),
    ("ours", "ours_plain"),
)
MEANINGS = {
    ("ours", "flask_migrate"): "what switching from Flask-Migrate changes",
    ("ours_plain", "flask_migrate"): (
        "the same without the speed-ups: the package on plain Alembic"
    ),
    ("ours", "ours_plain"): "what the speed-ups buy",
}


def ratio_name(pair: tuple[str, str]) -> str:
    return f"{pair[0]} / {pair[1]}"


def _tools(results: dict[str, Any]) -> list[str]:
    """The tools measured in ``results``, in the order of :data:`TOOLS`."""
    return [tool for tool in TOOLS if tool in results["tools"]]


def _pairs(results: dict[str, Any]) -> list[tuple[str, str]]:
    """The :data:`RATIOS` whose two tools were both measured."""
    tools = _tools(results)
    return [pair for pair in RATIOS if pair[0] in tools and pair[1] in tools]


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


def _ratios(results: dict[str, Any], medians: dict[str, float | None]) -> dict:
    """Each measured pair of :data:`RATIOS`, from the tools' medians."""
    return {
        ratio_name(pair): _ratio(medians.get(pair[0]), medians.get(pair[1]))
        for pair in _pairs(results)
    }


#: The quantities compared, each summarised per measurement.
QUANTITIES = ("seconds", "process_seconds", "max_rss_kib")


def comparisons(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per workload, backend and N: every tool's time and memory.

    For each of :data:`QUANTITIES` the row holds each tool's summary under
    ``tools`` and, under ``ratios``, the ratio of the medians of each pair
    of :data:`RATIOS` that was measured ("ours / flask_migrate", ...).
    """
    tools = _tools(results)
    keys = dict.fromkeys(
        (m["workload"], m["backend"], m["n"])
        for m in results["measurements"]
        if m["tool"] in tools
    )
    rows = []
    for key in keys:
        found = {tool: _find(results, *key, tool) for tool in tools}
        row: dict[str, Any] = {"workload": key[0], "backend": key[1], "n": key[2]}
        for quantity in QUANTITIES:
            stats = {tool: m and m[quantity] for tool, m in found.items()}
            medians = {tool: s and s["median"] for tool, s in stats.items()}
            row[quantity] = {"tools": stats, "ratios": _ratios(results, medians)}
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
        row["tools"] = {}
        for tool in _tools(results):
            m = _find(results, "startup", backend, None, tool)
            if m is None:
                row["tools"][tool] = None
                continue
            row["tools"][tool] = {
                "startup": m["seconds"],
                "overhead": summary(
                    [
                        s["seconds"] - base["seconds"]
                        for s, base in zip(m["samples"], none["samples"], strict=True)
                    ]
                ),
            }
        medians = {
            tool: found and found["overhead"]["median"]
            for tool, found in row["tools"].items()
        }
        row["ratios"] = _ratios(results, medians)
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
        row["per_floor"] = {}
        for tool in _tools(results):
            found = _find(results, "full_upgrade", m["backend"], m["n"], tool)
            row["per_floor"][tool] = _ratio(found and found["seconds"]["median"], base)
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


def _where(row: dict[str, Any]) -> list[str]:
    n = "-" if row["n"] is None else str(row["n"])
    return [LABELS[row["workload"]], row["backend"], n]


def ratio_table(results: dict[str, Any], quantity: str = "seconds") -> list[str]:
    """The ratios of one quantity's medians, one column per pair."""
    names = [ratio_name(pair) for pair in _pairs(results)]
    rows = [
        _where(row) + [_times(row[quantity]["ratios"][name]) for name in names]
        for row in results["comparisons"]
    ]
    return _table(["workload", "backend", "N", *names], rows)


def comparison_table(results: dict[str, Any], quantity: str = "seconds") -> list[str]:
    """One quantity of every tool, median [min-max], and the ratios."""
    unit = "MiB" if quantity == "max_rss_kib" else "ms"
    tools = _tools(results)
    names = [ratio_name(pair) for pair in _pairs(results)]
    rows = []
    for row in results["comparisons"]:
        cells = _where(row)
        cells += [_spread(row[quantity]["tools"][tool], unit) for tool in tools]
        cells += [_times(row[quantity]["ratios"][name]) for name in names]
        rows.append(cells)
    header = ["workload", "backend", "N"]
    header += [f"{tool} median [min-max] ({unit})" for tool in tools]
    return _table(header + names, rows)


def _legend(results: dict[str, Any]) -> str:
    """What each ratio column means, for the tools measured."""
    parts = [f"**{ratio_name(pair)}**: {MEANINGS[pair]}" for pair in _pairs(results)]
    return "; ".join(parts) + "." if parts else ""


def markdown(results: dict[str, Any]) -> str:
    plan = results["plan"]
    command = "python -m bench" + (" --quick" if plan["mode"] == "quick" else "")
    tools = _tools(results)
    if tuple(tools) != TOOLS:
        command += " --tools " + ",".join(tools)
    lines = [
        "# flask_migrate_alt against Flask-Migrate",
        "",
        f"`{command}` on {results['generated']}: {plan['repeat']} repetitions "
        "of every measurement, each in a fresh Python process, rotating the "
        "tools. **ours** is flask_migrate_alt, **ours_plain** the same "
        "package with its speed-ups off (`FLASK_DB_SPEEDUPS=0`: plain "
        "Alembic), **flask_migrate** Flask-Migrate 4.1. Times are of the "
        "measured operation alone: median [min-max] in milliseconds. Each "
        "ratio is of the medians; below 1.00x the first tool is faster. N is "
        "the number of revisions in the history, or of tables for check.",
        "",
    ]
    lines += [*(f"> {note}" for note in plan["notes"]), ""] if plan["notes"] else []
    if _pairs(results):
        lines += [
            "## Ratios",
            "",
            _legend(results),
            "",
            "flask_migrate_alt imports Alembic inside the command that needs "
            "it, Flask-Migrate with the app: the timed operation of ours and "
            "ours_plain includes that import (where the command needs "
            "Alembic), Flask-Migrate's startup does. The whole process counts "
            "it for every tool.",
            "",
            "### Timed operation",
            "",
            *ratio_table(results),
            "",
            "### Whole process",
            "",
            *ratio_table(results, "process_seconds"),
            "",
        ]
    lines += ["## Time", "", *comparison_table(results), ""]
    lines += [
        "## Startup overhead",
        "",
        "Importing a module that creates the app and db and registers the "
        "extension, minus importing the same app with no migration extension "
        "(paired per repetition; startup is measured "
        f"{max(plan['repeat'], plan.get('startup_repeat', 0))} times), in "
        "milliseconds; the ratios are of the overheads. A difference "
        "of two imports of about half a second each: on a shared machine "
        "its spread can cross zero. The row *startup: import the package + "
        "Migrate(app, db), in process* of the Time table measures the same "
        "cost directly, after the app's other imports.",
        "",
    ]
    names = [ratio_name(pair) for pair in _pairs(results)]
    overhead_rows = []
    for row in results["startup_overhead"]:
        found = [row["tools"][tool] for tool in tools]
        overhead_rows.append(
            [row["backend"], _spread(row["none"])]
            + [_spread(f and f["overhead"]) for f in found]
            + [_times(row["ratios"][name]) for name in names]
        )
    lines += _table(
        ["backend", "no extension", *(f"{tool} overhead" for tool in tools), *names],
        overhead_rows,
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
        ["backend", "N", "create_all floor", *(f"{tool} / floor" for tool in tools)],
        [
            [row["backend"], str(row["n"]), _spread(row["floor"])]
            + [_times(row["per_floor"][tool]) for tool in tools]
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
        lines += ["![cost against history size, and the ratios](plot.png)", ""]
    else:
        lines += [f"plot.png not written: {results.get('plot')}", ""]
    return "\n".join(lines)


# --- plot ------------------------------------------------------------------

COLORS = {"ours": "tab:blue", "ours_plain": "tab:green", "flask_migrate": "tab:orange"}
RATIO_COLORS = {
    ("ours", "flask_migrate"): "tab:blue",
    ("ours_plain", "flask_migrate"): "tab:green",
    ("ours", "ours_plain"): "tab:purple",
}
#: Workload names short enough for the ratio panels' axis.
SHORT = {
    **LABELS,
    "startup": "startup",
    "extension": "import + Migrate()",
    "check": "check",
}


def plot(results: dict[str, Any], path: Path) -> str | None:
    """Draw cost against history size and the ratios; return why not, or None."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return 'matplotlib is not installed (pip install -e ".[bench]")'
    backends = list(dict.fromkeys(m["backend"] for m in results["measurements"]))
    pairs = _pairs(results)
    mosaic = [list(PLOTTED[:2]), list(PLOTTED[2:])]
    heights = [1.0, 1.0]
    if pairs:
        ratio_panels = [f"ratios {backend}" for backend in backends]
        mosaic.append(ratio_panels * 2 if len(ratio_panels) == 1 else ratio_panels)
        heights.append(1.7)
    figure = Figure(figsize=(12, 6.5 + 5 * bool(pairs)), layout="constrained")
    axes = figure.subplot_mosaic(mosaic, height_ratios=heights)
    for workload in PLOTTED:
        _draw_against_n(results, axes[workload], workload, backends)
    for backend in backends if pairs else ():
        _draw_ratios(results, axes[f"ratios {backend}"], backend, pairs)
    figure.suptitle(
        "flask_migrate_alt (ours), without speed-ups (ours_plain) and "
        "Flask-Migrate 4.1 (flask_migrate)"
    )
    figure.savefig(path, dpi=110)
    return None


def _draw_against_n(
    results: dict[str, Any], ax: Any, workload: str, backends: list[str]
) -> None:
    """Median time against history size, a line per tool and backend."""
    styles = {"sqlite": ("-", "o"), "postgresql": ("--", "s")}
    sizes_measured = sorted(
        {m["n"] for m in results["measurements"] if m["workload"] in PLOTTED}
    )
    drawn = False
    for tool in _tools(results):
        for backend in backends:
            points = sorted(
                (m["n"], m["seconds"])
                for m in results["measurements"]
                if (m["workload"], m["backend"], m["tool"]) == (workload, backend, tool)
            )
            if not points:
                continue
            medians = [s["median"] * 1000 for _, s in points]
            low = [(s["median"] - s["min"]) * 1000 for _, s in points]
            high = [(s["max"] - s["median"]) * 1000 for _, s in points]
            linestyle, marker = styles.get(backend, (":", "^"))
            ax.errorbar(
                [n for n, _ in points],
                medians,
                yerr=[low, high],
                label=f"{tool}, {backend}",
                color=COLORS[tool],
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
        ax.legend(fontsize="x-small")
    else:
        ax.text(0.5, 0.5, "not measured", ha="center", transform=ax.transAxes)


def _draw_ratios(
    results: dict[str, Any], ax: Any, backend: str, pairs: list[tuple[str, str]]
) -> None:
    """Grouped bars of the time ratios, each workload at its largest N."""
    from matplotlib.ticker import FuncFormatter

    largest: dict[str, dict[str, Any]] = {}
    for row in results["comparisons"]:
        if row["backend"] != backend:
            continue
        kept = largest.get(row["workload"])
        if kept is None or (row["n"] or 0) > (kept["n"] or 0):
            largest[row["workload"]] = row
    rows = list(largest.values())
    height = 0.8 / len(pairs)
    for index, pair in enumerate(pairs):
        name = ratio_name(pair)
        ys = [
            place + (index - (len(pairs) - 1) / 2) * height
            for place in range(len(rows))
        ]
        ratios = [row["seconds"]["ratios"][name] for row in rows]
        # Bars start at 1.00x: leftwards the first tool is faster.
        bars = ax.barh(
            ys,
            [(ratio or 1.0) - 1.0 for ratio in ratios],
            left=1.0,
            height=height,
            color=RATIO_COLORS[pair],
            label=name,
        )
        ax.bar_label(bars, labels=[_times(r) for r in ratios], fontsize=6, padding=2)
    labels = [
        SHORT[row["workload"]] + ("" if row["n"] is None else f", N={row['n']}")
        for row in rows
    ]
    ax.set_yticks(range(len(rows)), labels, fontsize="small")
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}x"))
    ax.set_xlabel("ratio of the medians (log scale; left of 1x: faster)")
    ax.margins(x=0.1)  # room for the labels at the ends of the longest bars
    ax.set_title(f"{backend}: ratios of the timed operation")
    # Below the axes: inside, it would cover the bars of some workload.
    ax.legend(
        fontsize="x-small",
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        ncol=len(pairs),
    )
