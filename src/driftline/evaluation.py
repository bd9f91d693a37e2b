"""The fair comparison: champion and challenger scored on the same hold-out rows, after both cutoffs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftline.baselines import BaselineModel, known_labels
from driftline.config import DecisionSpec
from driftline.features import FeatureSet
from driftline.metrics import BinnedEce
from driftline.promotion import Decision, EvaluationSet, Scores, constant_scores, decide_promotion, keep_champion
from driftline.splits import tail_cut

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChampionModel:
    """The registered champion as the core sees it: a version, its training cutoff and a scorer."""

    version: str
    cutoff: pd.Timestamp | None
    predict: Callable[[pd.DataFrame], pd.DataFrame]  # -> columns probability, prediction


def holdout_split(features: FeatureSet, window: int, gap: int) -> tuple[FeatureSet, FeatureSet]:
    """Development rows and the evaluation window: the last ``window`` timestamps, with ``gap`` purged
    before them so no development label looks into the window.

    Raises:
        InsufficientDataError: nothing would be left to develop on.
    """
    development, evaluation = tail_cut(
        features.times, window, gap, "an evaluation window", "; lower evaluation.window or add data"
    )
    return features.subset(development), features.subset(evaluation)


def rows_after_cutoff(times: np.ndarray, cutoff: pd.Timestamp | None, gap: int) -> np.ndarray:
    """Positions of rows at least ``gap`` timestamps after ``cutoff`` (all rows when there is none)."""
    if cutoff is None:
        return np.arange(len(times))
    unique_times, position = np.unique(times, return_inverse=True)
    first_after = int(np.searchsorted(unique_times, np.datetime64(cutoff), side="right"))
    return np.flatnonzero(position >= first_after + gap)


def evaluate_challenger(
    holdout: FeatureSet,
    challenger: Callable[[pd.DataFrame], pd.DataFrame],
    champion: ChampionModel | None,
    base_rate: float,
    spec: DecisionSpec,
    baseline: BaselineModel | None = None,
    walk_forward_ece: BinnedEce | None = None,
) -> Decision:
    """Score both models on the same rows and decide (``walk_forward_ece``: see ``decide_promotion``).

    Rows the champion may have trained on (up to its cutoff plus ``spec.gap``) are left out of the comparison;
    a champion that cannot score this run's features keeps its place, with the reason. Without a champion
    the challenger faces ``baseline`` (fitted on the development rows; the best walk-forward baseline)
    on all hold-out rows, else the constant ``base_rate``.
    """
    rows = np.arange(len(holdout.y))
    if champion is not None:
        rows = rows_after_cutoff(holdout.times, champion.cutoff, spec.gap)
        if len(rows) == 0:
            # Data older than the champion's: no row is new to both, so there is nothing fair to compare on.
            return keep_champion(
                f"no hold-out row is after champion v{champion.version}'s training cutoff "
                f"({champion.cutoff}) plus the gap: this data ends before what the champion was trained on"
            )
    X = holdout.X.iloc[rows]
    evaluation = EvaluationSet(
        y=holdout.y.to_numpy()[rows],
        times=holdout.times[rows],
        symbols=holdout.meta["symbol"].to_numpy()[rows],
        next_return=None if holdout.returns is None else holdout.returns[rows],
    )
    ours = challenger(X)
    challenger_scores = Scores("challenger", ours["probability"].to_numpy(), ours["prediction"].to_numpy())
    champion_scores = None
    if champion is not None:
        try:
            theirs = champion.predict(X)
        except Exception as exc:  # noqa: BLE001 - any failure to score means "not comparable", never a crash
            return keep_champion(
                f"champion version {champion.version} cannot score this run's rows: {type(exc).__name__}: {exc}"
            )
        champion_scores = Scores(
            f"champion v{champion.version}", theirs["probability"].to_numpy(), theirs["prediction"].to_numpy()
        )
    if champion_scores is not None:
        against = champion_scores
    elif baseline is not None:
        known = known_labels(holdout)
        p = baseline.predict_proba(X, None if known is None else known[rows])
        against = Scores(f"best baseline {baseline.name}", p, (p >= 0.5).astype(int))
    else:
        against = constant_scores(base_rate, len(rows))
    return decide_promotion(
        evaluation, challenger_scores, against, spec, first_model=champion is None, walk_forward_ece=walk_forward_ece
    )


class SmokeTestFailed(Exception):
    """The newly promoted champion could not score the evaluation sample."""


def scorer(model: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Adapt a fitted ``CalibratedModel`` to the pyfunc output shape (probability, prediction)."""

    def predict(X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"probability": model.predict_proba(X)[:, 1], "prediction": model.predict(X)})  # type: ignore[attr-defined]

    return predict


def check_scores(scores: pd.DataFrame, n_rows: int) -> None:
    """What a served champion must return for ``n_rows`` inputs.

    Raises:
        SmokeTestFailed: wrong shape, missing column, or a probability outside [0, 1] or not finite.
    """
    if "probability" not in getattr(scores, "columns", []):
        raise SmokeTestFailed(f"champion output has no 'probability' column: {type(scores).__name__}")
    if len(scores) != n_rows:
        raise SmokeTestFailed(f"champion returned {len(scores)} rows for {n_rows} inputs")
    probability = scores["probability"].to_numpy(dtype=float)
    if not np.isfinite(probability).all() or (probability < 0).any() or (probability > 1).any():
        raise SmokeTestFailed("champion returned probabilities outside [0, 1] or not finite")
