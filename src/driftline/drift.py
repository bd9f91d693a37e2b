"""Fast drift statistics against a reference profile stored with each model version.

The profile keeps, per feature, the reference's quantile bin edges and counts (categories and counts for
non-numeric columns), plus the model's score distribution and its out-of-sample performance. Monitoring a
new batch is then one comparison pass per bin edge and column: PSI for the size of a shift and a
chi-square test of homogeneity on the same bins for its significance. No reference rows are needed, so
it stays fast at millions of rows; the Evidently report (``evidently_report``) is built on a capped sample
for people to read.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftline.config import DriftConfig
from driftline.features import is_calendar_feature
from driftline.metrics import expected_calibration_error

PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class ColumnProfile:
    """Reference distribution of one column: numeric bins (``edges``) or categories."""

    kind: str  # "numeric" | "categorical"
    counts: list[int]
    edges: list[float] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    missing: int = 0


@dataclass(frozen=True)
class ReferenceProfile:
    """Everything monitoring needs to know about the training data, JSON-serialisable."""

    rows: int
    columns: dict[str, ColumnProfile]
    scores: ColumnProfile | None = None
    performance: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceProfile:
        return cls(
            rows=int(data["rows"]),
            columns={k: ColumnProfile(**v) for k, v in data["columns"].items()},
            scores=ColumnProfile(**data["scores"]) if data.get("scores") else None,
            performance=dict(data.get("performance") or {}),
        )


def _floats(values: pd.Series) -> tuple[np.ndarray, int]:
    """The column as float64 (no copy when it already is) and its number of missing values."""
    array = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return array, int(np.count_nonzero(np.isnan(array)))


def _bin_counts(edges: np.ndarray, array: np.ndarray, missing: int) -> np.ndarray:
    """Counts per bin of ``searchsorted(edges, x, side="right")`` over the non-missing values.

    One comparison pass per edge (``x < edge``; NaN compares false, so no filtered copy is made) instead
    of a binary search per value: about 4x faster at a million rows and ten bins.
    """
    below = np.fromiter((np.count_nonzero(array < edge) for edge in edges), dtype=np.int64, count=len(edges))
    cumulative = np.concatenate([below, [len(array) - missing]])
    return np.diff(cumulative, prepend=0)


def _profile_column(values: pd.Series, n_bins: int) -> ColumnProfile:
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        present = values.dropna()
        counts = present.astype(str).value_counts()
        missing = len(values) - len(present)
        return ColumnProfile("categorical", counts.astype(int).tolist(), categories=counts.index.tolist(), missing=missing)
    array, missing = _floats(values)
    data = array[~np.isnan(array)] if missing else array
    if len(data):
        inner = np.quantile(data, np.linspace(0, 1, n_bins + 1)[1:-1])
        # Outer edges at the reference's range: values beyond anything seen in training get bins of
        # their own (reference count 0), so a move past the extremes cannot hide in an open end bin.
        edges = np.unique(np.concatenate([[data.min()], inner, [np.nextafter(data.max(), np.inf)]]))
    else:
        edges = np.array([])
    counts = _bin_counts(edges, data, 0)
    return ColumnProfile("numeric", counts.astype(int).tolist(), edges=edges.tolist(), missing=missing)


def build_reference(
    X: pd.DataFrame, scores: np.ndarray | None, performance: dict[str, float], n_bins: int = 10
) -> ReferenceProfile:
    """Profile the training features (and the model's scores on them) for later drift checks.

    Calendar encodings are left out: a month of new data always "drifts" in month-of-year.
    """
    return ReferenceProfile(
        rows=len(X),
        columns={str(c): _profile_column(X[c], n_bins) for c in X.columns if not is_calendar_feature(str(c))},
        scores=_profile_column(pd.Series(scores), n_bins) if scores is not None else None,
        performance={k: float(v) for k, v in performance.items()},
    )


def _current_counts(profile: ColumnProfile, values: pd.Series) -> tuple[np.ndarray, int]:
    """Counts of the current batch in the reference's bins, and its number of missing values."""
    if profile.kind == "categorical":
        present = values.dropna()
        known = {c: i for i, c in enumerate(profile.categories)}
        positions = present.astype(str).map(known).fillna(len(profile.categories)).to_numpy(dtype=int)
        # The last bin holds categories the reference never saw.
        return np.bincount(positions, minlength=len(profile.categories) + 1), len(values) - len(present)
    array, missing = _floats(values)
    return _bin_counts(np.asarray(profile.edges), array, missing), missing


def psi_and_pvalue(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Population stability index and the chi-square homogeneity p-value of two count vectors."""
    from scipy.stats import chi2

    size = max(len(reference), len(current))
    reference = np.pad(np.asarray(reference, dtype=float), (0, size - len(reference)))
    current = np.pad(np.asarray(current, dtype=float), (0, size - len(current)))
    if reference.sum() == 0 or current.sum() == 0:
        return float("nan"), float("nan")
    ref_share = np.maximum(reference / reference.sum(), PSI_EPSILON)
    cur_share = np.maximum(current / current.sum(), PSI_EPSILON)
    psi = float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))
    used = (reference + current) > 0
    table = np.vstack([reference[used], current[used]])
    if table.shape[1] < 2:
        return psi, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return psi, float(chi2.sf(statistic, table.shape[1] - 1))


def column_drift(profile: ReferenceProfile, X: pd.DataFrame, drift: DriftConfig) -> pd.DataFrame:
    """Per-feature PSI, p-value and verdict for the current batch, largest PSI first.

    A column drifts when its chi-square p-value is below ``drift.p_value`` and its PSI shows a shift
    worth acting on (``>= drift.min_psi``), or when its PSI alone reaches ``drift.psi_alert``.
    """
    rows = []
    for name, column in profile.columns.items():
        if name not in X.columns:
            rows.append({"feature": name, "psi": math.inf, "p_value": 0.0, "severity": "missing", "drifted": True})
            continue
        counts, missing = _current_counts(column, X[name])
        if counts.sum() == 0:  # every current value missing: the column is gone in all but name
            rows.append({"feature": name, "psi": math.inf, "p_value": 0.0, "severity": "empty", "drifted": True})
            continue
        # Missing values are one more bin, so a jump in the missing share counts as drift too.
        unseen = [0] if column.kind == "categorical" else []  # the current side's unseen-category bin
        reference = np.asarray([*column.counts, *unseen, column.missing])
        psi, p_value = psi_and_pvalue(reference, np.append(counts, missing))
        drifted = bool((p_value < drift.p_value and psi >= drift.min_psi) or psi >= drift.psi_alert)
        severity = "alert" if psi >= drift.psi_alert else "warn" if psi >= drift.psi_warn else "ok"
        rows.append({"feature": name, "psi": psi, "p_value": p_value, "severity": severity, "drifted": drifted})
    table = pd.DataFrame(rows, columns=["feature", "psi", "p_value", "severity", "drifted"])
    return table.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


@dataclass(frozen=True)
class DriftSummary:
    """What monitoring found and whether it calls for retraining."""

    drift_detected: bool
    drift_share: float
    drifted_features: list[str]
    prediction_drift: dict[str, Any]
    performance_drift: dict[str, Any]
    columns: list[dict[str, Any]]
    rows: int
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON-safe: infinite or undefined statistics become None."""
        return _finite(asdict(self))

    def markdown(self, report_location: str | None = None) -> str:
        drifted = [c for c in self.columns if c["drifted"]]
        lines = "\n".join(
            f"| {c['feature']} | {c['psi']:.4f} | {c['p_value']:.2e} | {c['severity']} |" for c in drifted[:30]
        )
        link = f"\n\nFull Evidently report: `{report_location}`" if report_location else ""
        return (
            f"### Drift: {'**DETECTED**' if self.drift_detected else 'none'}\n\n"
            f"{len(drifted)} of {len(self.columns)} features drifted (share {self.drift_share:.2f}) on {self.rows} rows.\n\n"
            + "\n".join(f"- {r}" for r in self.reasons)
            + ("\n\n| feature | PSI | p-value | severity |\n|---|---|---|---|\n" + lines if drifted else "")
            + link
            + "\n"
        )


def prediction_drift(profile: ReferenceProfile, scores: np.ndarray | None, drift: DriftConfig) -> dict[str, Any]:
    """PSI of the champion's current score distribution against its scores on the training data."""
    if profile.scores is None or scores is None or len(scores) == 0:
        return {"available": False}
    counts, _ = _current_counts(profile.scores, pd.Series(scores))
    psi, p_value = psi_and_pvalue(np.asarray(profile.scores.counts), counts)
    return {"available": True, "psi": psi, "p_value": p_value, "drifted": bool(psi >= drift.prediction_psi)}


def performance_drift(
    profile: ReferenceProfile, y: np.ndarray | None, scores: np.ndarray | None, drift: DriftConfig
) -> dict[str, Any]:
    """Brier and ECE on labelled current rows against the model's out-of-sample numbers at training."""
    if y is None or scores is None or len(y) < drift.min_labelled_rows or "brier" not in profile.performance:
        return {"available": False, "labelled_rows": 0 if y is None else int(len(y))}
    brier = float(np.mean((np.asarray(scores) - np.asarray(y)) ** 2))
    ece = expected_calibration_error(np.asarray(y), np.asarray(scores), max(2, min(10, len(y) // 100)))
    reference_brier = profile.performance["brier"]
    return {
        "available": True,
        "labelled_rows": int(len(y)),
        "brier": brier,
        "reference_brier": reference_brier,
        "ece": ece,
        "drifted": bool(brier > reference_brier + drift.brier_tolerance or ece > drift.ece_cap),
    }


def decide_drift(
    columns: pd.DataFrame, predictions: dict[str, Any], performance: dict[str, Any], rows: int, drift: DriftConfig
) -> DriftSummary:
    """Drift is detected when enough features drifted, or the scores or the performance did."""
    drifted = columns.loc[columns["drifted"], "feature"].tolist()
    share = len(drifted) / len(columns) if len(columns) else 0.0
    reasons = [f"{len(drifted)}/{len(columns)} features drifted (share {share:.2f}, threshold {drift.drift_share})"]
    if predictions.get("available"):
        reasons.append(f"prediction PSI {predictions['psi']:.4f} (threshold {drift.prediction_psi})")
    if performance.get("available"):
        reasons.append(
            f"Brier {performance['brier']:.4f} vs {performance['reference_brier']:.4f} at training "
            f"(tolerance {drift.brier_tolerance}), ECE {performance['ece']:.4f} (cap {drift.ece_cap})"
        )
    detected = bool(share >= drift.drift_share or predictions.get("drifted") or performance.get("drifted"))
    if rows < drift.min_rows:
        reasons.append(f"only {rows} rows (need {drift.min_rows}); no verdict")
        detected = False
    return DriftSummary(
        drift_detected=detected,
        drift_share=share,
        drifted_features=drifted,
        prediction_drift=predictions,
        performance_drift=performance,
        columns=columns.to_dict(orient="records"),
        rows=rows,
        reasons=reasons,
    )


def retrain_allowed(last_retrain: str | None, now: pd.Timestamp, min_hours: float) -> tuple[bool, str]:
    """The cooldown between drift-triggered retrains: (allowed, why)."""
    if last_retrain is None:
        return True, "no earlier retrain recorded"
    elapsed = (now - pd.Timestamp(last_retrain)).total_seconds() / 3600
    if elapsed < min_hours:
        return False, f"last retrain {elapsed:.2f} h ago, cooldown is {min_hours} h"
    return True, f"last retrain {elapsed:.2f} h ago (cooldown {min_hours} h)"


def event_payload(
    summary: DriftSummary, report_location: str, model_version: str, window: dict[str, Any] | None = None, data: str | None = None
) -> dict[str, Any]:
    """What the ``driftline.drift.detected`` event carries (and the retrain deployment receives).

    ``window`` (``window_start``/``window_end``: the rows judged) and ``data`` (the source a retrain
    trains on, the judged rows included; None for the pipeline's recorded source) are templated into the
    retrain deployment's parameters.
    """
    return {
        "reason": "drift: " + "; ".join(summary.reasons),
        "drift_share": summary.drift_share,
        "top_features": summary.drifted_features[:10],
        "report": report_location,
        "model_version": model_version,
        "window_start": (window or {}).get("window_start"),
        "window_end": (window or {}).get("window_end"),
        "data": data,
    }


def _dataset(frame: pd.DataFrame, labelled: bool) -> Any:
    from evidently import BinaryClassification, DataDefinition, Dataset

    numeric = [c for c in frame.columns if c != "y"]
    definition = DataDefinition(
        numerical_columns=numeric,
        classification=[BinaryClassification(target="y", prediction_probas="probability")] if labelled else None,
    )
    return Dataset.from_pandas(frame, data_definition=definition)


def scored_sample(features: Any, model: Any, cap: int) -> pd.DataFrame:
    """At most ``cap`` rows of a feature set with their label ``y`` and the model's ``probability``: the
    frames an Evidently report compares (only the rows shown are scored)."""
    rows = features.X.sample(min(len(features.X), cap), random_state=0).index
    X = features.X.loc[rows]
    return X.assign(y=features.y.loc[rows].to_numpy(), probability=model.predict_proba(X)[:, 1])


def evidently_report(reference: pd.DataFrame, current: pd.DataFrame, cap: int, out_dir: Any) -> tuple[Any, Any]:
    """Evidently's DataDriftPreset (plus classification quality when both sides have labels) on capped
    samples, saved as ``drift_report.html`` and ``drift_report.json`` in ``out_dir``."""
    import os
    import warnings
    from pathlib import Path

    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently import Report
    from evidently.presets import ClassificationPreset, DataDriftPreset

    columns = [c for c in reference.columns if c in current.columns]
    ref = reference[columns].sample(min(cap, len(reference)), random_state=0)
    cur = current[columns].sample(min(cap, len(current)), random_state=0)
    labelled = "y" in columns and ref["y"].notna().all() and cur["y"].notna().any()
    if "y" in columns:
        if labelled:
            cur = cur.dropna(subset=["y"])
            ref, cur = ref.assign(y=ref["y"].astype(int)), cur.assign(y=cur["y"].astype(int))
        else:
            ref, cur = ref.drop(columns="y"), cur.drop(columns="y")
    drift_columns = [c for c in ref.columns if c != "y"]
    presets = [DataDriftPreset(columns=drift_columns)] + ([ClassificationPreset()] if labelled else [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report(presets).run(_dataset(cur, labelled), _dataset(ref, labelled))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html, data = out / "drift_report.html", out / "drift_report.json"
    snapshot.save_html(str(html))
    data.write_text(snapshot.json())
    return html, data
