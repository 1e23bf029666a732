"""The README's benchmark figures, drawn from benchmarks/results/*.json with matplotlib (Agg: no
display needed).

- docs/benchmarks/throughput.png: activities per second against worker processes, one line per
  added latency, with the ideal linear line dashed (benchmarks/scaling.py).
- docs/benchmarks/calls.png: Data API calls against activities logged, the naive path and
  quotasync, log scales (benchmarks/logging.py's series, results/calls.json).

Usage: python -m benchmarks.plots  (draws both again from the kept results)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # after choosing the backend
from matplotlib.ticker import FuncFormatter

from benchmarks import report

COLOURS = ("#1f6feb", "#d1242f", "#1a7f37", "#8250df")
SIZE = (6.4, 4.0)
DPI = 120


def _save(figure: Any, name: str) -> Path:
    report.FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    path = report.FIGURES_DIR / name
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def _thousands(value: float, _position: int) -> str:
    return f"{value:,.0f}"


def throughput(results: dict[str, Any]) -> Path | None:
    """Activities per second against worker processes (each `--concurrency 1`)."""
    runs = [r for r in results.get("throughput", []) if r["threads"] == 1]
    if not runs:
        return None
    figure, axes = plt.subplots(figsize=SIZE)
    latencies = sorted({r["latency_ms"] for r in runs})
    most = max(r["processes"] for r in runs)
    for colour, latency in zip(COLOURS, latencies, strict=False):
        line = sorted((r["processes"], r["per_second"]) for r in runs if r["latency_ms"] == latency)
        xs, ys = [x for x, _ in line], [y for _, y in line]
        axes.plot(xs, ys, marker="o", color=colour, label=f"{latency} ms per call")
        one = ys[0] / xs[0]
        axes.plot(
            [1, most], [one, one * most], linestyle="--", color=colour, alpha=0.5, linewidth=1
        )
    axes.plot([], [], linestyle="--", color="grey", label="ideal (linear)")
    target = results.get("scaling_target")
    slow = [
        r["per_second"] for r in runs if r["latency_ms"] == max(latencies) and r["processes"] == 1
    ]
    if target and slow and most >= 4:
        axes.plot(
            [4],
            [target * slow[0]],
            marker="*",
            markersize=12,
            linestyle="none",
            color=COLOURS[1 if len(latencies) > 1 else 0],
            label=f"target: {target:g}x one at 4 workers, {max(latencies)} ms",
        )
    axes.set_xticks(sorted({r["processes"] for r in runs}))
    axes.set_xlabel("worker processes (quotasync worker --concurrency 1)")
    axes.set_ylabel("activities logged per second")
    axes.yaxis.set_major_formatter(FuncFormatter(_thousands))
    axes.set_ylim(bottom=0)
    axes.set_title("Throughput against worker processes (2 cores, PostgreSQL)")
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, "throughput.png")


def calls(results: dict[str, Any]) -> Path | None:
    """Data API calls against activities, the naive path and quotasync."""
    series = sorted(results.get("series", []), key=lambda point: point["activities"])
    if not series:
        return None
    figure, axes = plt.subplots(figsize=SIZE)
    xs = [p["activities"] for p in series]
    for colour, key, label in (
        (COLOURS[1], "naive_calls", "naive: a lookup and a write per activity"),
        (COLOURS[0], "quotasync_calls", "quotasync: batched upserts"),
    ):
        ys = [p[key] for p in series]
        axes.plot(xs, ys, marker="o", color=colour, label=label)
        for x, y in zip(xs, ys, strict=True):
            axes.annotate(
                f"{y:,}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8
            )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xticks(xs)
    axes.xaxis.set_major_formatter(FuncFormatter(_thousands))
    axes.yaxis.set_major_formatter(FuncFormatter(_thousands))
    axes.minorticks_off()
    axes.margins(x=0.08, y=0.15)
    axes.set_xlabel("activities logged")
    axes.set_ylabel("Data API calls (counted by the org)")
    axes.set_title("Data API calls against activities")
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    return _save(figure, "calls.png")


def main() -> None:
    for drawn in (
        throughput(report.load_results("scaling") or {}),
        calls(report.load_results("calls") or {}),
    ):
        if drawn is not None:
            print(f"drew {drawn}")


if __name__ == "__main__":
    main()
