"""P1: Driftline's drift pass vs Evidently's DataDriftPreset on the same frames, in one process run.

Frames: ``benchmarks.data.make_feature_frames(rows, 20 features)`` — 18 numeric columns (normal,
lognormal, Student t, uniform; half float32) and 2 categorical, 40% of the columns shifted by amounts any
sensible test flags, the rest drawn again from the same distribution. Full: 1M + 1M rows; quick: 100k.

* Driftline: what the monitor flow runs — ``build_reference`` on the reference frame (quantile bin edges
  and counts; done once at training time and stored with the model) plus ``column_drift`` on the current
  frame (PSI + chi-square per column against the cached bins). Timed together, best of 3 (after a warm-up).
* Evidently 0.7.23: ``Report([DataDriftPreset()], include_tests=True).run(current, reference)``, timed
  once (warm: a 1k-row run first builds Evidently's registries). Its per-column verdicts are the
  ``ValueDrift`` tests' statuses.
* ``drift_verdict_agreement``: share of columns where both say the same (drifted or not).
* ``evidently_sample_report_seconds``: the report people read, on a capped sample (``DriftConfig().report_sample``
  rows of each frame), as the monitor flow produces it.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from typing import Any

from benchmarks.data import make_feature_frames
from benchmarks.drift_detection import evidently_verdicts
from driftline.config import DriftConfig
from driftline.drift import build_reference, column_drift


def _evidently(reference: Any, current: Any) -> Any:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently import Report
    from evidently.presets import DataDriftPreset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Report([DataDriftPreset()], include_tests=True).run(current, reference)


def measure(quick: bool = False) -> dict[str, Any]:
    rows = 100_000 if quick else 1_000_000
    frames = make_feature_frames(rows, n_features=20, seed=0)
    drift = DriftConfig()

    def ours() -> Any:
        profile = build_reference(frames.reference, None, {}, drift.bins)
        return column_drift(profile, frames.current, drift)

    ours()
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        table = ours()
        timings.append(time.perf_counter() - started)
    driftline_seconds = min(timings)

    _evidently(frames.reference.head(1000), frames.current.head(1000))  # warm-up: registries, lazy imports
    started = time.perf_counter()
    snapshot = _evidently(frames.reference, frames.current)
    evidently_seconds = time.perf_counter() - started

    cap = drift.report_sample
    started = time.perf_counter()
    _evidently(
        frames.reference.sample(min(cap, rows), random_state=0), frames.current.sample(min(cap, rows), random_state=0)
    )
    sample_seconds = time.perf_counter() - started

    theirs = evidently_verdicts(snapshot)
    mine = {row["feature"]: bool(row["drifted"]) for row in table.to_dict(orient="records")}
    agree = [mine[c] == theirs[c]["drifted"] for c in mine if c in theirs]
    truth = [mine[c] == (c in frames.shifted) for c in mine]
    return {
        "drift_speedup_vs_evidently": evidently_seconds / driftline_seconds,
        "drift_verdict_agreement": sum(agree) / len(agree) if agree else None,
        "driftline_drift_seconds": driftline_seconds,
        "evidently_seconds": evidently_seconds,
        "evidently_sample_report_seconds": sample_seconds,
        "drift_rows": rows,
        "drift_columns": len(mine),
        "drift_columns_compared": len(agree),
        "driftline_matches_ground_truth": sum(truth) / len(truth),
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
