"""Drift statistics against a stored reference profile: PSI + chi-square per column, the null of the
reference period's own window-to-window PSI on autocorrelated rows, scores, performance, the verdict, the
retrain cooldown, the event payload and the Evidently report."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from driftline.config import DriftConfig
from driftline.drift import (
    PSI_EPSILON,
    ColumnProfile,
    DriftSummary,
    ReferenceProfile,
    build_reference,
    column_drift,
    decide_drift,
    drift_method,
    event_payload,
    evidently_agreement,
    evidently_report,
    evidently_thresholds,
    evidently_verdicts,
    measure_drift,
    null_threshold,
    performance_drift,
    prediction_drift,
    psi_and_pvalue,
    retrain_allowed,
    window_length,
)
from driftline.features import LEVEL_COLUMN

DRIFT = DriftConfig()
N_ROWS = 10_000
N_COLUMNS = 10


def numeric_frame(rng: np.random.Generator, rows: int = N_ROWS, columns: int = N_COLUMNS) -> pd.DataFrame:
    return pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(columns)})


def drifted(result: pd.DataFrame) -> set[str]:
    return set(result.loc[result["drifted"], "feature"])


def row(result: pd.DataFrame, feature: str) -> dict:
    return result.set_index("feature").loc[feature].to_dict()


# --- psi_and_pvalue ----------------------------------------------------------------------------------------------


def test_identical_counts_have_zero_psi_and_p_value_one():
    counts = np.array([120, 80, 300, 55, 445])
    psi, p_value = psi_and_pvalue(counts, counts)
    assert psi == pytest.approx(0.0, abs=1e-12)
    assert p_value == pytest.approx(1.0)


def test_proportional_counts_have_zero_psi():
    psi, p_value = psi_and_pvalue(np.array([10, 20, 30]), np.array([100, 200, 300]))
    assert psi == pytest.approx(0.0, abs=1e-12)
    assert p_value == pytest.approx(1.0)


def test_psi_and_p_value_by_hand():
    # Shares 0.5/0.5 -> 0.25/0.75:
    #   PSI = (0.25 - 0.5) ln(0.25/0.5) + (0.75 - 0.5) ln(0.75/0.5) = 0.25 ln 2 + 0.25 ln 1.5
    # Chi-square on [[50, 50], [25, 75]]: expected 37.5 / 62.5 in both rows,
    #   statistic = 2 (12.5^2/37.5 + 12.5^2/62.5) = 40/3, one degree of freedom -> sf = erfc(sqrt(x/2)).
    psi, p_value = psi_and_pvalue(np.array([50, 50]), np.array([25, 75]))
    assert psi == pytest.approx(0.25 * math.log(2) + 0.25 * math.log(1.5))
    assert p_value == pytest.approx(math.erfc(math.sqrt(40 / 3 / 2)))


def test_psi_floors_empty_shares_at_epsilon():
    # The current batch fills a bin the reference never saw: share 0 is floored at PSI_EPSILON.
    psi, _ = psi_and_pvalue(np.array([100, 0]), np.array([50, 50]))
    expected = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - PSI_EPSILON) * math.log(0.5 / PSI_EPSILON)
    assert psi == pytest.approx(expected)


def test_vectors_of_different_length_are_padded_with_zeros():
    assert psi_and_pvalue(np.array([40, 60]), np.array([30, 60, 10])) == pytest.approx(
        psi_and_pvalue(np.array([40, 60, 0]), np.array([30, 60, 10]))
    )
    assert psi_and_pvalue(np.array([30, 60, 10]), np.array([40, 60])) == pytest.approx(
        psi_and_pvalue(np.array([30, 60, 10]), np.array([40, 60, 0]))
    )


def test_empty_side_gives_nan():
    psi, p_value = psi_and_pvalue(np.array([0, 0]), np.array([3, 4]))
    assert math.isnan(psi) and math.isnan(p_value)


# --- build_reference / column_drift on synthetic iid data --------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_shift_and_variance_change_are_flagged(seed):
    rng = np.random.default_rng(seed)
    reference = numeric_frame(rng)
    current = numeric_frame(rng)
    current["x0"] = current["x0"] + 0.2  # 0.2 sigma mean shift
    current["x1"] = current["x1"] * math.sqrt(1.5)  # variance x 1.5
    result = column_drift(build_reference(reference, None, {}), current, DRIFT)

    assert {"x0", "x1"} <= drifted(result)
    assert result["feature"].iloc[:2].tolist() in (["x0", "x1"], ["x1", "x0"])  # largest PSI first
    assert result["psi"].is_monotonic_decreasing
    assert len(result) == N_COLUMNS


def test_unshifted_columns_rarely_raise_false_alarms():
    false_alarms, checked = 0, 0
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        result = column_drift(build_reference(numeric_frame(rng), None, {}), numeric_frame(rng), DRIFT)
        false_alarms += int(result["drifted"].sum())
        checked += len(result)
        # Same distribution: PSI is sampling noise (~ bins/n), far below the warning level.
        assert (result["psi"] < DRIFT.psi_warn).all()
        assert (result["severity"] == "ok").all()
    assert checked == 50
    # At p < 0.01 and PSI >= 0.02 the expected number of false alarms among 50 null columns is well below 1.
    assert false_alarms <= 2


def test_numeric_profile_has_quantile_bins():
    rng = np.random.default_rng(5)
    profile = build_reference(numeric_frame(rng, rows=1000, columns=1), None, {}, n_bins=10)
    column = profile.columns["x0"]
    assert column.kind == "numeric"
    # 9 inner deciles plus the reference's min and (just above) max: values beyond them get their own bins.
    assert len(column.edges) == 11 and len(column.counts) == 12
    assert sum(column.counts) == 1000
    assert column.counts[0] == column.counts[-1] == 0
    assert all(95 <= c <= 105 for c in column.counts[1:-1])
    assert profile.rows == 1000


def categorical(rng: np.random.Generator, shares: list[float], rows: int = N_ROWS, labels: str = "abc") -> pd.Series:
    return pd.Series(rng.choice(list(labels), size=rows, p=shares))


def test_categorical_mix_change_is_flagged_and_unchanged_mix_is_not():
    rng = np.random.default_rng(7)
    reference = pd.DataFrame({"moved": categorical(rng, [0.5, 0.3, 0.2]), "stable": categorical(rng, [0.5, 0.3, 0.2])})
    current = pd.DataFrame({"moved": categorical(rng, [0.3, 0.3, 0.4]), "stable": categorical(rng, [0.5, 0.3, 0.2])})
    profile = build_reference(reference, None, {})
    assert profile.columns["moved"].kind == "categorical"
    assert sorted(profile.columns["moved"].categories) == ["a", "b", "c"]

    result = column_drift(profile, current, DRIFT)
    assert drifted(result) == {"moved"}
    # (0.3-0.5) ln(0.3/0.5) + (0.4-0.2) ln(0.4/0.2) ~ 0.24 for the population; the sample is close.
    assert row(result, "moved")["psi"] == pytest.approx(0.2 * math.log(5 / 3) + 0.2 * math.log(2), abs=0.03)
    assert row(result, "stable")["severity"] == "ok"


def test_unseen_category_counts_as_drift():
    rng = np.random.default_rng(8)
    reference = pd.DataFrame({"venue": categorical(rng, [0.5, 0.3, 0.2])})
    current = pd.DataFrame({"venue": categorical(rng, [0.5, 0.25, 0.2, 0.05], labels="abcz")})
    result = column_drift(build_reference(reference, None, {}), current, DRIFT)
    assert drifted(result) == {"venue"}
    assert row(result, "venue")["severity"] == "alert"  # 5 % in a bin the reference floored at 1e-4


def test_unchanged_boolean_and_integer_categories_do_not_drift():
    rng = np.random.default_rng(9)
    reference = pd.DataFrame(
        {"flag": rng.random(N_ROWS) < 0.3, "sector": pd.Series(rng.integers(0, 4, N_ROWS)).astype(str)}
    )
    current = pd.DataFrame(
        {"flag": rng.random(N_ROWS) < 0.3, "sector": pd.Series(rng.integers(0, 4, N_ROWS)).astype(str)}
    )
    profile = build_reference(reference, None, {})
    assert profile.columns["flag"].kind == "categorical"
    assert drifted(column_drift(profile, current, DRIFT)) == set()


def test_column_missing_from_current_is_drifted_with_severity_missing():
    rng = np.random.default_rng(10)
    reference = numeric_frame(rng, rows=2000, columns=3)
    current = numeric_frame(rng, rows=2000, columns=3).drop(columns="x2")
    result = column_drift(build_reference(reference, None, {}), current, DRIFT)
    assert row(result, "x2") == {
        "psi": math.inf,
        "p_value": 0.0,
        "threshold": None,
        "severity": "missing",
        "drifted": True,
    }
    assert result["feature"].iloc[0] == "x2"
    assert drifted(result) == {"x2"}


def test_extra_columns_in_current_are_ignored():
    rng = np.random.default_rng(11)
    reference = numeric_frame(rng, rows=2000, columns=2)
    current = numeric_frame(rng, rows=2000, columns=2).assign(extra=1.0)
    assert set(column_drift(build_reference(reference, None, {}), current, DRIFT)["feature"]) == {"x0", "x1"}


def test_nans_do_not_crash_and_are_counted_as_missing():
    rng = np.random.default_rng(12)
    reference = numeric_frame(rng, rows=3000, columns=2)
    reference.loc[reference.sample(frac=0.1, random_state=0).index, "x0"] = np.nan
    reference["cat"] = categorical(rng, [0.5, 0.3, 0.2], rows=3000).where(rng.random(3000) > 0.05)
    current = numeric_frame(rng, rows=3000, columns=2)
    current.loc[current.sample(frac=0.2, random_state=1).index, "x1"] = np.nan
    current["cat"] = categorical(rng, [0.5, 0.3, 0.2], rows=3000).where(rng.random(3000) > 0.05)

    profile = build_reference(reference, None, {})
    assert profile.columns["x0"].missing == 300
    assert sum(profile.columns["x0"].counts) == 2700
    assert profile.columns["cat"].missing > 0 and "nan" not in profile.columns["cat"].categories

    result = column_drift(profile, current, DRIFT)
    assert len(result) == 3
    assert result["psi"].notna().all()
    # The missing share is part of the distribution: x0 went from 10% to 0% missing, x1 from 0% to 20%;
    # the categorical column kept its 5%.
    assert drifted(result) == {"x0", "x1"}


def test_a_jump_in_missing_share_alone_is_drift():
    rng = np.random.default_rng(13)
    reference = numeric_frame(rng, rows=5000, columns=1)
    current = numeric_frame(rng, rows=5000, columns=1)
    current.loc[current.sample(frac=0.5, random_state=2).index, "x0"] = np.nan
    assert drifted(column_drift(build_reference(reference, None, {}), current, DRIFT)) == {"x0"}


def test_values_beyond_a_constant_reference_are_drift_in_both_directions():
    reference = pd.DataFrame({"x0": np.full(2000, 3.0)})
    profile = build_reference(reference, None, {})
    for value in (-2.0, 8.0):
        assert drifted(column_drift(profile, pd.DataFrame({"x0": np.full(2000, value)}), DRIFT)) == {"x0"}


def test_column_entirely_nan_in_current_is_drifted():
    """A feature that arrives as all-NaN (a broken upstream feed) must not pass silently as 'ok'.

    An absent column is reported drifted with severity 'missing'; an all-NaN one should not be
    treated more leniently.
    """
    rng = np.random.default_rng(13)
    reference = numeric_frame(rng, rows=2000, columns=3)
    current = numeric_frame(rng, rows=2000, columns=3).assign(x1=np.nan)
    result = column_drift(build_reference(reference, None, {}), current, DRIFT)
    assert "x1" in drifted(result), row(result, "x1")


def test_profile_without_columns_gives_an_empty_result():
    """decide_drift handles zero columns (share 0.0); column_drift should hand it an empty table, not raise."""
    profile = ReferenceProfile(rows=10, columns={})
    result = column_drift(profile, pd.DataFrame({"a": [1.0, 2.0]}), DRIFT)
    assert len(result) == 0
    summary = decide_drift(result, {"available": False}, {"available": False}, 200, DRIFT)
    assert summary.drift_share == 0.0 and not summary.drift_detected


# --- calendar features --------------------------------------------------------------------------------------------


def test_calendar_features_are_left_out_of_the_reference():
    rng = np.random.default_rng(14)
    frame = numeric_frame(rng, rows=500, columns=2).assign(
        day_of_week_sin=rng.normal(size=500),
        day_of_week_cos=rng.normal(size=500),
        month_sin=rng.normal(size=500),
        month_cos=rng.normal(size=500),
        monthly_return=rng.normal(size=500),  # not a calendar prefix ("month_" needs the underscore)
        **{LEVEL_COLUMN: rng.uniform(0.4, 0.6, size=500)},  # the series level: a share of labels, no model input
    )
    profile = build_reference(frame, None, {})
    assert set(profile.columns) == {"x0", "x1", "monthly_return"}
    # ... so a new month shifting the calendar encodings, or a moved share of positives, does not show up as drift.
    current = frame.assign(
        month_sin=frame["month_sin"] + 5, day_of_week_cos=frame["day_of_week_cos"] * 3, **{LEVEL_COLUMN: 0.9}
    )
    assert drifted(column_drift(profile, current, DRIFT)) == set()


# --- ReferenceProfile round trip ---------------------------------------------------------------------------------


def test_profile_json_round_trip_gives_identical_drift_results():
    rng = np.random.default_rng(15)
    reference = numeric_frame(rng, rows=3000, columns=4).assign(cat=categorical(rng, [0.5, 0.3, 0.2], rows=3000))
    reference.loc[:99, "x3"] = np.nan
    current = numeric_frame(rng, rows=3000, columns=4).assign(cat=categorical(rng, [0.3, 0.3, 0.4], rows=3000))
    current["x0"] += 0.3
    scores = rng.beta(2, 5, size=3000)
    profile = build_reference(reference, scores, {"brier": 0.2, "ece": 0.03})

    restored = ReferenceProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert restored == profile
    pd.testing.assert_frame_equal(column_drift(restored, current, DRIFT), column_drift(profile, current, DRIFT))
    new_scores = rng.beta(2, 4, size=3000)
    assert prediction_drift(restored, new_scores, DRIFT) == prediction_drift(profile, new_scores, DRIFT)


def test_profile_without_scores_round_trips():
    profile = ReferenceProfile(rows=3, columns={"a": ColumnProfile("numeric", [1, 2], edges=[0.5])})
    restored = ReferenceProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert restored == profile and restored.scores is None and restored.performance == {}


# --- autocorrelated rows: the null of the reference period ------------------------------------------------------

PANEL_SYMBOLS = 3
AR_PHI = (0.99, 0.97, 0.9, 0.5)  # one column per persistence, from random-walk-like to nearly independent
REFERENCE_TIMES = 1500
WINDOW = 63


def ar_panel(seed: int, times: int, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A panel of AR(1) features (unit stationary sd, ``PANEL_SYMBOLS`` symbols per timestamp, rows in time
    order), a score that follows them, and the rows' timestamps; ``shift`` moves every level by that many sd."""
    rng = np.random.default_rng(seed)
    columns = {}
    for i, phi in enumerate(AR_PHI):
        shocks = rng.normal(scale=math.sqrt(1 - phi**2), size=(times, PANEL_SYMBOLS))
        path = np.empty_like(shocks)
        path[0] = rng.normal(size=PANEL_SYMBOLS)
        for t in range(1, times):
            path[t] = phi * path[t - 1] + shocks[t]
        columns[f"ar{i}"] = path.ravel() + shift
    X = pd.DataFrame(columns)
    scores = 1 / (1 + np.exp(-(X["ar0"] + X["ar1"]).to_numpy() / 2))
    stamps = np.repeat(pd.bdate_range("2000-01-03", periods=times).to_numpy(), PANEL_SYMBOLS)
    return X, scores, stamps


@pytest.fixture(scope="module")
def ar_reference() -> ReferenceProfile:
    X, scores, stamps = ar_panel(30, REFERENCE_TIMES)
    return build_reference(X, scores, {}, times=stamps)


def calm_window(seed: int, shift: float = 0.0) -> dict:
    """A later stretch of the same processes (burn-in dropped): no change, or every level moved."""
    X, scores, stamps = ar_panel(seed, 300 + WINDOW, shift)
    keep = slice(300 * PANEL_SYMBOLS, None)
    return {"X": X.iloc[keep].reset_index(drop=True), "scores": scores[keep], "times": stamps[keep]}


def test_unchanged_autocorrelated_window_is_no_drift_under_the_null_but_the_chi_square_rule_flags_it(ar_reference):
    chi2 = DRIFT.model_copy(update={"method": "chi2"})
    for seed in (31, 32, 33):
        window = calm_window(seed)
        new = measure_drift(ar_reference, window["X"], window["scores"], DRIFT, times=window["times"])
        old = measure_drift(ar_reference, window["X"], window["scores"], chi2, times=window["times"])
        assert new.method == "null" and new.window == WINDOW
        assert new.drift_detected is False, new.reasons
        # Neighbouring rows are not independent: the row-count chi-square calls the persistent columns drifted.
        assert old.method == "chi2" and old.drift_detected is True
        assert {"ar0", "ar1"} <= set(old.drifted_features)


def test_a_level_shift_in_an_autocorrelated_window_is_drift(ar_reference):
    window = calm_window(34, shift=3.0)
    summary = measure_drift(ar_reference, window["X"], window["scores"], DRIFT, times=window["times"])
    assert summary.drift_detected is True and summary.method == "null"
    assert set(summary.drifted_features) == {"ar0", "ar1", "ar2", "ar3"}
    assert summary.prediction_drift["drifted"] is True
    for column in summary.columns:
        assert column["psi"] > column["threshold"] and column["p_value"] <= 1 / 50


def test_null_holds_quantiles_per_window_length_that_fit_the_reference(ar_reference):
    null = ar_reference.null
    assert null is not None and null.timestamps == REFERENCE_TIMES and null.rows_per_timestamp == PANEL_SYMBOLS
    assert null.window_lengths == list(DRIFT.null_windows)  # 252 x 3 <= 1500
    assert null.windows[0] == len(range(0, REFERENCE_TIMES - 21 + 1, 21 // 4))
    for curves in [*null.columns.values(), null.scores, null.feature_index]:
        assert len(curves) == len(null.window_lengths)
        for curve in curves:
            assert len(curve) == len(null.levels) and curve == sorted(curve) and curve[0] > 0
    # A persistent column moves more between windows than a nearly independent one.
    assert null.columns["ar0"][1][-2] > 3 * null.columns["ar3"][1][-2]


def test_null_bins_rows_exactly_as_the_monitor_counts_them():
    """The null's per-row bins must add up to the count vector column_drift compares, or its PSI would
    measure something else (numeric with NaN and values beyond the range, categorical with unseen ones)."""
    from driftline.drift import _bin_index, _current_counts

    rng = np.random.default_rng(39)
    reference = pd.DataFrame({"x": rng.normal(size=500), "c": categorical(rng, [0.5, 0.3, 0.2], rows=500)})
    current = pd.DataFrame({"x": rng.normal(1, 2, size=300), "c": categorical(rng, [0.2, 0.2, 0.6], rows=300)})
    current.loc[::9, "x"] = np.nan
    current.loc[::11, "c"] = None
    current.loc[::13, "c"] = "never-seen"
    profile = build_reference(reference, None, {})
    edges = profile.columns["x"].edges
    current.loc[1 : len(edges), "x"] = edges  # values exactly on the edges: which side they fall matters
    for name in ("x", "c"):
        column = profile.columns[name]
        counts, missing = _current_counts(column, current[name])  # numeric: bins; categorical: + unseen bin
        by_row = np.bincount(_bin_index(column, current[name]), minlength=len(counts) + 1)
        assert by_row.tolist() == [*counts.tolist(), missing], name


def test_null_is_each_windows_psi_against_the_rest_of_the_reference():
    """The null's quantiles are those of the PSI of every window (every quarter length, in distinct
    timestamps) against the reference's other rows, computed here row by row on a panel with uneven rows
    per timestamp, NaN and a categorical column."""
    from driftline.drift import _bin_index, _psi_rows

    rng = np.random.default_rng(5)
    times = np.sort(rng.choice(pd.date_range("2021-01-01", periods=400, freq="h").to_numpy(), size=900))
    frame = pd.DataFrame({"x": rng.normal(size=900).cumsum(), "c": categorical(rng, [0.6, 0.3, 0.1], rows=900)})
    frame.loc[::17, "x"] = np.nan
    profile = build_reference(frame, None, {}, times=times, null_windows=(10, 40))
    codes, uniques = pd.factorize(pd.Series(times), sort=True)
    for name in ("x", "c"):
        column = profile.columns[name]
        index = _bin_index(column, frame[name])
        bins = (len(column.categories) if column.kind == "categorical" else len(column.edges)) + 2
        for i, length in enumerate(profile.null.window_lengths):
            psi = []
            for start in range(0, len(uniques) - length + 1, max(1, length // 4)):
                inside = (codes >= start) & (codes < start + length)
                window = np.bincount(index[inside], minlength=bins)[None, :].astype(float)
                rest = np.bincount(index[~inside], minlength=bins)[None, :].astype(float)
                psi.append(_psi_rows(rest, window)[0])
            finite = np.asarray(psi)[np.isfinite(psi)]
            expected = np.quantile(finite, profile.null.levels).round(6)
            assert profile.null.columns[name][i] == pytest.approx(expected.tolist(), abs=1e-6), (name, length)


def test_null_threshold_interpolates_in_log_window_length_and_holds_outside(ar_reference):
    null, curves = ar_reference.null, ar_reference.null.columns["ar2"]
    at = {n: null_threshold(curves, null, n, DRIFT)[0] for n in (5, 21, 40, 63, 252, 5000)}
    q99 = [float(np.interp(DRIFT.null_quantile, null.levels, c)) for c in curves]
    assert at[21] == pytest.approx(max(q99[0], DRIFT.min_psi)) and at[63] == pytest.approx(max(q99[1], DRIFT.min_psi))
    assert at[5] == at[21] and at[5000] == at[252]
    assert min(at[21], at[63]) <= at[40] <= max(at[21], at[63])
    assert null_threshold(curves, null, 63, DRIFT.model_copy(update={"null_margin": 2.0}))[0] == pytest.approx(
        2 * at[63]
    )


def test_window_length_counts_timestamps_or_estimates_them_from_rows(ar_reference):
    stamps = np.repeat(np.arange(10), 3)
    assert window_length(stamps, len(stamps), ar_reference) == 10
    assert window_length(None, 90, ar_reference) == 30  # 3 rows per timestamp in the reference


def test_profile_with_null_round_trips_through_json(ar_reference):
    restored = ReferenceProfile.from_dict(json.loads(json.dumps(ar_reference.to_dict(), allow_nan=False)))
    assert restored == ar_reference
    window = calm_window(35, shift=0.5)
    first = measure_drift(ar_reference, window["X"], window["scores"], DRIFT, times=window["times"])
    again = measure_drift(restored, window["X"], window["scores"], DRIFT, times=window["times"])
    assert again.to_dict() == first.to_dict()


def test_old_profile_without_null_falls_back_to_the_chi_square_rule_and_says_why(ar_reference):
    stored = ar_reference.to_dict()
    del stored["null"], stored["null_missing_reason"]  # as profiles were stored before the null existed
    old = ReferenceProfile.from_dict(json.loads(json.dumps(stored)))
    assert old.null is None
    method, why = drift_method(old, DRIFT)
    assert method == "chi2" and "fell back" in why and "before" in why
    window = calm_window(36)
    summary = measure_drift(old, window["X"], window["scores"], DRIFT, times=window["times"])
    assert summary.method == "chi2" and any("fell back" in r for r in summary.reasons)
    assert all(c["threshold"] is None for c in summary.columns)
    assert summary.prediction_drift["method"] == "chi2" and summary.feature_index == {"available": False}


def test_no_null_without_timestamps_or_with_a_short_reference():
    X, scores, stamps = ar_panel(37, 40)
    assert build_reference(X, scores, {}).null_missing_reason == "no timestamps given with the reference rows"
    # Shorter than the default windows (21-252) ask: windows the reference holds 20 and 10 of.
    short = build_reference(X, scores, {}, times=stamps)
    assert short.null is not None and short.null.window_lengths == [2, 4] and short.null.timestamps == 40
    rows = np.isin(stamps, np.unique(stamps)[:19])
    shortest = build_reference(X[rows], scores[rows], {}, times=stamps[rows])
    assert shortest.null is None and "19 timestamps is too short" in shortest.null_missing_reason
    assert build_reference(X, scores, {}, times=stamps, null_windows=(5, 10)).null.window_lengths == [5, 10]
    with pytest.raises(ValueError, match="times has 3 values for 120 feature rows"):
        build_reference(X, scores, {}, times=stamps[:3])


def test_evidently_thresholds_and_agreement_from_a_report(ar_reference):
    window = calm_window(38, shift=3.0)
    summary = measure_drift(ar_reference, window["X"], window["scores"], DRIFT, times=window["times"])
    thresholds = evidently_thresholds(summary)
    assert set(thresholds) == {"ar0", "ar1", "ar2", "ar3", "probability"}
    assert thresholds["probability"] == summary.prediction_drift["threshold"]

    def value_drift(column: str, score: float) -> dict:
        return {
            "config": {
                "type": "evidently:metric_v2:ValueDrift",
                "column": column,
                "method": "psi",
                "threshold": thresholds[column],
            },
            "value": score,
        }

    # Evidently agrees on ar0-ar2 and the scores, not on ar3 (its PSI below the threshold).
    report = {"metrics": [value_drift(c, thresholds[c] * (0.5 if c == "ar3" else 2.0)) for c in thresholds]}
    agreement = evidently_agreement(summary, report)
    assert agreement["columns"] == 5 and agreement["agree"] == 4 and agreement["share"] == pytest.approx(0.8)
    assert list(agreement["disagree"]) == ["ar3"] and agreement["disagree"]["ar3"]["ours"] is True
    chi2 = measure_drift(ar_reference, window["X"], window["scores"], DRIFT.model_copy(update={"method": "chi2"}))
    assert evidently_thresholds(chi2) == {}


# --- prediction drift ---------------------------------------------------------------------------------------------


def score_profile(rng: np.random.Generator) -> ReferenceProfile:
    return build_reference(pd.DataFrame({"a": rng.normal(size=N_ROWS)}), rng.beta(2, 5, size=N_ROWS), {})


def test_same_score_distribution_is_not_prediction_drift():
    rng = np.random.default_rng(16)
    result = prediction_drift(score_profile(rng), rng.beta(2, 5, size=N_ROWS), DRIFT)
    assert result["available"] is True
    assert result["drifted"] is False
    assert result["psi"] < 0.02


def test_shifted_scores_are_prediction_drift():
    rng = np.random.default_rng(17)
    result = prediction_drift(score_profile(rng), rng.beta(5, 2, size=N_ROWS), DRIFT)
    assert result["available"] is True and result["drifted"] is True
    assert result["psi"] >= DRIFT.prediction_psi and result["p_value"] < 1e-6


def test_prediction_drift_unavailable_without_score_profile_or_scores():
    rng = np.random.default_rng(18)
    no_scores = build_reference(pd.DataFrame({"a": rng.normal(size=100)}), None, {})
    assert prediction_drift(no_scores, rng.random(100), DRIFT) == {"available": False}
    assert prediction_drift(score_profile(rng), None, DRIFT) == {"available": False}
    assert prediction_drift(score_profile(rng), np.array([]), DRIFT) == {"available": False}


# --- performance drift --------------------------------------------------------------------------------------------


def performance_profile(rng: np.random.Generator) -> tuple[ReferenceProfile, float]:
    p = rng.uniform(0.05, 0.95, size=N_ROWS)
    y = rng.random(N_ROWS) < p
    brier = float(np.mean((p - y) ** 2))
    return build_reference(pd.DataFrame({"a": rng.normal(size=100)}), p, {"brier": brier, "ece": 0.02}), brier


def test_labels_consistent_with_scores_are_not_performance_drift():
    rng = np.random.default_rng(19)
    profile, reference_brier = performance_profile(rng)
    p = rng.uniform(0.05, 0.95, size=5000)
    y = (rng.random(5000) < p).astype(int)
    result = performance_drift(profile, y, p, DRIFT)
    assert result["available"] is True and result["drifted"] is False
    assert result["labelled_rows"] == 5000
    assert result["reference_brier"] == reference_brier
    assert result["brier"] == pytest.approx(reference_brier, abs=DRIFT.brier_tolerance)
    assert result["ece"] < DRIFT.ece_cap


@pytest.mark.parametrize("garble", ["inverted", "random"])
def test_inverted_or_garbled_labels_are_performance_drift(garble):
    rng = np.random.default_rng(20)
    profile, reference_brier = performance_profile(rng)
    p = rng.uniform(0.05, 0.95, size=5000)
    y = (rng.random(5000) < p).astype(int)
    y = 1 - y if garble == "inverted" else rng.integers(0, 2, size=5000)
    result = performance_drift(profile, y, p, DRIFT)
    assert result["available"] is True and result["drifted"] is True
    assert result["brier"] > reference_brier + DRIFT.brier_tolerance


def test_performance_drift_unavailable_with_too_few_labels_or_no_reference_brier():
    rng = np.random.default_rng(21)
    profile, _ = performance_profile(rng)
    n = DRIFT.min_labelled_rows - 1
    few = performance_drift(profile, np.ones(n, dtype=int), np.full(n, 0.5), DRIFT)
    assert few == {"available": False, "labelled_rows": n}
    assert performance_drift(profile, None, None, DRIFT) == {"available": False, "labelled_rows": 0}
    no_brier = build_reference(pd.DataFrame({"a": [1.0, 2.0]}), None, {})
    assert performance_drift(no_brier, np.ones(500, dtype=int), np.full(500, 0.5), DRIFT)["available"] is False


# --- decide_drift ------------------------------------------------------------------------------------------------


def columns_table(n_drifted: int, total: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "feature": [f"f{i}" for i in range(total)],
            "psi": [0.5 if i < n_drifted else 0.001 for i in range(total)],
            "p_value": [1e-9 if i < n_drifted else 0.8 for i in range(total)],
            "severity": ["alert" if i < n_drifted else "ok" for i in range(total)],
            "drifted": [i < n_drifted for i in range(total)],
        }
    )


NO_PRED = {"available": True, "psi": 0.01, "p_value": 0.5, "drifted": False}
NO_PERF = {"available": True, "labelled_rows": 500, "brier": 0.2, "reference_brier": 0.2, "ece": 0.02, "drifted": False}


def test_drift_share_threshold_boundary():
    config = DriftConfig(drift_share=0.3)
    at = decide_drift(columns_table(3), NO_PRED, NO_PERF, 1000, config)
    below = decide_drift(columns_table(2), NO_PRED, NO_PERF, 1000, config)
    assert at.drift_share == pytest.approx(0.3) and at.drift_detected is True
    assert below.drift_share == pytest.approx(0.2) and below.drift_detected is False
    assert at.drifted_features == ["f0", "f1", "f2"]
    assert at.reasons[0] == "3/10 features drifted (share 0.30, threshold 0.3): drift"  # what the verdict stands on
    assert below.reasons[0] == "2/10 features drifted (share 0.20, threshold 0.3)"
    assert not any(r.endswith(": drift") for r in at.reasons[1:])


def test_prediction_drift_alone_triggers_detection():
    pred = {"available": True, "psi": 0.4, "p_value": 1e-12, "drifted": True}
    summary = decide_drift(columns_table(0), pred, {"available": False}, 1000, DRIFT)
    assert summary.drift_detected is True and summary.drift_share == 0.0
    assert [r for r in summary.reasons if r.endswith(": drift")] == ["prediction PSI 0.4000 (threshold 0.1000): drift"]


def test_performance_drift_alone_triggers_detection():
    perf = {**NO_PERF, "brier": 0.3, "drifted": True}
    summary = decide_drift(columns_table(0), {"available": False}, perf, 1000, DRIFT)
    assert summary.drift_detected is True
    (reason,) = [r for r in summary.reasons if r.endswith(": drift")]
    assert reason.startswith("Brier 0.3000 vs 0.2000 at training (+0.1000, tolerance ")


def test_nothing_drifted_is_no_detection():
    summary = decide_drift(columns_table(0), NO_PRED, NO_PERF, 1000, DRIFT)
    assert summary.drift_detected is False and summary.drifted_features == []


def test_too_few_rows_gives_no_verdict():
    pred = {"available": True, "psi": 0.4, "p_value": 1e-12, "drifted": True}
    summary = decide_drift(columns_table(10), pred, {"available": False}, DRIFT.min_rows - 1, DRIFT)
    assert summary.drift_detected is False
    assert "no verdict" in summary.reasons[-1] and f"only {DRIFT.min_rows - 1} rows" in summary.reasons[-1]
    assert not any(r.endswith(": drift") for r in summary.reasons)  # nothing judged, nothing marked
    assert decide_drift(columns_table(10), pred, {"available": False}, DRIFT.min_rows, DRIFT).drift_detected is True


def real_summary() -> DriftSummary:
    rng = np.random.default_rng(22)
    reference = numeric_frame(rng, rows=3000, columns=5)
    scores = rng.beta(2, 5, size=3000)
    profile = build_reference(reference, scores, {"brier": 0.2})
    current = numeric_frame(rng, rows=3000, columns=5)
    current["x0"] += 1.0
    current["x1"] *= 3
    p = rng.beta(2, 5, size=3000)
    return decide_drift(
        column_drift(profile, current, DRIFT),
        prediction_drift(profile, p, DRIFT),
        performance_drift(profile, (rng.random(3000) < p).astype(int), p, DRIFT),
        len(current),
        DRIFT,
    )


def test_summary_to_dict_is_plain_json():
    summary = real_summary()
    assert summary.drift_detected is True and set(summary.drifted_features) == {"x0", "x1"}
    data = summary.to_dict()
    text = json.dumps(data, allow_nan=False)  # no default=: numpy scalars would raise here
    assert json.loads(text)["drifted_features"] == summary.drifted_features
    assert {type(v) for c in data["columns"] for v in c.values()} <= {str, float, bool, type(None)}


def test_summary_with_missing_column_is_still_json_serialisable():
    rng = np.random.default_rng(23)
    reference = numeric_frame(rng, rows=500, columns=3)
    result = column_drift(build_reference(reference, None, {}), reference.drop(columns="x1"), DRIFT)
    summary = decide_drift(result, {"available": False}, {"available": False}, 500, DRIFT)
    assert json.loads(json.dumps(summary.to_dict()))["drifted_features"] == ["x1"]


def test_markdown_lists_drifted_features_only():
    summary = real_summary()
    text = summary.markdown("s3://bucket/drift_report.html")
    assert "**DETECTED**" in text
    assert "| x0 |" in text and "| x1 |" in text
    assert "| x2 |" not in text and "| x3 |" not in text
    assert "2 of 5 features drifted" in text
    assert "s3://bucket/drift_report.html" in text
    for reason in summary.reasons:
        assert f"- {reason}" in text


def test_markdown_without_drift_has_no_table():
    summary = decide_drift(columns_table(0), NO_PRED, NO_PERF, 1000, DRIFT)
    text = summary.markdown()
    assert "### Drift: none" in text and "| feature |" not in text and "Evidently" not in text


# --- retrain cooldown ---------------------------------------------------------------------------------------------

NOW = pd.Timestamp("2024-03-01 12:00:00")


def test_retrain_allowed_without_previous_retrain():
    allowed, why = retrain_allowed(None, NOW, 6.0)
    assert allowed is True and "no earlier retrain" in why


def test_retrain_refused_inside_cooldown():
    allowed, why = retrain_allowed("2024-03-01T10:00:00", NOW, 6.0)
    assert allowed is False
    assert "2.00 h" in why and "cooldown is 6.0 h" in why


def test_retrain_allowed_after_cooldown():
    allowed, why = retrain_allowed("2024-03-01T05:30:00", NOW, 6.0)
    assert allowed is True and "6.50 h" in why
    assert retrain_allowed("2024-03-01T06:00:00", NOW, 6.0)[0] is True  # exactly the cooldown


def test_zero_cooldown_always_allows():
    assert retrain_allowed(NOW.isoformat(), NOW, 0.0)[0] is True
    assert retrain_allowed(None, NOW, 0.0, {"count": 3, "at": NOW.isoformat(), "error": "x"})[0] is True


def test_a_failed_retrain_holds_the_next_back_a_quarter_hour_doubling_up_to_the_cooldown():
    """Without it, a source that breaks every retrain started a whole (failing) training at every drift event;
    with the whole cooldown instead, a fixed cause waited hours."""
    from driftline.drift import retry_wait_hours

    assert [retry_wait_hours(n, 6.0) for n in range(6)] == [0.0, 0.25, 0.5, 1.0, 2.0, 4.0]
    assert retry_wait_hours(9, 6.0) == 6.0

    failed = {"count": 2, "at": "2024-03-01T11:45:00", "error": "DataError: no price column found"}
    allowed, why = retrain_allowed("2024-02-20T00:00:00", NOW, 6.0, failed)
    assert allowed is False
    assert why == (
        "the last retrain failed 0.25 h ago (2 in a row, DataError: no price column found); "
        "the next may start 0.5 h after it"
    )
    assert retrain_allowed("2024-02-20T00:00:00", NOW, 6.0, {**failed, "at": "2024-03-01T11:30:00"})[0] is True
    # The cooldown of the last retrain that finished still applies on its own.
    assert retrain_allowed("2024-03-01T10:00:00", NOW, 6.0, {**failed, "at": "2024-03-01T09:00:00"})[0] is False
    assert retrain_allowed(None, NOW, 6.0, {"count": 0})[0] is True
    assert retrain_allowed(None, NOW, 6.0, {"count": 2})[0] is True  # a damaged record holds nothing back


# --- event payload ------------------------------------------------------------------------------------------------


def test_event_payload():
    summary = decide_drift(columns_table(15, total=20), NO_PRED, NO_PERF, 1000, DRIFT)
    payload = event_payload(summary, "runs:/abc/drift/drift_report.html", "7")
    assert set(payload) == {
        "reason",
        "drift_share",
        "top_features",
        "report",
        "model_version",
        "window_start",
        "window_end",
        "data",
    }
    assert (payload["window_start"], payload["window_end"], payload["data"]) == (None, None, None)
    windowed = event_payload(
        summary, "r", "7", {"window_start": "2020-01-01T00:00:00", "window_end": "2020-02-01T00:00:00"}, "/d/c.parquet"
    )
    assert (windowed["window_start"], windowed["window_end"], windowed["data"]) == (
        "2020-01-01T00:00:00",
        "2020-02-01T00:00:00",
        "/d/c.parquet",
    )
    assert payload["reason"].startswith("drift: ") and "15/20 features drifted" in payload["reason"]
    assert payload["drift_share"] == pytest.approx(0.75)
    assert payload["top_features"] == [f"f{i}" for i in range(10)]
    assert payload["report"] == "runs:/abc/drift/drift_report.html"
    assert payload["model_version"] == "7"
    json.dumps(payload)


# --- Evidently report ---------------------------------------------------------------------------------------------


def evidently_frames(rng: np.random.Generator, rows: int = 300) -> tuple[pd.DataFrame, pd.DataFrame]:
    def frame(shift: float) -> pd.DataFrame:
        p = rng.uniform(0.1, 0.9, size=rows)
        return pd.DataFrame(
            {
                "a": rng.normal(shift, 1, size=rows),
                "b": rng.normal(size=rows),
                "c": rng.uniform(size=rows),
                "probability": p,
                "y": (rng.random(rows) < p).astype(float),
            }
        )

    return frame(0.0), frame(1.0)


def test_evidently_report_with_and_without_labels(tmp_path):
    rng = np.random.default_rng(24)
    reference, current = evidently_frames(rng)

    html, data = evidently_report(reference, current, cap=200, out_dir=tmp_path / "labelled")
    assert html.name == "drift_report.html" and data.name == "drift_report.json"
    assert html.parent == tmp_path / "labelled" and html.stat().st_size > 0
    assert isinstance(json.loads(data.read_text()), dict)

    unlabelled = current.assign(y=np.nan)
    thresholds = {"a": 0.2, "b": 5.0, "c": 5.0, "probability": 5.0}
    html, data = evidently_report(
        reference, unlabelled, cap=200, out_dir=tmp_path / "unlabelled", thresholds=thresholds
    )
    assert html.is_file() and html.stat().st_size > 0
    # With thresholds every column is judged by Evidently's PSI against ours: only the shifted `a` drifts.
    verdicts = evidently_verdicts(json.loads(data.read_text()))
    assert {c: (v["method"], v["threshold"]) for c, v in verdicts.items()} == {
        c: ("psi", t) for c, t in thresholds.items()
    }
    assert {c for c, v in verdicts.items() if v["drifted"]} == {"a"}


def test_a_sample_of_one_class_gives_a_drift_report_without_classification_quality(tmp_path, caplog):
    """A rare event (3% positives) can leave the current sample without a positive; Evidently's per-class
    quality then fails (KeyError '1'), which stopped a training run at its report."""
    rng = np.random.default_rng(7)
    reference, current = evidently_frames(rng)
    html, data = evidently_report(reference, current.assign(y=0.0), cap=200, out_dir=tmp_path / "one")
    assert html.is_file() and html.stat().st_size > 0
    metrics = [str((m.get("config") or {}).get("type", "")) for m in json.loads(data.read_text())["metrics"]]
    assert any(t.endswith(":ValueDrift") for t in metrics)
    assert not any("Accuracy" in t or "RocAuc" in t for t in metrics), metrics
    assert "its current rows hold one class" in caplog.text
    unlabelled, _ = evidently_report(reference.drop(columns="y"), current.drop(columns="y"), 200, tmp_path / "none")
    assert unlabelled.is_file()  # no label column at all: the drift part alone, as before
    _, both = evidently_report(reference, current, cap=200, out_dir=tmp_path / "both")
    assert any(
        "Accuracy" in str((m.get("config") or {}).get("type", "")) for m in json.loads(both.read_text())["metrics"]
    )


def _yearly_panel(
    seed: int, times: int, symbols: int = 100, phi: float = 0.8
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Yearly rows of many symbols (countries) whose features share a persistent common factor, as real
    panels do: rows of one year are not independent."""
    rng = np.random.default_rng(seed)
    columns = {}
    for i in range(3):
        common = np.empty(times)
        common[0] = rng.normal()
        for t in range(1, times):
            common[t] = phi * common[t - 1] + rng.normal(scale=math.sqrt(1 - phi**2))
        columns[f"f{i}"] = (0.6 * common[:, None] + 0.8 * rng.normal(size=(times, symbols))).ravel()
    X = pd.DataFrame(columns)
    stamps = np.repeat(pd.date_range("1950-01-01", periods=times, freq="YS").to_numpy(), symbols)
    return X, 1 / (1 + np.exp(-X["f0"].to_numpy())), stamps


def test_a_reference_shorter_than_the_default_windows_gets_a_null_of_its_own_not_the_chi_square_rule():
    """30 years of a 100-country panel, then 10 more of the same processes: the chi-square rule counts 1,000
    rows as independent and calls every such decade drifted; a null of 2- and 3-year windows cut from the
    reference flags few (3 of these 10; windows of 5 and 10 years, a third of the reference, flagged 7), and
    finds a shift of the levels by 1 sd every time."""
    chi2 = DRIFT.model_copy(update={"method": "chi2"})
    flagged = {"null": 0, "chi2": 0}
    for seed in range(10):
        X, scores, stamps = _yearly_panel(seed, 60)
        ref, cur = slice(2000, 5000), slice(5000, 6000)  # 20 years of burn-in dropped
        profile = build_reference(X.iloc[ref].reset_index(drop=True), scores[ref], {}, times=stamps[ref])
        assert profile.null is not None and profile.null.window_lengths == [2, 3]
        window = X.iloc[cur].reset_index(drop=True)
        flagged["null"] += measure_drift(profile, window, scores[cur], DRIFT, times=stamps[cur]).drift_detected
        flagged["chi2"] += measure_drift(profile, window, scores[cur], chi2, times=stamps[cur]).drift_detected
        shifted = measure_drift(profile, window + 1.0, scores[cur], DRIFT, times=stamps[cur])
        assert shifted.method == "null" and shifted.drift_detected, seed
    assert flagged["chi2"] == 10 and flagged["null"] <= 4, flagged  # here: 4 of 10 under the null
