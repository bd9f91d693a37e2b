"""Champion/challenger decisions as plain objects: flows branch on ``Decision.promote``, never on a metric.

Both models are scored on the same evaluation rows, after both training cutoffs. The per-row loss
difference (challenger minus champion) is averaged per timestamp and resampled with a moving-block
bootstrap, so autocorrelation from overlapping horizons and cross-sectional correlation between symbols
are both kept. The challenger is promoted only when the whole confidence interval of the loss
difference is below zero AND every guardrail passes. The first model faces the best naive baseline
(``driftline.baselines``, fitted on the development rows) under the same test; without one, the
base-rate predictor (the training prevalence).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from driftline.config import DecisionSpec, MetricsConfig, PipelineConfig
from driftline.errors import ConfigError, DriftlineError
from driftline.metrics import BinnedEce, ece_bins_for, expected_calibration_error, strategy_metrics

Action = Literal["promote", "keep-champion", "reject"]
EPS = 1e-6


@dataclass(frozen=True)
class Reason:
    """One check behind a decision, with its numbers."""

    check: str
    passed: bool
    detail: str
    value: float | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        # numpy scalars would serialise as strings ("False" reads as true) or not at all.
        object.__setattr__(self, "passed", bool(self.passed))
        for name in ("value", "threshold"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, float(getattr(self, name)))

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.check}: {self.detail}"


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: list[Reason] = field(default_factory=list)
    comparison: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def promote(self) -> bool:
        return self.action == "promote"

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "promote": self.promote,
            "reasons": [asdict(r) for r in self.reasons],
            "comparison": self.comparison,
            "scores": self.scores,
        }

    def markdown(self, title: str) -> str:
        rows = "\n".join(f"| {'pass' if r.passed else '**FAIL**'} | {r.check} | {r.detail} |" for r in self.reasons)
        return f"### {title}: **{self.action}**\n\n| result | check | detail |\n|---|---|---|\n{rows}\n"


@dataclass(frozen=True)
class Scores:
    """One model's output on the evaluation rows: probability of class 1 and the action it would take."""

    name: str
    probability: np.ndarray
    action: np.ndarray


@dataclass(frozen=True)
class EvaluationSet:
    """The rows both models are scored on: labels, timestamps and (price targets) next-period returns;
    ``name`` says which rows they are in the checks' details (the training run's hold-out, or the logged
    shadow predictions of an A/B test)."""

    y: np.ndarray
    times: np.ndarray
    symbols: np.ndarray
    next_return: np.ndarray | None = None
    name: str = "hold-out"

    def __len__(self) -> int:
        return len(self.y)

    def meta(self) -> pd.DataFrame:
        frame = pd.DataFrame({"symbol": self.symbols, "timestamp": self.times})
        frame["next_return"] = self.next_return if self.next_return is not None else 0.0
        return frame


def row_losses(y: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row log loss and Brier score."""
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    y = np.asarray(y, dtype=float)
    return {"log_loss": -(y * np.log(p) + (1 - y) * np.log(1 - p)), "brier": (p - y) ** 2}


def moving_block_bootstrap(series: np.ndarray, block_length: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_boot`` block resamples of a time-ordered series.

    Blocks wrap around the end (the circular variant of Kunsch's moving-block bootstrap, Politis &
    Romano 1992), so every observation is equally likely to be drawn and the resampled means are
    centred on the sample mean.
    """
    series = np.asarray(series, dtype=float)
    n = len(series)
    length = max(1, min(block_length, n))
    n_blocks = math.ceil(n / length)
    starts = rng.integers(0, n, size=(n_boot, n_blocks))
    index = ((starts[:, :, None] + np.arange(length)) % n).reshape(n_boot, -1)[:, :n]
    means: np.ndarray = series[index].mean(axis=1)
    return means


MIN_BLOCKS = 2


def effective_block(n_times: int, block_length: int) -> int:
    """The bootstrap block used on ``n_times`` timestamps: ``block_length``, shortened so that there are at least
    ``MIN_BLOCKS`` blocks. One block as long as the series resamples only rotations of it, whose means are all
    the sample's: a zero-width interval that promotes on any sign (10 yearly timestamps with the default block
    of 10). With two blocks Student's t on 1 degree of freedom keeps the interval honest (AR(1) differences
    with no effect, phi 0.5, 10-60 timestamps: 2-10% false promotions at a one-sided 5%, 1,000 runs each)."""
    return max(1, min(block_length, n_times // MIN_BLOCKS))


def paired_difference_ci(
    loss_challenger: np.ndarray,
    loss_baseline: np.ndarray,
    times: np.ndarray,
    block_length: int,
    n_boot: int,
    level: float,
    seed: int,
) -> tuple[float, float, float]:
    """Mean loss difference (challenger - baseline) and its two-sided confidence interval.

    Rows are first averaged per timestamp, so a panel of many symbols counts each moment once. The
    interval is mean +/- t * (bootstrap standard error), with Student's t on (blocks - 1) degrees of
    freedom: with a few dozen blocks the bootstrap alone understates the spread, and percentile
    intervals then promote noise more often than the stated level (see benchmarks/promotion_power.py).
    """
    from scipy.stats import t as student_t

    diff = pd.Series(np.asarray(loss_challenger) - np.asarray(loss_baseline)).groupby(np.asarray(times)).mean()
    values = diff.sort_index().to_numpy()
    block_length = effective_block(len(values), block_length)
    means = moving_block_bootstrap(values, block_length, n_boot, np.random.default_rng(seed))
    n_blocks = max(2, math.ceil(len(values) / max(1, block_length)))
    half_width = float(student_t.ppf(0.5 + level / 2, n_blocks - 1) * means.std(ddof=1))
    mean = float(values.mean())
    return mean, mean - half_width, mean + half_width


def score_summary(
    evaluation: EvaluationSet, scores: Scores, metrics: MetricsConfig, price_target: bool
) -> dict[str, float]:
    """Loss, calibration, ranking and (price targets) strategy numbers of one model on the evaluation rows."""
    y, p = evaluation.y, scores.probability
    losses = row_losses(y, p)
    summary = {
        "log_loss": float(losses["log_loss"].mean()),
        "brier": float(losses["brier"].mean()),
        "ece": expected_calibration_error(y, p, ece_bins_for(len(y), metrics.ece_bins)),
        "auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 and np.ptp(p) > 0 else float("nan"),
    }
    if price_target and evaluation.next_return is not None:
        # Positions are the model's own actions (its tuned threshold), as a trading bot would take them.
        summary.update(strategy_metrics(scores.action.astype(float), evaluation.meta(), metrics, threshold=0.5))
    return summary


def constant_scores(base_rate: float, rows: int) -> Scores:
    """The base rate as every row's forecast: what a first model faces when no naive baseline was fitted."""
    constant = np.full(rows, base_rate)
    return Scores(f"base rate {base_rate:.3f}", constant, (constant >= 0.5).astype(int))


def decide_promotion(
    evaluation: EvaluationSet,
    challenger: Scores,
    against: Scores,
    spec: DecisionSpec,
    *,
    first_model: bool = False,
    walk_forward_ece: BinnedEce | None = None,
) -> Decision:
    """Promote the challenger only if it beats ``against`` with confidence and passes every guardrail. Returns
    every check with its numbers.

    Args:
        against: the champion's scores on the same rows; for a ``first_model``, the best naive baseline's
            (``constant_scores`` of the base rate without one). A first model that fails is rejected, a
            challenger that fails against a champion leaves it in place.
        walk_forward_ece: the challenger family's pooled walk-forward ECE, over bins of at least 100 rows
            (``WalkForwardResult.gate_ece``); checked against ``promotion.walk_forward_ece_cap`` beside the
            hold-out ECE (a few hundred hold-out rows can look calibrated by luck; thousands of out-of-sample
            walk-forward rows rarely do, and a few hundred in ten bins look miscalibrated by chance alone).
    """
    promotion, metrics, block_length, price_target = spec.promotion, spec.metrics, spec.block_length, spec.is_direction
    n_rows = len(evaluation)
    reasons = [
        Reason(
            "min-rows",
            n_rows >= promotion.min_rows,
            f"{n_rows} evaluation rows (need {promotion.min_rows})",
            n_rows,
            promotion.min_rows,
        )
    ]
    if n_rows < 2 or len(np.unique(evaluation.y)) < 2:
        reasons.append(Reason("two-classes", False, "the evaluation rows hold a single class; nothing can be compared"))
        return Decision("keep-champion" if not first_model else "reject", reasons)

    ours = score_summary(evaluation, challenger, metrics, price_target)
    theirs = score_summary(evaluation, against, metrics, price_target)
    comparison: dict[str, Any] = {"baseline": against.name, "metric": promotion.metric, "rows": n_rows}
    for metric in ("log_loss", "brier"):
        diff, low, high = paired_difference_ci(
            row_losses(evaluation.y, challenger.probability)[metric],
            row_losses(evaluation.y, against.probability)[metric],
            evaluation.times,
            block_length,
            promotion.n_bootstrap,
            promotion.level,
            promotion.seed,
        )
        if metric == promotion.metric:
            block_length = effective_block(len(np.unique(evaluation.times)), spec.block_length)
            comparison.update(diff=diff, ci_low=low, ci_high=high, level=promotion.level, block_length=block_length)
            reasons.append(
                Reason(
                    f"{metric}-better",
                    high < 0,
                    f"{metric} difference {diff:+.5f} vs {against.name}, {promotion.level:.0%} CI "
                    f"[{low:+.5f}, {high:+.5f}] (block {block_length})",
                    high,
                    0.0,
                )
            )
        else:
            comparison[f"{metric}_diff"] = diff
            comparison[f"{metric}_ci"] = [low, high]
    reasons.append(
        Reason(
            "ece-cap",
            ours["ece"] <= promotion.ece_cap,
            f"{evaluation.name} ECE {ours['ece']:.4f} over {ece_bins_for(n_rows, metrics.ece_bins)} "
            f"equal-mass bins (cap {promotion.ece_cap})",
            ours["ece"],
            promotion.ece_cap,
        )
    )
    if walk_forward_ece is not None and promotion.walk_forward_ece_cap is not None:
        reasons.append(
            Reason(
                "walk-forward-ece-cap",
                walk_forward_ece.value <= promotion.walk_forward_ece_cap,
                f"pooled walk-forward ECE {walk_forward_ece.value:.4f} over {walk_forward_ece.bins} equal-mass bins "
                f"of {walk_forward_ece.rows} rows (cap {promotion.walk_forward_ece_cap})",
                walk_forward_ece.value,
                promotion.walk_forward_ece_cap,
            )
        )
    if not math.isnan(theirs["auc"]) and math.isnan(ours["auc"]):  # the rows hold both classes: ours ranks none
        reasons.append(
            Reason(
                "auc",
                False,
                f"AUC undefined: every row gets the same probability ({float(challenger.probability[0]):.4f}), "
                f"ranking none against {against.name}'s {theirs['auc']:.4f}",
                ours["auc"],
                theirs["auc"] - promotion.auc_tolerance,
            )
        )
    elif not math.isnan(theirs["auc"]):
        reasons.append(_within("auc", "AUC", ours, theirs, promotion.auc_tolerance, against.name, digits=4))
    if "sharpe" in ours:
        reasons.append(_within("sharpe", "Sharpe", ours, theirs, promotion.sharpe_tolerance, against.name))
        risk, reference = theirs, against.name
        if first_model:
            # A naive baseline may never be long (persistence on a falling series): its drawdown of 0 would cap
            # any model that trades. A first model's risk is held to the larger of the baseline's and the
            # asset's own (long on every row), which a long/flat book can only exceed by timing its trades badly.
            held = strategy_metrics(np.ones(n_rows), evaluation.meta(), metrics, threshold=0.5)
            if held["max_drawdown"] > theirs["max_drawdown"]:
                risk, reference = held, "holding the asset"
        drawdown = promotion.drawdown_tolerance
        reasons.append(_within("max_drawdown", "max drawdown", ours, risk, drawdown, reference))
    promote = all(r.passed for r in reasons)
    action: Action = "promote" if promote else ("reject" if first_model else "keep-champion")
    return Decision(action, reasons, comparison, {"challenger": ours, "baseline": theirs})


def _within(
    metric: str,
    label: str,
    ours: dict[str, float],
    theirs: dict[str, float],
    tolerance: float,
    against: str,
    digits: int = 3,
) -> Reason:
    """A guardrail on ``metric`` against ``against``'s value: higher is better, so ours must reach theirs minus
    ``tolerance`` (a floor); for ``max_drawdown``, lower is better, so ours must stay under theirs plus it (a cap)."""
    cap = metric == "max_drawdown"
    limit = theirs[metric] + tolerance if cap else theirs[metric] - tolerance
    return Reason(
        metric.replace("_", "-"),
        ours[metric] <= limit if cap else ours[metric] >= limit,
        f"{label} {ours[metric]:.{digits}f} vs {against} {theirs[metric]:.{digits}f} "
        f"({'cap' if cap else 'floor'} {limit:.{digits}f})",
        ours[metric],
        limit,
    )


def keep_champion(reason: str, check: str = "comparable") -> Decision:
    """A decision not to promote for a reason outside the statistics (e.g. the champion cannot be scored)."""
    return Decision("keep-champion", [Reason(check, False, reason)])


def rollback_target(
    champion: str | None, previous: str | None, requested: str | None, versions: Sequence[str] = ()
) -> str:
    """Which version a rollback makes champion (``versions``: the model's, named when there is no default).

    Raises:
        DriftlineError: nothing to roll back to, or the requested version is already champion.
    """
    target = requested or previous
    if target is None:
        others = [v for v in versions if v != champion]
        where = f"v{champion} is the first champion" if champion else "there is no champion"
        if not others:
            raise DriftlineError(f"no previous-champion to roll back to ({where}) and no other version to restore")
        raise DriftlineError(
            f"no previous-champion to roll back to ({where}); pass --to-version with one of: {', '.join(others)}"
        )
    if target == champion:
        raise DriftlineError(f"version {target} is already the champion")
    return target


def forced_rollback_note(
    version: str, decision: str | None, reasons: str | None, force: bool, reason: str, was_champion: bool = False
) -> str | None:
    """Whether a rollback may make ``version`` champion: None when its training promoted it (or it was
    champion before, or it carries no decision); the note to record when it was not and ``force`` is set.

    Raises:
        DriftlineError: the version was rejected (reject / keep-champion) and ``force`` is not set.
    """
    if decision in (None, "", "promote") or was_champion:
        return None
    what = (
        f"version {version} was not promoted by its training run "
        f"(decision {decision}: {reasons or 'no reasons recorded'})"
    )
    if not force:
        raise DriftlineError(f"{what}; pass --force to make it champion anyway")
    return f"{what}; made champion by a forced rollback: {reason}"


def prediction_question(config: PipelineConfig) -> dict[str, Any]:
    """What a model's probability means: the target and the settings that define its label.

    Two models answer the same question only when these agree; settings that change how the label is
    predicted (features, ``label_delay``, lags) are not part of it.
    """
    target = config.target
    question: dict[str, Any] = {"target": target.kind}
    if target.kind == "label":
        question["label column"] = config.data.target_col
        if config.data.positive_label is not None:  # one class against the rest: which class is the question
            question["positive class"] = config.data.positive_label
        if target.ahead:
            question["rows ahead"] = target.ahead
    else:
        question["horizon"] = target.horizon
    if target.kind == "direction":
        question["dead_band"] = target.dead_band
    if target.kind == "volatility":
        question["median_window"] = target.median_window
    return question


def check_same_question(
    model_name: str, champion_version: str, champion: PipelineConfig, config: PipelineConfig
) -> None:
    """Refuse to train a challenger for a champion that predicts something else.

    The hold-out comparison scores both models against this run's labels: a champion trained for another
    target would be judged on a question it never answered, and a promotion would silently change what
    every consumer of the model's scores receives.

    Raises:
        ConfigError: the two questions differ; the message names both and how to train this one apart.
    """
    theirs, ours = prediction_question(champion), prediction_question(config)
    if theirs == ours:
        return
    differ = ", ".join(
        f"{k} {theirs.get(k)!r} -> {ours.get(k)!r}"
        for k in dict.fromkeys([*theirs, *ours])
        if theirs.get(k) != ours.get(k)
    )
    suggestion = f"{config.name}-{ours['target']}" if ours["target"] != theirs["target"] else f"{config.name}-2"
    raise ConfigError(
        f"{model_name}'s champion (version {champion_version}) predicts a different question than this run ({differ}). "
        f"One registered model answers one question: train this one under its own name (--name {suggestion}), "
        "or keep the champion's target settings."
    )
