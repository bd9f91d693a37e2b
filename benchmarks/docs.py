"""The measured figures in the README and docs/performance.md, rendered from ``benchmarks/results/latest.json``.

    .venv/bin/python -m benchmarks.docs --write    # make docs: rewrite every generated block
    .venv/bin/python -m benchmarks.docs --check    # exit 1 and name the blocks that differ (a test runs this)

A generated block sits between ``<!-- make docs: NAME -->`` and ``<!-- /NAME -->`` in a Markdown file;
everything between the markers is replaced by ``BLOCKS[NAME](results)``. Each block names the command and
the date of the run that produced its numbers (from ``latest.json``'s ``runs``), so no figure in these
files stands without a JSON behind it. Prose outside the blocks carries no measured number (a test checks
the README for decimals and percentages outside them).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LATEST = ROOT / "benchmarks" / "results" / "latest.json"
FILES = (ROOT / "README.md", ROOT / "docs" / "performance.md")
BLOCK = re.compile(r"(<!-- make docs: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- /(?P=name) -->)", re.S)


class MissingResult(KeyError):
    """latest.json lacks what a block needs: the part that measures it has not been run (``--only PART --update``)."""


def produced_by(results: dict[str, Any], part: str) -> str:
    """ "`COMMAND`, DATE" of the last run in ``results`` that measured ``part``."""
    runs = results.get("runs") or []
    for run in reversed(runs):
        if part in (run.get("part_seconds") or {}):
            return f"`{run['command']}`, {str(run['generated_at'])[:10]}"
    raise MissingResult(
        f"no run in latest.json measured the part {part!r}: run `python -m benchmarks.run --only {part} --update`"
    )


def across_runs(results: dict[str, Any], key: str, fmt: str, unit: str = "") -> str:
    """'; A-B UNIT in the N runs in latest.json' for a timing each run records (``run.RUN_FIGURES``);
    empty when fewer than two runs recorded it."""
    values = [run["figures"][key] for run in results.get("runs") or [] if key in (run.get("figures") or {})]
    if len(values) < 2:
        return ""
    return f"; {min(values):{fmt}}-{max(values):{fmt}}{unit} in the {len(values)} runs in latest.json"


def _need(results: dict[str, Any], key: str, part: str) -> Any:
    if results.get(key) is None:
        raise MissingResult(f"latest.json has no {key!r}: run `python -m benchmarks.run --only {part} --update`")
    return results[key]


def _paragraph(text: str) -> str:
    return textwrap.fill(text, 105, break_long_words=False, break_on_hyphens=False) + "\n"


# --- README -----------------------------------------------------------------------------------------------


def _demo_output(summary: dict[str, Any]) -> list[str]:
    """The lines of ``driftline train``'s output the README shows: from the fold table to the checks.

    Left out: the header (paths, hashes), the baselines' per-fold table, the pooled challenger line, the
    registration and the MLflow run id (they differ on every machine).
    """
    from driftline.report import render_summary
    from driftline.summary import TrainingSummary

    lines = render_summary(TrainingSummary.model_validate(summary)).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Walk-forward folds of the challenger"))
    shown: list[str] = []
    skipping = False
    for line in lines[start:]:
        if line.startswith("Naive baselines on the same folds"):
            skipping = True
        elif skipping and line == "":
            skipping = False
            continue
        if skipping or line.startswith(("Pooled (challenger)", "Long/flat", "Registered ", "MLflow run")):
            continue
        shown.append(line)
    return shown


def readme_demo(results: dict[str, Any]) -> str:
    summary = _need(results, "demo_summary", "demo")
    seconds = _need(results, "demo_seconds", "demo")
    load = results.get("demo_load_average")
    first = summary["folds"][0]
    skill = summary["metrics"].get("brier_skill")
    comparison = summary.get("comparison") or {}
    return "\n".join(
        [
            f"From `make demo`'s command in a fresh folder ({produced_by(results, 'demo')}):",
            "",
            "```",
            *_demo_output(summary),
            "```",
            "",
            _paragraph(
                f"The run took {seconds:.0f} s here (2 cores"
                + (f", load average {load:.1f}" if load is not None else "")
                + across_runs(results, "demo_seconds", ".0f", " s")
                + "). The challenger's pooled walk-forward Brier skill against"
                f" the base rate is {skill:+.3f}; its first fold, trained on {first['n_train']} rows, scores"
                f" {first['brier_skill']:+.3f}"
                + (
                    f", and the hold-out interval's upper end is {comparison['ci_high']:+.4f}."
                    if comparison.get("ci_high") is not None
                    else "."
                )
            ),
        ]
    )


def readme_direction(results: dict[str, Any]) -> str:
    direction = _need(results, "demo_direction", "demo")
    metrics, edge = direction["metrics"], direction.get("edge")
    version = f"version {direction['model_version']}"
    if edge is None:  # calibration.require_edge off
        judged = f"Brier skill {metrics['brier_skill']:+.2f} against the base rate; {version} is registered"
    else:
        judged = (
            f"{edge['family']} - base rate log loss {edge['diff']:+.4f}, {edge['level']:.0%} CI"
            f" [{edge['low']:+.4f}, {edge['high']:+.4f}]: "
            + (
                "an edge: " + version + " keeps its spread"
                if edge["shown"]
                else f"no edge: {version} predicts the base rate"
            )
        )
    after = direction["champion_version_after"]
    return _paragraph(
        f"Same data (`--only demo`): walk-forward AUC {metrics['auc']:.2f}; {judged}; decision"
        f" **{direction['decision']}**" + (f" (champion: version {after})." if after else ".")
    )


def readme_drift(results: dict[str, Any]) -> str:
    calm = _need(results, "drift_real_calm_windows", "drift_real")
    breaks = _need(results, "drift_real_break_windows", "drift_real")
    false_rate = _need(results, "drift_real_false_alarm_rate", "drift_real")
    detected = _need(results, "drift_real_detection_rate", "drift_real")
    return _paragraph(
        f"On bundled real series ({produced_by(results, 'drift_real')}): {false_rate:.1%} false alarms on calm"
        f" windows ({round(false_rate * calm)}/{calm}), {detected:.1%} of the windows after the 2008 break detected"
        f" ({round(detected * breaks)}/{breaks})."
    )


QUALITY_LABELS = {
    "equities_vol": "equity volatility",
    "glucose": "glucose label, sensor",
    "glucose_reading": "glucose label, reading",
    "sst_direction": "sea temp. direction",
    "sst_spikes": "sea temp. spike (3%)",
    "equities_dir": "equity direction",
}


def _thousands(rows: int) -> str:
    return f"{rows / 1000:.0f}k" if rows >= 1000 else str(rows)


def _cadence(cadence: str) -> str:
    return re.sub(r"^(\d+)([a-z]+)$", r"\1 \2", cadence)


def readme_quality(results: dict[str, Any]) -> str:
    datasets = _need(results, "quality_datasets", "quality")
    lines = [
        f"`make bench-quality` ({produced_by(results, 'quality')}; pooled walk-forward;",
        "[details](docs/performance.md#model-quality)):",
        "",
        "| series (rows) | challenger acc / AUC / log loss / ECE | best baseline acc / log loss | LightGBM+lags AUC |",
        "|---|---|---|---|",
    ]
    for name, row in datasets.items():
        label = f"{QUALITY_LABELS.get(name, name)}, {_cadence(row['cadence'])}"
        if "error" in row:
            lines.append(f"| {label} | stopped: {row['error']} | | |")
            continue
        models = row["models"]
        wf = models["challenger"]["walk_forward"]
        baselines = {k: v["walk_forward"] for k, v in models.items() if k in ("base_rate", "persistence")}
        best = min(baselines, key=lambda k: baselines[k]["log_loss"])
        lines.append(
            f"| {label} ({_thousands(row['rows'])}) | {wf['accuracy']:.3f} / {wf['auc']:.3f} / {wf['log_loss']:.3f} /"
            f" {wf['ece']:.3f} | {best.replace('_', ' ')} {baselines[best]['accuracy']:.3f} /"
            f" {baselines[best]['log_loss']:.3f} | {models['reference']['walk_forward']['auc']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def readme_help(results: dict[str, Any]) -> str:
    seconds = _need(results, "cli_help_seconds", "startup")
    return _paragraph(
        f"`import driftline` loads neither Prefect nor MLflow; `driftline --help` took {seconds:.2f} s"
        f" (median of 3, {produced_by(results, 'startup')}{across_runs(results, 'cli_help_seconds', '.2f', ' s')})."
    )


# --- docs/performance.md ----------------------------------------------------------------------------------


def performance_table(results: dict[str, Any]) -> str:
    from benchmarks.run import PARTS, format_table

    measured = []
    for part in PARTS:
        try:
            measured.append(f"{part}: {produced_by(results, part)}")
        except MissingResult:
            measured.append(f"{part}: not measured yet")
    return "\n".join(
        [
            "Where each part's numbers come from:",
            "",
            *(f"- {m}" for m in measured),
            "",
            "```",
            format_table(results),
            "```",
            "",
        ]
    )


def quality_details(results: dict[str, Any]) -> str:
    from benchmarks.quality import format_side_by_side

    datasets = _need(results, "quality_datasets", "quality")
    return "\n".join(
        [
            f'Results of {produced_by(results, "quality")} ("wf" = pooled walk-forward, "rows" = rows scored):',
            "",
            "```",
            format_side_by_side(datasets),
            "```",
            "",
        ]
    )


BLOCKS: dict[str, Callable[[dict[str, Any]], str]] = {
    "demo": readme_demo,
    "direction": readme_direction,
    "drift-real": readme_drift,
    "quality": readme_quality,
    "help-time": readme_help,
    "results": performance_table,
    "quality-details": quality_details,
}


def render(text: str, results: dict[str, Any]) -> str:
    """``text`` with every generated block re-rendered from ``results``."""

    def one(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in BLOCKS:
            raise KeyError(f"unknown generated block {name!r} (known: {', '.join(BLOCKS)})")
        return match.group(1) + BLOCKS[name](results) + match.group(4)

    return BLOCK.sub(one, text)


def stale(path: Path, results: dict[str, Any]) -> list[str]:
    """The names of the blocks in ``path`` whose text differs from what ``results`` renders."""
    text = path.read_text(encoding="utf-8")
    return [m["name"] for m in BLOCK.finditer(text) if BLOCKS[m["name"]](results) != m["body"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.docs", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the generated blocks")
    mode.add_argument("--check", action="store_true", help="exit 1 if a generated block is out of date")
    parser.add_argument("--results", type=Path, default=LATEST)
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    out_of_date = {path: stale(path, results) for path in FILES}
    if args.check:
        bad = [f"{path.relative_to(ROOT)}: {', '.join(names)}" for path, names in out_of_date.items() if names]
        for line in bad:
            print(f"out of date (run `make docs`): {line}", file=sys.stderr)
        return 1 if bad else 0
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        new = render(text, results)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
