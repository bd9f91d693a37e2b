"""Does the per-column drift verdict catch modest shifts without crying wolf? Seeded trials through the real code.

Run from the project root::

    .venv/bin/python -m benchmarks.drift_detection [--trials 100] [--rows 10000] [--seed 0]

Every trial draws a reference frame and a current frame of ``--rows`` rows each and runs them through
``driftline.drift.build_reference`` (``n_bins = DriftConfig().bins``, as ``tasks/tracking.py`` does) and
``driftline.drift.column_drift`` with the default ``DriftConfig``; a column counts as flagged when its
``drifted`` verdict is true. Nothing in the verdict is re-implemented here.

Each frame has one column per (shift, distribution) in ``COLUMNS``:

* reference distributions: ``normal`` N(50, 10^2); ``lognormal`` exp(N(3, 0.75^2)) (right-skewed, positive);
  ``student_t3`` Student t with 3 degrees of freedom (heavy tails, sd sqrt(3)); ``poisson`` Poisson(4)
  (a discrete integer count); ``categorical`` 5 categories a..e with probabilities [.30, .25, .20, .15, .10];
* ``mean``: the current column's mean moves by 0.2 of the reference's population sd and nothing else
  changes (continuous: ``x + 0.2 sd``; poisson: Poisson(4.4), i.e. mean +0.2 sd, which for a count also
  raises the variance by 10%);
* ``variance``: the current column's variance is 1.5x the reference's, mean unchanged (normal and t: scaled
  by sqrt(1.5) about the centre; lognormal: still lognormal with the same mean and 1.5x the variance;
  poisson: negative binomial with mean 4 and variance 6);
* ``category_mix``: probabilities [.30, .25, .20, .15, .10] -> [.25, .25, .20, .15, .15] (5 points of mass
  move from the most to the least common category; population PSI 0.029);
* ``none``: one column of every kind drawn again from its reference distribution (false-alarm check).

The frames are independent draws with no time axis, so the profile has no null (see
``driftline.drift.build_null``) and the verdict is the chi-square rule the monitor falls back to — the right
rule for independent rows. How the default rule (PSI against the reference period's own window-to-window
PSI) behaves on autocorrelated real series is measured by ``benchmarks.drift_real``.

Targets: at least 95% of shifted columns flagged, per shift type and over all shifted columns, and at most 5%
of unshifted columns flagged (point estimates; the 95% Wilson intervals are shown next to them).

On the first trial's frames the same comparison is also run with Evidently's ``DataDriftPreset`` (the call
``Report([DataDriftPreset()]).run(current, reference)``, column types inferred by Evidently, default methods
and thresholds): its wall time next to Driftline's, its per-column verdicts and their agreement with
Driftline's. Evidently's verdicts are read from the per-column ``ValueDrift`` tests of a second run with
``include_tests=True`` (status FAIL = drift) and cross-checked against the metric's score and threshold.

Exit code 0 when every detection target is met, 1 otherwise (the Evidently comparison has no target).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy

from benchmarks.promotion_power import machine_info as _machine_info
from benchmarks.promotion_power import wilson
from driftline.config import DriftConfig
from driftline.drift import build_reference, column_drift

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "drift_detection.json"
DETECTION_TARGET = 0.95
FALSE_ALARM_TARGET = 0.05

# --- the simulated columns ----------------------------------------------------------------------------------------

NORMAL_MEAN, NORMAL_SD = 50.0, 10.0
LOGNORMAL_MU, LOGNORMAL_SIGMA = 3.0, 0.75
T_DF, T_SCALE = 3, 1.0
POISSON_RATE = 4.0
CATEGORIES = ("a", "b", "c", "d", "e")
CATEGORY_REFERENCE = (0.30, 0.25, 0.20, 0.15, 0.10)
CATEGORY_SHIFTED = (0.25, 0.25, 0.20, 0.15, 0.15)
MEAN_SHIFT_SDS = 0.2
VARIANCE_FACTOR = 1.5

SHIFT_NAMES = {
    "mean": f"mean shift {MEAN_SHIFT_SDS:g} sd",
    "variance": f"variance x{VARIANCE_FACTOR:g}",
    "category_mix": "category mix",
    "none": "unshifted",
}


def population_mean_sd(distribution: str) -> tuple[float, float]:
    """Mean and standard deviation of a numeric reference distribution."""
    if distribution == "normal":
        return NORMAL_MEAN, NORMAL_SD
    if distribution == "lognormal":
        mean = math.exp(LOGNORMAL_MU + LOGNORMAL_SIGMA**2 / 2)
        return mean, mean * math.sqrt(math.expm1(LOGNORMAL_SIGMA**2))
    if distribution == "student_t3":
        return 0.0, T_SCALE * math.sqrt(T_DF / (T_DF - 2))
    if distribution == "poisson":
        return POISSON_RATE, math.sqrt(POISSON_RATE)
    raise ValueError(f"no population moments for {distribution!r}")


def draw(distribution: str, shift: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` values of ``distribution``, shifted by ``shift`` ("none" draws the reference distribution)."""
    if distribution == "categorical":
        p = CATEGORY_SHIFTED if shift == "category_mix" else CATEGORY_REFERENCE
        return np.asarray(CATEGORIES, dtype=object)[rng.choice(len(CATEGORIES), size=n, p=p)]
    if shift not in ("none", "mean", "variance"):
        raise ValueError(f"shift {shift!r} does not apply to a numeric column")
    _, sd = population_mean_sd(distribution)
    delta = MEAN_SHIFT_SDS * sd if shift == "mean" else 0.0
    scale = math.sqrt(VARIANCE_FACTOR) if shift == "variance" else 1.0
    if distribution == "normal":
        return rng.normal(NORMAL_MEAN + delta, NORMAL_SD * scale, n)
    if distribution == "student_t3":
        return T_SCALE * scale * rng.standard_t(T_DF, n) + delta
    if distribution == "lognormal":
        if shift == "variance":  # same mean, 1.5x the variance, still lognormal
            sigma2 = math.log1p(VARIANCE_FACTOR * math.expm1(LOGNORMAL_SIGMA**2))
            return rng.lognormal(LOGNORMAL_MU + (LOGNORMAL_SIGMA**2 - sigma2) / 2, math.sqrt(sigma2), n)
        return rng.lognormal(LOGNORMAL_MU, LOGNORMAL_SIGMA, n) + delta
    if distribution == "poisson":
        if shift == "variance":  # negative binomial, mean 4 and variance 6
            p = 1 / VARIANCE_FACTOR
            return rng.negative_binomial(POISSON_RATE * p / (1 - p), p, n).astype(np.int64)
        return rng.poisson(POISSON_RATE + delta, n).astype(np.int64)
    raise ValueError(f"unknown distribution {distribution!r}")


@dataclass(frozen=True)
class ColumnSpec:
    shift: str  # "mean" | "variance" | "category_mix" | "none"
    distribution: str

    @property
    def name(self) -> str:
        return f"{self.shift}__{self.distribution}"

    @property
    def shifted(self) -> bool:
        return self.shift != "none"


NUMERIC = ("normal", "lognormal", "student_t3", "poisson")
COLUMNS: tuple[ColumnSpec, ...] = (
    *(ColumnSpec("mean", d) for d in NUMERIC),
    *(ColumnSpec("variance", d) for d in NUMERIC),
    ColumnSpec("category_mix", "categorical"),
    *(ColumnSpec("none", d) for d in (*NUMERIC, "categorical")),
)

SHIFT_DESCRIPTIONS = {
    "mean": "current = reference + 0.2 x the reference's population sd (normal +2.0, lognormal +4.62, "
    "student_t3 +0.346); poisson: Poisson(4.4) instead of Poisson(4) (mean +0.2 sd, variance +10%)",
    "variance": "current variance = 1.5 x the reference's, same mean: normal and student_t3 scaled by sqrt(1.5) "
    "about the centre; lognormal: lognormal with the same mean and 1.5x variance (log-sd 0.75 -> 0.87); "
    "poisson: negative binomial with mean 4, variance 6",
    "category_mix": "5 categories, probabilities [.30, .25, .20, .15, .10] -> [.25, .25, .20, .15, .15]",
    "none": "drawn again from the reference distribution",
}
DISTRIBUTION_DESCRIPTIONS = {
    "normal": "N(50, 10^2)",
    "lognormal": "exp(N(3, 0.75^2)): right-skewed, positive",
    "student_t3": "Student t, 3 degrees of freedom, scale 1 (heavy tails, sd sqrt(3))",
    "poisson": "Poisson(4): discrete integer counts (int64 column)",
    "categorical": "5 categories a..e, probabilities [.30, .25, .20, .15, .10] (object column of strings)",
}


def make_frames(
    seed: int, trial: int, rows: int, columns: tuple[ColumnSpec, ...] = COLUMNS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference and current frames of one trial; each trial has its own seeded stream."""
    rng = np.random.default_rng([seed, trial])
    reference = pd.DataFrame({c.name: draw(c.distribution, "none", rng, rows) for c in columns})
    current = pd.DataFrame({c.name: draw(c.distribution, c.shift, rng, rows) for c in columns})
    return reference, current


# --- Driftline's verdict ------------------------------------------------------------------------------------------


def driftline_verdicts(reference: pd.DataFrame, current: pd.DataFrame, drift: DriftConfig) -> pd.DataFrame:
    """What monitoring computes: profile the reference, then PSI, p-value and verdict per column of current."""
    profile = build_reference(reference, None, {}, drift.bins)
    return column_drift(profile, current, drift)


def run_trials(
    trials: int, rows: int, seed: int, drift: DriftConfig | None = None, columns: tuple[ColumnSpec, ...] = COLUMNS
) -> tuple[list[dict[str, Any]], list[float]]:
    """One record per (trial, column) and Driftline's wall time per trial (profile + verdicts)."""
    drift = drift or DriftConfig()
    by_name = {c.name: c for c in columns}
    records: list[dict[str, Any]] = []
    seconds: list[float] = []
    for trial in range(trials):
        reference, current = make_frames(seed, trial, rows, columns)
        start = time.perf_counter()
        table = driftline_verdicts(reference, current, drift)
        seconds.append(time.perf_counter() - start)
        for row in table.to_dict(orient="records"):
            spec = by_name[row["feature"]]
            records.append(
                {
                    "trial": trial,
                    "column": spec.name,
                    "shift": spec.shift,
                    "distribution": spec.distribution,
                    "shifted": spec.shifted,
                    "psi": float(row["psi"]),
                    "p_value": float(row["p_value"]),
                    "drifted": bool(row["drifted"]),
                    "psi_alert": bool(row["psi"] >= drift.psi_alert),
                }
            )
    return records, seconds


# --- summary ------------------------------------------------------------------------------------------------------


def _group(key: str, label: str, records: list[dict[str, Any]], shifted: bool) -> dict[str, Any]:
    n = len(records)
    flagged = sum(r["drifted"] for r in records)
    rate = flagged / n if n else 0.0
    target = DETECTION_TARGET if shifted else FALSE_ALARM_TARGET
    psi = np.array([r["psi"] for r in records], dtype=float)
    return {
        "key": key,
        "group": label,
        "kind": "detection" if shifted else "false_alarm",
        "columns": n,
        "flagged": flagged,
        "rate": rate,
        "wilson_95": list(wilson(flagged, n)),
        "target": f">= {target:.0%}" if shifted else f"<= {target:.0%}",
        "passed": bool(rate >= target if shifted else rate <= target) if n else False,
        "mean_psi": float(psi.mean()) if n else None,
    }


def _quantile(values: np.ndarray, q: float) -> float | None:
    return float(np.quantile(values, q)) if len(values) else None


def summarise(
    records: list[dict[str, Any]], drift: DriftConfig | None = None, columns: tuple[ColumnSpec, ...] = COLUMNS
) -> dict[str, Any]:
    """Targets per shift type, over all shifted columns and on unshifted ones, plus a per-column breakdown."""
    drift = drift or DriftConfig()
    order = {c.name: i for i, c in enumerate(columns)}
    shifts = [s for s in ("mean", "variance", "category_mix") if any(r["shift"] == s for r in records)]
    groups = [_group(s, SHIFT_NAMES[s], [r for r in records if r["shift"] == s], True) for s in shifts]
    groups.append(_group("all_shifted", "all shifted", [r for r in records if r["shifted"]], True))
    groups.append(_group("unshifted", "unshifted (false alarms)", [r for r in records if not r["shifted"]], False))

    breakdown = []
    for name in sorted(dict.fromkeys(r["column"] for r in records), key=lambda n: order.get(n, len(order))):
        rows = [r for r in records if r["column"] == name]
        psi = np.array([r["psi"] for r in rows], dtype=float)
        p = np.array([r["p_value"] for r in rows], dtype=float)
        flagged = sum(r["drifted"] for r in rows)
        missed = [r for r in rows if not r["drifted"]]
        breakdown.append(
            {
                "column": name,
                "shift": rows[0]["shift"],
                "distribution": rows[0]["distribution"],
                "columns": len(rows),
                "flagged": flagged,
                "rate": flagged / len(rows),
                "wilson_95": list(wilson(flagged, len(rows))),
                "mean_psi": float(psi.mean()),
                "psi_p05": _quantile(psi, 0.05),
                "psi_min": float(psi.min()),
                "psi_max": float(psi.max()),
                "p_value_max": float(p.max()),
                "flagged_by_psi_alert": sum(r["psi_alert"] for r in rows),
                "p_value_significant": int((p < drift.p_value).sum()),
                "psi_at_least_min_psi": int((psi >= drift.min_psi).sum()),
                "unflagged_because": {
                    "psi_below_min_psi": sum(r["psi"] < drift.min_psi for r in missed),
                    "p_value_not_significant": sum(r["p_value"] >= drift.p_value for r in missed),
                },
            }
        )
    return {"groups": groups, "columns": breakdown, "all_targets_met": all(g["passed"] for g in groups)}


# --- Evidently ----------------------------------------------------------------------------------------------------


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def evidently_verdicts(snapshot: Any) -> dict[str, dict[str, Any]]:
    """Per-column method, threshold, score and verdict from a snapshot run with ``include_tests=True``."""
    data = snapshot.dict()
    scores = {}
    for metric in data["metrics"]:
        config = metric.get("config") or {}
        if config.get("type", "").endswith(":ValueDrift"):
            scores[config["column"]] = (config.get("method"), config.get("threshold"), metric.get("value"))
    out: dict[str, dict[str, Any]] = {}
    for test in data["tests"]:
        params = (test.get("metric_config") or {}).get("params") or {}
        if not params.get("type", "").endswith(":ValueDrift"):
            continue
        column = params["column"]
        method, threshold, score = scores.get(column, (params.get("method"), params.get("threshold"), None))
        # Evidently's stat tests: p-value methods drift when p < threshold, distances when score >= threshold.
        by_rule = None
        if score is not None and threshold is not None:
            by_rule = bool(score < threshold) if "p_value" in str(method) else bool(score >= threshold)
        out[column] = {
            "method": method,
            "threshold": threshold,
            "score": None if score is None else float(score),
            "drifted": test["status"] == "FAIL",
            "test_status": test["status"],
            "rule_agrees_with_test": None if by_rule is None else by_rule == (test["status"] == "FAIL"),
        }
    return out


def evidently_comparison(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    drift: DriftConfig,
    columns: tuple[ColumnSpec, ...] = COLUMNS,
    repeats: int = 3,
) -> dict[str, Any]:
    """Time Evidently's DataDriftPreset and Driftline on the same frames; compare their per-column verdicts."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    import evidently
    from evidently import Report
    from evidently.presets import DataDriftPreset

    def run_evidently(include_tests: bool = False) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = Report([DataDriftPreset()], include_tests=True) if include_tests else Report([DataDriftPreset()])
            return report.run(current, reference)

    # First call of each (Evidently builds its registries and lazy imports on first use), then warm repeats.
    _, evidently_cold = _timed(run_evidently)
    evidently_warm = [_timed(run_evidently)[1] for _ in range(repeats)]
    table, driftline_cold = _timed(lambda: driftline_verdicts(reference, current, drift))
    driftline_warm = [_timed(lambda: driftline_verdicts(reference, current, drift))[1] for _ in range(repeats)]
    snapshot, evidently_with_tests = _timed(lambda: run_evidently(include_tests=True))

    theirs = evidently_verdicts(snapshot)
    ours = {row["feature"]: row for row in table.to_dict(orient="records")}
    per_column = []
    for spec in columns:
        mine, other = ours[spec.name], theirs.get(spec.name)
        per_column.append(
            {
                "column": spec.name,
                "shifted": spec.shifted,
                "driftline_psi": float(mine["psi"]),
                "driftline_p_value": float(mine["p_value"]),
                "driftline_drifted": bool(mine["drifted"]),
                "evidently_method": None if other is None else other["method"],
                "evidently_threshold": None if other is None else other["threshold"],
                "evidently_score": None if other is None else other["score"],
                "evidently_drifted": None if other is None else other["drifted"],
                "agree": None if other is None else bool(mine["drifted"]) == other["drifted"],
            }
        )

    def share(rows: list[dict[str, Any]]) -> float | None:
        known = [r["agree"] for r in rows if r["agree"] is not None]
        return sum(known) / len(known) if known else None

    def hits(rows: list[dict[str, Any]], key: str) -> str:
        return f"{sum(bool(r[key]) for r in rows)}/{len(rows)}"

    shifted = [r for r in per_column if r["shifted"]]
    unshifted = [r for r in per_column if not r["shifted"]]
    ev_median, dl_median = statistics.median(evidently_warm), statistics.median(driftline_warm)
    return {
        "evidently_version": evidently.__version__,
        "call": "Report([DataDriftPreset()]).run(current, reference)",
        "rows_per_side": len(reference),
        "columns": len(columns),
        "repeats": repeats,
        "evidently_seconds_first_call": evidently_cold,
        "evidently_seconds_repeats": evidently_warm,
        "evidently_seconds_median": ev_median,
        "evidently_seconds_with_tests": evidently_with_tests,
        "driftline_seconds_first_call": driftline_cold,
        "driftline_seconds_repeats": driftline_warm,
        "driftline_seconds_median": dl_median,
        "driftline_timed": "build_reference(reference) + column_drift(profile, current) with the default DriftConfig",
        "speed_ratio_driftline_over_evidently": dl_median / ev_median,
        "speed_ratio_first_calls": driftline_cold / evidently_cold,
        "verdicts_extracted": len(theirs) == len(columns),
        "verdict_source": "per-column ValueDrift tests of Report([DataDriftPreset()], "
        "include_tests=True): FAIL = drift",
        "verdict_rule_consistent": all(v["rule_agrees_with_test"] is not False for v in theirs.values()),
        "agreement_share": share(per_column),
        "agreement_share_shifted": share(shifted),
        "agreement_share_unshifted": share(unshifted),
        "driftline_flagged_shifted": hits(shifted, "driftline_drifted"),
        "evidently_flagged_shifted": hits(shifted, "evidently_drifted"),
        "driftline_flagged_unshifted": hits(unshifted, "driftline_drifted"),
        "evidently_flagged_unshifted": hits(unshifted, "evidently_drifted"),
        "per_column": per_column,
    }


# --- output -------------------------------------------------------------------------------------------------------


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]

    def line(cells: tuple[str, ...]) -> str:
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))

    return "\n".join([line(header), "-+-".join("-" * w for w in widths), *(line(row) for row in rows)])


def format_table(summary: dict[str, Any]) -> str:
    header = ("shift type", "columns", "flagged", "rate", "95% Wilson", "target", "result", "mean PSI")
    rows = [
        (
            g["group"],
            str(g["columns"]),
            str(g["flagged"]),
            f"{g['rate']:.1%}",
            f"[{g['wilson_95'][0]:.1%}, {g['wilson_95'][1]:.1%}]",
            g["target"],
            "pass" if g["passed"] else "FAIL",
            f"{g['mean_psi']:.4f}",
        )
        for g in summary["groups"]
    ]
    return _table(header, rows)


def format_columns(summary: dict[str, Any]) -> str:
    header = (
        "column",
        "flagged",
        "rate",
        "mean PSI",
        "PSI 5%",
        "min PSI",
        "max p",
        "by psi_alert",
        "missed: PSI<min / p>=level",
    )
    rows = [
        (
            c["column"],
            f"{c['flagged']}/{c['columns']}",
            f"{c['rate']:.1%}",
            f"{c['mean_psi']:.4f}",
            f"{c['psi_p05']:.4f}",
            f"{c['psi_min']:.4f}",
            f"{c['p_value_max']:.1e}",
            str(c["flagged_by_psi_alert"]),
            f"{c['unflagged_because']['psi_below_min_psi']} / {c['unflagged_because']['p_value_not_significant']}",
        )
        for c in summary["columns"]
    ]
    return _table(header, rows)


def format_evidently(result: dict[str, Any]) -> str:
    header = (
        "column",
        "Driftline PSI",
        "p-value",
        "Driftline",
        "Evidently method",
        "score",
        "threshold",
        "Evidently",
        "agree",
    )

    def flag(v: bool | None) -> str:
        return "-" if v is None else "drift" if v else "ok"

    rows = [
        (
            r["column"],
            f"{r['driftline_psi']:.4f}",
            f"{r['driftline_p_value']:.1e}",
            flag(r["driftline_drifted"]),
            str(r["evidently_method"]),
            "-" if r["evidently_score"] is None else f"{r['evidently_score']:.4f}",
            "-" if r["evidently_threshold"] is None else f"{r['evidently_threshold']:g}",
            flag(r["evidently_drifted"]),
            "-" if r["agree"] is None else "yes" if r["agree"] else "NO",
        )
        for r in result["per_column"]
    ]

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.0%}"

    return "\n".join(
        [
            _table(header, rows),
            "",
            (
                f"agreement {pct(result['agreement_share'])} of columns "
                f"(shifted {pct(result['agreement_share_shifted'])}, "
                f"unshifted {pct(result['agreement_share_unshifted'])}); flagged shifted: Driftline "
                f"{result['driftline_flagged_shifted']}, Evidently "
                f"{result['evidently_flagged_shifted']}; flagged unshifted: "
                f"Driftline {result['driftline_flagged_unshifted']}, Evidently {result['evidently_flagged_unshifted']}"
            ),
            (
                f"time on {result['rows_per_side']} + {result['rows_per_side']} rows x {result['columns']} columns "
                f"(median of {result['repeats']} after a first call): "
                f"Driftline {result['driftline_seconds_median'] * 1000:.1f} ms, "
                f"Evidently {result['evidently_seconds_median'] * 1000:.0f} ms -> ratio Driftline/Evidently "
                f"{result['speed_ratio_driftline_over_evidently']:.4f} "
                f"(first calls: {result['driftline_seconds_first_call'] * 1000:.1f} ms vs "
                f"{result['evidently_seconds_first_call'] * 1000:.0f} "
                f"ms, ratio {result['speed_ratio_first_calls']:.4f})"
            ),
        ]
    )


def machine_info() -> dict[str, Any]:
    info = _machine_info()
    info["scipy"] = scipy.__version__
    try:
        from importlib.metadata import version

        info["evidently"] = version("evidently")
    except Exception:  # noqa: BLE001 - not installed: no version to report
        info["evidently"] = None
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.drift_detection", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--trials", type=int, default=100, help="independent reference/current frame pairs (default 100)"
    )
    parser.add_argument(
        "--rows", type=int, default=10_000, help="rows in the reference and in the current frame (default 10000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    parser.add_argument(
        "--evidently-repeats", type=int, default=3, help="timed repeats of each tool after its first call (default 3)"
    )
    parser.add_argument("--skip-evidently", action="store_true", help="leave out the Evidently comparison")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON results (default {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    if args.rows < 100:
        parser.error("--rows must be at least 100")
    if args.evidently_repeats < 1:
        parser.error("--evidently-repeats must be at least 1")
    argv_used = sys.argv[1:] if argv is None else argv
    drift = DriftConfig()

    start = time.perf_counter()
    records, seconds = run_trials(args.trials, args.rows, args.seed, drift)
    summary = summarise(records, drift)
    evidently_result: dict[str, Any] | None = None
    evidently_error: str | None = None
    if not args.skip_evidently:
        reference, current = make_frames(args.seed, 0, args.rows)
        try:
            evidently_result = evidently_comparison(reference, current, drift, repeats=args.evidently_repeats)
        except Exception as exc:  # noqa: BLE001 - the comparison is informational; report why it is missing
            evidently_error = f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - start
    ok = summary["all_targets_met"]

    print(
        f"Drift verdict, {args.trials} trials, {args.rows} reference + {args.rows} current rows, seed {args.seed}, "
        f"real build_reference + column_drift (default DriftConfig: bins {drift.bins}, p_value {drift.p_value}, "
        f"min_psi {drift.min_psi}, psi_alert {drift.psi_alert})\n"
    )
    print(format_table(summary))
    print()
    print(format_columns(summary))
    print(
        f"\nDriftline per trial ({len(COLUMNS)} columns): median {statistics.median(seconds) * 1000:.1f} ms, "
        f"mean {statistics.fmean(seconds) * 1000:.1f} ms"
    )
    if evidently_result is not None:
        print(f"\nEvidently {evidently_result['evidently_version']} DataDriftPreset on trial 0's frames:\n")
        print(format_evidently(evidently_result))
        if not evidently_result["verdicts_extracted"]:
            print("Evidently's per-column verdicts could not all be extracted; see the JSON.")
    elif evidently_error:
        print(f"\nEvidently comparison failed: {evidently_error}")
    print(f"\n{'all targets met' if ok else 'TARGETS NOT MET'}; wall time {wall:.1f} s")

    payload = {
        "benchmark": "drift_detection",
        "command": " ".join(["python -m benchmarks.drift_detection", *argv_used]).strip(),
        "seed": args.seed,
        "trials": args.trials,
        "rows_reference": args.rows,
        "rows_current": args.rows,
        "wall_time_seconds": round(wall, 3),
        "all_targets_met": ok,
        "machine": machine_info(),
        "decision": {
            "functions": ["driftline.drift.build_reference", "driftline.drift.column_drift"],
            "build_reference_n_bins": drift.bins,
            "drift_config": drift.model_dump(mode="json"),
            "verdict": "drifted = (p_value < drift.p_value and psi >= drift.min_psi) or psi >= drift.psi_alert",
            "pass_rule": "each shift type and all shifted columns: flagged share >= 95%; unshifted columns: "
            "flagged share <= 5% (point estimates)",
        },
        "design": {
            "columns_per_trial": [c.name for c in COLUMNS],
            "distributions": DISTRIBUTION_DESCRIPTIONS,
            "shifts": SHIFT_DESCRIPTIONS,
            "seeding": "trial t draws from numpy default_rng([seed, t]); reference and current are independent draws",
        },
        "driftline_seconds_per_trial": {
            "median": statistics.median(seconds),
            "mean": statistics.fmean(seconds),
            "max": max(seconds),
        },
        "groups": summary["groups"],
        "columns": summary["columns"],
        "evidently": evidently_result
        if evidently_result is not None
        else {"skipped": bool(args.skip_evidently), "error": evidently_error},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
