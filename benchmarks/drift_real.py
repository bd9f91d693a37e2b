"""Can the drift monitor tell calm from crash on real series? Windows from inside the training period vs
windows after documented regime breaks, through the real drift code.

Run from the project root::

    .venv/bin/python -m benchmarks.drift_real [--quick] [--seed 0] [--output PATH]

For every real series in ``SERIES`` (only data that ships inside installed packages; nothing is downloaded):

1. the project's feature builder (``driftline.features.build_features`` / ``scoring_rows``) on the whole
   series; the rows up to the series' training cutoff are the training period;
2. a logistic regression (``driftline.models.make_estimator("logreg")``) fitted on the training rows; its
   scores on them and the training features make the reference profile
   (``driftline.drift.build_reference`` with the rows' timestamps, as ``tasks/tracking.py`` does), null
   included;
3. (a) calm windows: contiguous windows of random length and position drawn from INSIDE the training
   period; (b) break windows: every window of the listed lengths that lies inside a documented regime break
   after the cutoff. Each window is judged by ``driftline.drift.measure_drift`` (features + prediction
   drift, the verdict ``drift_detected``) with the series' ``DriftConfig``.

Three rules judge the same windows:

* ``null`` (the default, ``DriftConfig()``): a column drifts when its PSI exceeds the 0.99 quantile of the
  PSI between windows of the reference period and the rest of it; dataset drift when a share of
  ``drift_share`` columns drifted, or the scores did;
* ``chi2`` (the rule before issue 14): chi-square p-value on the PSI bins with the raw row count, ``min_psi``,
  ``psi_alert``, prediction PSI >= ``prediction_psi``;
* ``fixed_psi`` (the naive baseline the issue implies: the textbook PSI bands without any test): a column
  drifts at PSI >= 0.25, the scores at PSI >= 0.1.

Targets (``null`` rule, pooled over the series): calm windows flagged in at most 5%
(``drift_real_false_alarm_rate``), break windows in at least 90% (``drift_real_detection_rate``); 95% Wilson
intervals beside them. Neighbouring break windows overlap, so they are not independent trials: the
intervals are narrower than the evidence. The calm windows are inside the period the null was built from,
which is the case the issue reports (a champion monitored on its own training period).

Series:

* ``equities``: bokeh-sampledata's daily OHLCV of AAPL, IBM, MSFT, GOOG (and FB, which starts in 2012 and
  so never enters the training period), 2000-2013. Trained on rows up to 2008-06-30; the break is the
  2008 crash after the Lehman bankruptcy, 2008-09-15 to 2008-12-31.
* ``us_macro``: statsmodels' ``macrodata``, US quarterly macro series 1959Q1-2009Q3 (real GDP,
  consumption, investment, government spending, disposable income, CPI, M1, T-bill rate, unemployment,
  population) as a panel of ten series with quarterly windows. Trained on rows up to 2007Q4 (the NBER
  peak); the break is the Great Recession's acute phase, 2008Q3-2009Q3.

Reported beside the targets, not pooled into them (full runs only): ``us_macro_1973`` and ``us_macro_1980``,
the same panel monitored by a model trained up to the quarter before the 1973-75 recession (1973Q4-1975Q1)
and before the 1980 and 1981-82 recessions (1980Q1-1982Q4), with its own calm windows.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.promotion_power import machine_info, wilson
from driftline.config import DriftConfig, FeatureConfig, ModelsConfig, TargetConfig

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "drift_real.json"
FALSE_ALARM_TARGET = 0.05
DETECTION_TARGET = 0.90
RULES = ("null", "chi2", "fixed_psi")
EVIDENTLY_WINDOWS = 5  # calm and break windows per series also run through the Evidently report (full runs)


@dataclass(frozen=True)
class Series:
    name: str
    description: str
    load: Callable[[], pd.DataFrame]  # canonical frame: symbol, timestamp, prices
    cutoff: str  # last training timestamp
    start: str | None  # first training timestamp (earlier rows are only feature history)
    breaks: tuple[tuple[str, str, str], ...]  # (first, last timestamp, what happened)
    calm_lengths: tuple[int, ...]  # window lengths (timestamps) drawn for calm windows
    break_lengths: tuple[int, ...]
    break_stride: int  # timestamps between the starts of neighbouring break windows
    features: FeatureConfig = field(default_factory=FeatureConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    drift: dict[str, Any] = field(default_factory=dict)  # DriftConfig overrides for this series' sampling
    # False: an event reported beside the targets, not pooled into them (full runs only).
    judged: bool = True


def load_equities() -> pd.DataFrame:
    """bokeh-sampledata's stocks, through the project's own loader (the demo data)."""
    from driftline.config import DataConfig
    from driftline.ingest import load_data

    with tempfile.TemporaryDirectory() as stage:
        return load_data(DataConfig(), stage_root=Path(stage)).frame


MACRO_SERIES = ("realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "tbilrate", "unemp", "pop")


def load_us_macro() -> pd.DataFrame:
    """statsmodels' US macro data as a panel: one symbol per (positive) series, its level as the close."""
    from statsmodels.datasets import macrodata

    data = macrodata.load_pandas().data
    timestamps = (
        pd.PeriodIndex.from_fields(year=data["year"].astype(int), quarter=data["quarter"].astype(int), freq="Q")
        .to_timestamp(how="end")
        .normalize()
    )
    frames = [
        pd.DataFrame({"symbol": name, "timestamp": timestamps, "close": data[name].to_numpy(dtype=float)})
        for name in MACRO_SERIES
    ]
    return (
        pd.concat(frames, ignore_index=True).sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)
    )


SERIES = (
    Series(
        name="equities",
        description="bokeh-sampledata stocks (AAPL, IBM, MSFT, GOOG, FB), daily 2000-2013",
        load=load_equities,
        cutoff="2008-06-30",
        start=None,
        breaks=(("2008-09-15", "2008-12-31", "2008 crash after the Lehman bankruptcy"),),
        calm_lengths=(21, 42, 63, 126),
        break_lengths=(21, 42, 63),
        break_stride=2,
        # Four symbols trade in 2008: a 21-day window is 84 rows, under the default min_rows of 100.
        drift={"min_rows": 60},
    ),
    Series(
        name="us_macro",
        description="statsmodels macrodata: 10 US quarterly macro series, 1959Q1-2009Q3",
        load=load_us_macro,
        cutoff="2007-12-31",
        start="1984-01-01",
        breaks=(("2008-07-01", "2009-09-30", "Great Recession, acute phase (2008Q3-2009Q3)"),),
        calm_lengths=(2, 3, 4, 6, 8),
        break_lengths=(2, 3, 4, 5),
        break_stride=1,
        features=FeatureConfig(
            return_windows=(1, 2, 4),
            vol_short=2,
            vol_mid=4,
            vol_long=8,
            zscore_window=12,
            median_window=16,
            rsi_window=4,
            macd_fast=2,
            macd_slow=6,
            macd_signal=3,
            calendar=False,
        ),
        target=TargetConfig(kind="direction", horizon=1),
        # Quarterly: windows of a few quarters (a 2-quarter window of the nine series with features is 18 rows).
        drift={"null_windows": (2, 4, 8, 16), "min_rows": 15},
    ),
)
# Earlier US recessions on the same quarterly panel, each monitored by a model trained up to the quarter before
# it (NBER peaks 1973Q4 and 1980Q1; the 1980 and 1981-82 recessions as one break). Reported per event beside
# the targets, not pooled into them: the targets were set on the 2008 breaks above, and these recessions are
# milder shifts against a training period that holds the 1960, 1969-70 (and 1973-75) recessions itself.
POOLED = frozenset(s.name for s in SERIES)  # the series whose windows the targets' pooled rates count
US_MACRO = next(s for s in SERIES if s.name == "us_macro")
EARLIER_RECESSIONS = tuple(
    Series(
        name=name,
        description=f"statsmodels macrodata, trained up to {cutoff[:4]}: {what}",
        load=load_us_macro,
        cutoff=cutoff,
        start=None,
        breaks=((first, last, what),),
        calm_lengths=US_MACRO.calm_lengths,
        break_lengths=US_MACRO.break_lengths,
        break_stride=1,
        features=US_MACRO.features,
        target=US_MACRO.target,
        drift=US_MACRO.drift,
        judged=False,
    )
    for name, cutoff, first, last, what in (
        ("us_macro_1973", "1973-09-30", "1973-10-01", "1975-03-31", "1973-75 recession (1973Q4-1975Q1)"),
        ("us_macro_1980", "1979-12-31", "1980-01-01", "1982-12-31", "1980 and 1981-82 recessions (1980Q1-1982Q4)"),
    )
)


def rule_config(rule: str, overrides: dict[str, Any]) -> DriftConfig:
    base = DriftConfig(**overrides)
    if rule == "null":
        return base
    if rule == "chi2":
        return base.model_copy(update={"method": "chi2"})
    if rule == "fixed_psi":
        # psi >= min_psi is required with any p-value, so min_psi = psi_alert makes PSI >= 0.25 the whole rule.
        return base.model_copy(update={"method": "chi2", "min_psi": base.psi_alert, "prediction_psi": 0.1})
    raise ValueError(f"unknown rule {rule!r}")


@dataclass
class Prepared:
    series: Series
    rows: pd.DataFrame  # every row with complete features (labelled or not): meta + features
    names: list[str]
    scores: np.ndarray  # the model's score for every row of ``rows``
    training: np.ndarray  # boolean mask over ``rows``
    times: np.ndarray  # sorted distinct timestamps of ``rows``
    profile: Any
    seconds: float


def prepare(series: Series) -> Prepared:
    """Features, the training-period model and its reference profile (null included)."""
    from driftline.drift import build_reference
    from driftline.features import build_features, model_inputs, scoring_rows
    from driftline.models import make_estimator

    started = time.perf_counter()
    frame = series.load()
    with np.errstate(divide="ignore", invalid="ignore"):
        features = build_features(frame, series.features, series.target)
    names = list(model_inputs(features.X).columns)  # what a model learns from (not the series level)
    cutoff = pd.Timestamp(series.cutoff)
    times = features.meta["timestamp"].to_numpy()
    distinct = np.unique(times[times <= cutoff])
    # Train on rows whose label is known at the cutoff (it looks `horizon` timestamps ahead).
    first = pd.Timestamp(series.start) if series.start else times.min()
    train = features.subset(np.flatnonzero((times >= first) & (times <= distinct[-1 - series.target.horizon])))
    model = make_estimator("logreg", ModelsConfig(families=("logreg",)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(train.X[names], train.y)
    with np.errstate(divide="ignore", invalid="ignore"):
        rows, _ = scoring_rows(frame, series.features, series.target, names)
    rows = rows.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)
    scores = model.predict_proba(rows[names])[:, 1]
    training = (rows["timestamp"].to_numpy() <= cutoff) & (rows["timestamp"].to_numpy() >= first)
    drift = DriftConfig(**series.drift)
    profile = build_reference(
        rows.loc[training, names].reset_index(drop=True),
        scores[training],
        {},
        drift.bins,
        times=rows.loc[training, "timestamp"].to_numpy(),
        null_windows=drift.null_windows,
    )
    return Prepared(
        series,
        rows,
        names,
        scores,
        training,
        np.sort(rows["timestamp"].unique()),
        profile,
        time.perf_counter() - started,
    )


def calm_windows(prepared: Prepared, n: int, rng: np.random.Generator) -> list[tuple[pd.Timestamp, pd.Timestamp, str]]:
    """``n`` windows of random length and position inside the training period."""
    inside = np.sort(prepared.rows.loc[prepared.training, "timestamp"].unique())
    out = []
    for _ in range(n):
        length = int(rng.choice(prepared.series.calm_lengths))
        start = int(rng.integers(0, len(inside) - length + 1))
        out.append((pd.Timestamp(inside[start]), pd.Timestamp(inside[start + length - 1]), "calm"))
    return out


def break_windows(prepared: Prepared) -> list[tuple[pd.Timestamp, pd.Timestamp, str]]:
    """Every window of the break lengths inside each documented break, starts ``break_stride`` apart."""
    out = []
    for first, last, what in prepared.series.breaks:
        inside = prepared.times[(prepared.times >= pd.Timestamp(first)) & (prepared.times <= pd.Timestamp(last))]
        for length in prepared.series.break_lengths:
            for start in range(0, len(inside) - length + 1, prepared.series.break_stride):
                out.append((pd.Timestamp(inside[start]), pd.Timestamp(inside[start + length - 1]), what))
    return out


def judge(prepared: Prepared, windows: list[tuple[pd.Timestamp, pd.Timestamp, str]], kind: str) -> list[dict[str, Any]]:
    """Every rule's verdict on every window."""
    from driftline.drift import measure_drift

    configs = {rule: rule_config(rule, prepared.series.drift) for rule in RULES}
    timestamps = prepared.rows["timestamp"].to_numpy()
    records = []
    for first, last, what in windows:
        mask = (timestamps >= first) & (timestamps <= last)
        window = prepared.rows.loc[mask]
        record: dict[str, Any] = {
            "series": prepared.series.name,
            "kind": kind,
            "start": first.date().isoformat(),
            "end": last.date().isoformat(),
            "timestamps": int(window["timestamp"].nunique()),
            "rows": int(mask.sum()),
            "event": what,
        }
        for rule, drift in configs.items():
            summary = measure_drift(
                prepared.profile, window[prepared.names], prepared.scores[mask], drift, times=window["timestamp"]
            )
            record[rule] = {
                "detected": summary.drift_detected,
                "drift_share": round(summary.drift_share, 4),
                "prediction_psi": round(float(summary.prediction_drift.get("psi", float("nan"))), 4),
                "prediction_drifted": bool(summary.prediction_drift.get("drifted")),
                "feature_index_drifted": bool(summary.feature_index.get("drifted")),
                "method": summary.method,
            }
        records.append(record)
    return records


def evidently_agreement_check(
    prepared: Prepared, windows: list[tuple[pd.Timestamp, pd.Timestamp, str]], kind: str
) -> list[dict[str, Any]]:
    """The monitor's Evidently report (per-column PSI against our null thresholds, ``evidently_report`` on
    the capped samples the monitor flow uses) on some windows, and its per-column agreement with our verdict."""
    from driftline.drift import evidently_agreement, evidently_report, evidently_thresholds, measure_drift

    drift = rule_config("null", prepared.series.drift)
    timestamps = prepared.rows["timestamp"].to_numpy()
    reference = prepared.rows.loc[prepared.training, prepared.names].assign(
        probability=prepared.scores[prepared.training]
    )
    out = []
    for first, last, _ in windows:
        mask = (timestamps >= first) & (timestamps <= last)
        window = prepared.rows.loc[mask]
        summary = measure_drift(
            prepared.profile, window[prepared.names], prepared.scores[mask], drift, times=window["timestamp"]
        )
        current = window[prepared.names].assign(probability=prepared.scores[mask])
        with tempfile.TemporaryDirectory() as out_dir:
            _, data = evidently_report(reference, current, drift.report_sample, out_dir, evidently_thresholds(summary))
            agreement = evidently_agreement(summary, json.loads(Path(data).read_text()))
        out.append(
            {
                "series": prepared.series.name,
                "kind": kind,
                "start": first.date().isoformat(),
                "end": last.date().isoformat(),
                **agreement,
            }
        )
    return out


def rate(records: list[dict[str, Any]], rule: str) -> dict[str, Any]:
    flagged = sum(r[rule]["detected"] for r in records)
    n = len(records)
    return {"windows": n, "flagged": flagged, "rate": flagged / n if n else None, "wilson_95": list(wilson(flagged, n))}


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per rule: false-alarm rate on calm windows, detection rate on break windows, pooled and per series."""
    out: dict[str, Any] = {}
    for rule in RULES:
        calm = [r for r in records if r["kind"] == "calm"]
        broken = [r for r in records if r["kind"] == "break"]
        out[rule] = {
            "false_alarm": rate([r for r in calm if r["series"] in POOLED], rule),
            "detection": rate([r for r in broken if r["series"] in POOLED], rule),
            "per_series": {
                name: {
                    "false_alarm": rate([r for r in calm if r["series"] == name], rule),
                    "detection": rate([r for r in broken if r["series"] == name], rule),
                }
                for name in dict.fromkeys(r["series"] for r in records)
            },
        }
    return out


def run(quick: bool = False, seed: int = 0, evidently_windows: int = 0) -> dict[str, Any]:
    """Every series, every window, every rule; the summary and the records. With ``evidently_windows``,
    the Evidently report's agreement with our per-column verdicts on that many calm and break windows
    per series."""
    rng = np.random.default_rng(seed)
    calm_per_series = 40 if quick else 300
    records: list[dict[str, Any]] = []
    agreement: list[dict[str, Any]] = []
    profiles: dict[str, Any] = {}
    for series in SERIES if quick else (*SERIES, *EARLIER_RECESSIONS):
        prepared = prepare(series)
        started = time.perf_counter()
        calm = calm_windows(prepared, calm_per_series, rng)
        records += judge(prepared, calm, "calm")
        broken = break_windows(prepared)
        records += judge(prepared, broken[::2] if quick else broken, "break")
        if evidently_windows and series.judged:
            picks = np.random.default_rng([seed, 1]).choice(
                len(broken), min(evidently_windows, len(broken)), replace=False
            )
            agreement += evidently_agreement_check(prepared, calm[:evidently_windows], "calm")
            agreement += evidently_agreement_check(prepared, [broken[i] for i in sorted(picks)], "break")
        null = prepared.profile.null
        profiles[series.name] = {
            "description": series.description,
            "cutoff": series.cutoff,
            "judged": series.judged,
            "breaks": [list(b) for b in series.breaks],
            "training_rows": int(prepared.training.sum()),
            "training_timestamps": int(null.timestamps) if null else None,
            "features": len(prepared.profile.columns),
            "null_window_lengths": null.window_lengths if null else None,
            "null_windows": null.windows if null else None,
            "null_missing_reason": prepared.profile.null_missing_reason,
            "drift_overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in series.drift.items()},
            "prepare_seconds": round(prepared.seconds, 2),
            "judge_seconds": round(time.perf_counter() - started, 2),
        }
    compared = sum(a["columns"] for a in agreement)
    evidently = {
        "windows": len(agreement),
        "columns_compared": compared,
        "agreement_share": sum(a["agree"] for a in agreement) / compared if compared else None,
        "per_window": agreement,
    }
    return {"summary": summarise(records), "series": profiles, "evidently": evidently, "records": records}


def measure(quick: bool = False) -> dict[str, Any]:
    """The figures ``benchmarks/run.py`` records (part ``drift_real``)."""
    result = run(quick=quick, seed=0, evidently_windows=0 if quick else EVIDENTLY_WINDOWS)
    new, old, naive = (result["summary"][rule] for rule in RULES)
    return {
        "drift_real_evidently_agreement": result["evidently"]["agreement_share"],
        "drift_real_evidently_columns": result["evidently"]["columns_compared"],
        "drift_real_false_alarm_rate": new["false_alarm"]["rate"],
        "drift_real_false_alarm_wilson_95": new["false_alarm"]["wilson_95"],
        "drift_real_false_alarm_rate_wilson_95": new["false_alarm"][
            "wilson_95"
        ],  # the interval its target is judged on
        "drift_real_calm_windows": new["false_alarm"]["windows"],
        "drift_real_detection_rate": new["detection"]["rate"],
        "drift_real_detection_wilson_95": new["detection"]["wilson_95"],
        "drift_real_detection_rate_wilson_95": new["detection"]["wilson_95"],
        "drift_real_break_windows": new["detection"]["windows"],
        "drift_real_old_rule_false_alarm_rate": old["false_alarm"]["rate"],
        "drift_real_old_rule_detection_rate": old["detection"]["rate"],
        "drift_real_fixed_psi_false_alarm_rate": naive["false_alarm"]["rate"],
        "drift_real_fixed_psi_detection_rate": naive["detection"]["rate"],
        "drift_real_per_series": {
            name: {rule: result["summary"][rule]["per_series"][name] for rule in RULES} for name in result["series"]
        },
    }


def format_summary(result: dict[str, Any]) -> str:
    def pct(entry: dict[str, Any]) -> str:
        low, high = entry["wilson_95"]
        return f"{entry['rate']:6.1%} ({entry['flagged']:>3}/{entry['windows']:<3}, 95% Wilson {low:.1%}-{high:.1%})"

    lines = [
        f"{'rule':<10} {'series':<10} {'calm windows flagged (false alarms)':<46} break windows flagged (detection)"
    ]
    for rule in RULES:
        entry = result["summary"][rule]
        for name, per in entry["per_series"].items():
            shown = name if name in POOLED else f"{name} (not pooled)"
            lines.append(f"{rule:<10} {shown:<10} {pct(per['false_alarm']):<46} {pct(per['detection'])}")
        lines.append(f"{rule:<10} {'pooled':<10} {pct(entry['false_alarm']):<46} {pct(entry['detection'])}")
    lines.append(
        f"targets (rule null, pooled): false alarms <= {FALSE_ALARM_TARGET:.0%}, detection >= {DETECTION_TARGET:.0%}; "
        "null = window-to-window PSI of the reference period, chi2 "
        "= the old rule, fixed_psi = PSI >= 0.25 / scores >= 0.1"
    )
    return "\n".join(lines)


WINDOW_FIELDS = ("series", "kind", "start", "end", "timestamps", "rows", *RULES)


def render_json(payload: dict[str, Any]) -> str:
    """The report, with one compact row per window (every rule's verdict) and full records only for the
    windows the default rule got wrong (calm windows it flagged, break windows it missed)."""
    records = payload["records"]
    wrong = [r for r in records if r["null"]["detected"] != (r["kind"] == "break")]
    head = {k: v for k, v in payload.items() if k != "records"}
    head["null_rule_wrong"] = wrong
    head["window_fields"] = list(WINDOW_FIELDS)
    rows = [[*(r[k] for k in WINDOW_FIELDS[:6]), *(int(r[rule]["detected"]) for rule in RULES)] for r in records]
    text = json.dumps(head, indent=2, default=str)
    body = ",\n    ".join(json.dumps(row, separators=(",", ":")) for row in rows)
    return text[:-2] + ',\n  "windows": [\n    ' + body + "\n  ]\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.drift_real", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="40 calm windows per series instead of 300, every other break window"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--skip-evidently", action="store_true", help="no Evidently agreement check (it is skipped with --quick too)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = run(
        quick=args.quick,
        seed=args.seed,
        evidently_windows=0 if args.quick or args.skip_evidently else EVIDENTLY_WINDOWS,
    )
    new = result["summary"]["null"]
    met = new["false_alarm"]["rate"] <= FALSE_ALARM_TARGET and new["detection"]["rate"] >= DETECTION_TARGET
    payload = {
        **result,
        "all_targets_met": met,
        "targets": {"false_alarm_rate": f"<= {FALSE_ALARM_TARGET}", "detection_rate": f">= {DETECTION_TARGET}"},
        "drift_config": DriftConfig().model_dump(mode="json"),
        "command": "python -m benchmarks.drift_real"
        + (" --quick" if args.quick else "")
        + (" --skip-evidently" if args.skip_evidently else "")
        + f" --seed {args.seed}",
        "wall_time_seconds": round(time.perf_counter() - started, 1),
        "machine": machine_info(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render_json(payload), encoding="utf-8")
    print(format_summary(result))
    if result["evidently"]["windows"]:
        evidently = result["evidently"]
        print(
            f"Evidently (per-column PSI against our thresholds, on the monitor's capped samples): same verdict on "
            f"{evidently['agreement_share']:.1%} of {evidently['columns_compared']} "
            f"columns in {evidently['windows']} windows"
        )
    print(f"\n{'targets met' if met else 'TARGETS MISSED'}; {payload['wall_time_seconds']} s; written to {args.output}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
