"""Does the champion/challenger test promote noise? Seeded Monte Carlo through the real ``decide_promotion``.

Run from the project root::

    .venv/bin/python -m benchmarks.promotion_power [--sims 2000] [--seed 0]

Every simulated evaluation window goes through ``driftline.promotion.decide_promotion`` with the default
``PromotionConfig`` and ``MetricsConfig``, ``block_length=BLOCK_LENGTH`` (read from ``PipelineConfig.block_length``
for a horizon-5 target) and
``price_target=False``; nothing in the decision is re-implemented here. Each challenger also carries a
pooled walk-forward ECE (``walk_forward_ece``, checked against ``promotion.walk_forward_ece_cap``): its
predictions over the world's training period (the rows the pipeline's walk-forward would score out of
sample, here the same model's noise path continued back in time), scored as the gate scores the pipeline's
(``driftline.metrics.binned_ece``: up to ``MetricsConfig.ece_bins`` bins of at least 100 rows).

The simulated world (``World``) is built to be hard on a test that assumes independent rows:

* true probability: ``logit p[t, s] = mu + sd_market * m[t] + sd_symbol * a[t, s]``, with ``m`` (a market
  factor shared by every symbol) and ``a`` unit-variance AR(1) processes (phi 0.9), so rows are
  persistent in time and correlated across symbols;
* labels: ``y = 1{logit p + L > 0}`` where ``L`` has an exact logistic marginal (so ``P(y=1 | p) = p``)
  but is a transform of a ``horizon``-period moving sum of Gaussian shocks, half of them shared by all
  symbols: the autocorrelation and cross-correlation that overlapping 5-day labels have;
* a model with noise ``sd`` sees ``logit p + sd * e``, where ``e`` is again unit-variance AR(1)
  (phi 0.9) with a share common to all symbols, i.e. a model's errors persist and hit the whole panel.
  ``calibrated`` models are then recalibrated the way the pipeline's Platt step would in population
  (``E[p | model logit]``, probit approximation); uncalibrated ones are ``sigmoid(logit p + sd * e)``.

Scenarios (``SCENARIOS``): two "null" ones, in which the challenger carries no more information than
what it is compared with (target: promoted in at most 5% of simulations), and "power" ones, in which it
carries clearly more (target: promoted in at least 80%). Next to the real decision, each row also shows
the naive rule "challenger's mean log loss is lower", which is what the test exists to replace.

A scenario passes on its 95% Wilson interval (null: upper bound <= 5%; power: lower bound >= 80%);
``point_estimate_met`` says whether the observed rate alone meets it. Exit code 0 when every scenario
passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import sklearn
from scipy.special import expit, logit, ndtr

from driftline.config import (
    CalibrationConfig,
    DecisionSpec,
    MetricsConfig,
    ModelsConfig,
    PipelineConfig,
    PromotionConfig,
)
from driftline.metrics import BinnedEce, binned_ece
from driftline.promotion import Decision, EvaluationSet, Scores, constant_scores, decide_promotion
from driftline.training import Edge, edge_over

HORIZON = 5
# The pipeline's own default block for a horizon-5 price target (imported, not copied: max(10, 2 x overlap)).
BLOCK_LENGTH = PipelineConfig.model_validate({"target": {"kind": "volatility", "horizon": HORIZON}}).block_length
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "promotion.json"
Z95 = 1.959963984540054


@dataclass(frozen=True)
class World:
    """The data-generating process shared by every scenario."""

    symbols: int = 4
    timestamps: int = 500  # evaluation window, in timestamps (EvaluationConfig.window's default)
    train_timestamps: int = 500  # history before the window, for the base rate of the first model
    gap: int = HORIZON  # purged between training rows and the window, as the pipeline does
    horizon: int = HORIZON  # labels are built from this many overlapping shocks
    prevalence: float = 0.5  # volatility above its median: about half the rows are positive
    phi: float = 0.9  # persistence of the true logit's components
    sd_market: float = 0.7  # common market factor of the true logit
    sd_symbol: float = 1.0  # per-symbol part of the true logit
    label_shock_common: float = 0.5  # share of the label shocks' variance shared by all symbols
    noise_phi: float = 0.9  # persistence of a model's errors
    noise_common: float = 0.3  # share of a model's error variance shared by all symbols

    @property
    def mu(self) -> float:
        return float(logit(self.prevalence))

    @property
    def logit_variance(self) -> float:
        return self.sd_market**2 + self.sd_symbol**2


@dataclass(frozen=True)
class Scenario:
    key: str
    name: str
    kind: Literal["null", "power"]
    champion_sd: float | None  # None: first model, compared with the training base rate
    challenger_sd: float | None  # None: a no-skill model, base rate plus noise_sd of noise
    calibrated: bool = True
    noise_sd: float = 0.2  # no-skill model: logit noise around the base rate
    description: str = ""
    target_rate: float | None = None  # default: 5% for a null, 80% for a power scenario

    @property
    def target(self) -> float:
        if self.target_rate is not None:
            return self.target_rate
        return 0.05 if self.kind == "null" else 0.80

    @property
    def target_text(self) -> str:
        return f"<= {self.target:.0%}" if self.kind == "null" else f">= {self.target:.0%}"

    def met(self, rate: float) -> bool:
        return rate <= self.target if self.kind == "null" else rate >= self.target

    def met_on_interval(self, interval: tuple[float, float]) -> bool:
        """Judged on the 95% Wilson bound: a null's upper bound must be <= its target, a power scenario's
        lower bound >= its target (the point estimate alone can meet a target by luck)."""
        low, high = interval
        return high <= self.target if self.kind == "null" else low >= self.target


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "null-equal",
        "null: equally good",
        "null",
        champion_sd=1.0,
        challenger_sd=1.0,
        description="champion and challenger: the same noise sd (1.0 on "
        "the logit scale), independent draws, both calibrated",
    ),
    Scenario(
        "null-equal-uncalibrated",
        "null: equally good, uncalibrated",
        "null",
        champion_sd=1.0,
        challenger_sd=1.0,
        calibrated=False,
        description="as above but both are sigmoid(logit p + noise): over-confident, as an uncalibrated model would be",
    ),
    Scenario(
        "null-no-skill-first",
        "null: no-skill first model vs base rate",
        "null",
        champion_sd=None,
        challenger_sd=None,
        description="first model: sigmoid(logit(base rate) + 0.2 x AR(1) noise), no information about y, "
        "vs the base rate of the 500 training timestamps before the window",
    ),
    Scenario(
        "power-better",
        "power: stated improvement",
        "power",
        champion_sd=1.0,
        challenger_sd=0.25,
        description="challenger's logit noise sd 0.25 vs the champion's 1.0, both calibrated",
    ),
    Scenario(
        "power-modest",
        "power: modest improvement (reported, no target)",
        "power",
        champion_sd=1.0,
        challenger_sd=0.5,
        target_rate=0.0,
        description="challenger's logit noise sd 0.5 vs the champion's 1.0, both calibrated: the edge a test "
        "of this size detects only part of the time",
    ),
    Scenario(
        "power-first",
        "power: first model with skill vs base rate",
        "power",
        champion_sd=None,
        challenger_sd=1.0,
        description="first model with logit noise sd 1.0 (the champion of "
        "the scenarios above), calibrated, vs the base rate",
    ),
)


# --- simulation ---------------------------------------------------------------------------------------------------


def ar1(rng: np.random.Generator, n_sims: int, length: int, width: int, phi: float) -> np.ndarray:
    """``n_sims x length x width`` unit-variance AR(1) paths along axis 1, started from the stationary law."""
    shocks = rng.standard_normal((n_sims, length, width))
    out = np.empty_like(shocks)
    out[:, 0] = shocks[:, 0]
    scale = math.sqrt(1 - phi**2)
    for t in range(1, length):
        out[:, t] = phi * out[:, t - 1] + scale * shocks[:, t]
    return out


def moving_sum_shocks(rng: np.random.Generator, n_sims: int, length: int, width: int, horizon: int) -> np.ndarray:
    """Unit-variance Gaussian ``horizon``-period moving sums: lag-k correlation (horizon - k) / horizon."""
    shocks = rng.standard_normal((n_sims, length + horizon - 1, width))
    summed = np.lib.stride_tricks.sliding_window_view(shocks, horizon, axis=1).sum(axis=-1)
    return summed / math.sqrt(horizon)


def simulate_world(world: World, n_sims: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """True logits and labels, ``n_sims x (train + gap + window) x symbols``."""
    length = world.train_timestamps + world.gap + world.timestamps
    market = ar1(rng, n_sims, length, 1, world.phi)
    own = ar1(rng, n_sims, length, world.symbols, world.phi)
    true_logit = world.mu + world.sd_market * market + world.sd_symbol * own
    common = moving_sum_shocks(rng, n_sims, length, 1, world.horizon)
    idio = moving_sum_shocks(rng, n_sims, length, world.symbols, world.horizon)
    gaussian = math.sqrt(world.label_shock_common) * common + math.sqrt(1 - world.label_shock_common) * idio
    # ndtr(g) is uniform, logit of a uniform is standard logistic: P(y = 1 | p) = p exactly.
    shock = logit(np.clip(ndtr(gaussian), 1e-12, 1 - 1e-12))
    y = (true_logit + shock > 0).astype(int)
    return {"logit": true_logit, "y": y}


def model_noise(world: World, n_sims: int, rng: np.random.Generator, length: int | None = None) -> np.ndarray:
    """A model's unit-variance error over ``length`` timestamps (default: the window): persistent, partly
    common to all symbols."""
    length = length or world.timestamps
    common = ar1(rng, n_sims, length, 1, world.noise_phi)
    own = ar1(rng, n_sims, length, world.symbols, world.noise_phi)
    return math.sqrt(world.noise_common) * common + math.sqrt(1 - world.noise_common) * own


def model_probability(
    true_logit: np.ndarray, noise: np.ndarray, sd: float, world: World, calibrated: bool
) -> np.ndarray:
    """What a model with logit noise ``sd`` predicts; ``calibrated``: E[p | its logit] (probit approximation)."""
    seen = true_logit + sd * noise
    if not calibrated:
        return expit(seen)
    var = world.logit_variance
    shrink = var / (var + sd**2)
    mean = world.mu + shrink * (seen - world.mu)
    return expit(mean / np.sqrt(1 + math.pi * shrink * sd**2 / 8))


def walk_forward_ece(p: np.ndarray, y: np.ndarray, metrics: MetricsConfig) -> list[BinnedEce]:
    """Per simulation, the pooled ECE of predictions ``p`` against labels ``y`` (``sims x time x symbols``),
    as the gate judges it (``WalkForwardResult.gate_ece``: the pipeline's ECE over bins of >= 100 rows)."""
    return [binned_ece(y[i].ravel(), p[i].ravel(), metrics.ece_bins) for i in range(len(p))]


def _scores(name: str, p: np.ndarray) -> Scores:
    return Scores(name, p, (p >= 0.5).astype(int))


def run_scenario(
    scenario: Scenario,
    world: World,
    sims: int,
    seed: int,
    promotion: PromotionConfig | None = None,
    metrics: MetricsConfig | None = None,
    calibration: CalibrationConfig | None = None,
) -> dict[str, Any]:
    """``sims`` seeded simulations of one scenario, each judged by ``decide_promotion``; a summary dict."""
    promotion = promotion or PromotionConfig()
    metrics = metrics or MetricsConfig()
    index = next((i for i, s in enumerate(SCENARIOS) if s.key == scenario.key), len(SCENARIOS))
    # Every scenario draws its own world from its own stream: scenarios are independent experiments.
    rng = np.random.default_rng([seed, index])
    data = simulate_world(world, sims, rng)
    window = slice(world.train_timestamps + world.gap, None)
    true_logit, y_all = data["logit"][:, window], data["y"][:, window]
    base_rates = data["y"][:, : world.train_timestamps].mean(axis=(1, 2))

    # The challenger's error path runs over the whole series: its training-period part gives the pooled
    # walk-forward ECE the gate checks, its window part the hold-out predictions.
    noise = model_noise(world, sims, rng, data["logit"].shape[1])
    if scenario.challenger_sd is None:
        challenger_all = expit(logit(base_rates)[:, None, None] + scenario.noise_sd * noise)
    else:
        challenger_all = model_probability(data["logit"], noise, scenario.challenger_sd, world, scenario.calibrated)
    challenger = challenger_all[:, window]
    walk_forward_eces = walk_forward_ece(
        challenger_all[:, : world.train_timestamps], data["y"][:, : world.train_timestamps], metrics
    )
    champion = (
        None
        if scenario.champion_sd is None
        else model_probability(
            true_logit, model_noise(world, sims, rng), scenario.champion_sd, world, scenario.calibrated
        )
    )

    times = np.repeat(np.arange(world.timestamps), world.symbols)
    symbols = np.tile(np.array([f"S{i}" for i in range(world.symbols)]), world.timestamps)
    spec = DecisionSpec(promotion=promotion, metrics=metrics, block_length=BLOCK_LENGTH)
    edges = walk_forward_edges(challenger_all, data["y"], base_rates, world, calibration or CalibrationConfig())
    records = []
    for i in range(sims):
        evaluation = EvaluationSet(y=y_all[i].ravel(), times=times, symbols=symbols)
        # calibration.require_edge: without an edge over the base rate on the training period, the pipeline's
        # challenger predicts the base rate.
        shown = edges[i] is None or edges[i].shown
        decision = decide_promotion(
            evaluation,
            _scores("challenger", challenger[i].ravel())
            if shown
            else constant_scores(float(base_rates[i]), len(evaluation)),
            constant_scores(float(base_rates[i]), len(evaluation))
            if champion is None
            else _scores("champion", champion[i].ravel()),
            spec,
            first_model=champion is None,
            walk_forward_ece=walk_forward_eces[i],
        )
        records.append({**_record(decision), "edge_shown": shown})
    return summarise(scenario, world, records)


def walk_forward_edges(
    p: np.ndarray, y: np.ndarray, base_rates: np.ndarray, world: World, calibration: CalibrationConfig
) -> list[Edge | None]:
    """Per simulation, the challenger's edge over the base rate on the training period, as the pipeline judges
    its challenger family on the walk-forward rows (``driftline.training.edge_over``, at
    ``calibration.require_edge`` for a volatility target; None when that is off). The base rate here is the
    training period's own share, known in hindsight, where the walk-forward's is each fold's earlier rows': if
    anything, a harder bar."""
    level = calibration.edge_level(is_direction=False)  # the simulated target is volatility's regime
    if level is None:
        return [None] * len(p)
    train = slice(None, world.train_timestamps)
    times = np.repeat(np.arange(world.train_timestamps), world.symbols)
    seed = ModelsConfig().seed
    return [
        edge_over(
            "challenger",
            y[i, train].ravel(),
            p[i, train].ravel(),
            float(base_rates[i]),
            times,
            level,
            BLOCK_LENGTH,
            seed,
        )
        for i in range(len(p))
    ]


def _record(decision: Decision) -> dict[str, Any]:
    ours, theirs = decision.scores.get("challenger", {}), decision.scores.get("baseline", {})
    checks = {r.check: r.passed for r in decision.reasons}
    return {
        "promote": decision.promote,
        "ci_passed": bool(checks.get(f"{decision.comparison.get('metric', 'log_loss')}-better", False)),
        "failed": [check for check, passed in checks.items() if not passed],
        "naive": ours.get("log_loss", math.inf) < theirs.get("log_loss", -math.inf),
        "gain": theirs.get("log_loss", math.nan) - ours.get("log_loss", math.nan),
        "baseline_log_loss": theirs.get("log_loss", math.nan),
        "challenger_auc": ours.get("auc", math.nan),
        "baseline_auc": theirs.get("auc", math.nan),
        "challenger_ece": ours.get("ece", math.nan),
        "walk_forward_ece": next((r.value for r in decision.reasons if r.check == "walk-forward-ece-cap"), math.nan),
        "ci_high": decision.comparison.get("ci_high", math.nan),
    }


# --- summary ------------------------------------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    phat = successes / n
    denom = 1 + z**2 / n
    centre = (phat + z**2 / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z**2 / (4 * n**2)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _mean(values: list[float]) -> float | None:
    clean = [v for v in values if not math.isnan(v)]
    return float(np.mean(clean)) if clean else None


def summarise(scenario: Scenario, world: World, records: list[dict[str, Any]]) -> dict[str, Any]:
    sims = len(records)
    promotions = sum(r["promote"] for r in records)
    naive = sum(r["naive"] for r in records)
    ci_only = sum(r["ci_passed"] for r in records)
    rate = promotions / sims if sims else 0.0
    blocked: dict[str, int] = {}
    for r in records:
        if r["ci_passed"] and not r["promote"]:
            for check in r["failed"]:
                blocked[check] = blocked.get(check, 0) + 1
    gains = np.array([r["gain"] for r in records], dtype=float)
    baseline_loss = _mean([r["baseline_log_loss"] for r in records])
    return {
        "key": scenario.key,
        "scenario": scenario.name,
        "kind": scenario.kind,
        "description": scenario.description,
        "champion_noise_sd": scenario.champion_sd,
        "challenger_noise_sd": scenario.challenger_sd,
        "no_skill_noise_sd": scenario.noise_sd if scenario.challenger_sd is None else None,
        "calibrated": scenario.calibrated,
        "sims": sims,
        "promotions": promotions,
        "rate": rate,
        "wilson_95": list(wilson(promotions, sims)),
        "target": scenario.target_text,
        "passed": scenario.met_on_interval(wilson(promotions, sims)),
        "point_estimate_met": scenario.met(rate),
        "naive_promotions": naive,
        "naive_rate": naive / sims if sims else 0.0,
        "naive_wilson_95": list(wilson(naive, sims)),
        "without_edge": sum(not r["edge_shown"] for r in records),
        "ci_only_promotions": ci_only,
        "ci_only_rate": ci_only / sims if sims else 0.0,
        "blocked_by_guardrail_after_ci_passed": blocked,
        "mean_log_loss_gain_per_row": float(gains.mean()) if sims else None,
        "sd_log_loss_gain_per_row": float(gains.std(ddof=1)) if sims > 1 else None,
        "mean_baseline_log_loss": baseline_loss,
        "relative_gain": float(gains.mean()) / baseline_loss if sims and baseline_loss else None,
        "mean_challenger_auc": _mean([r["challenger_auc"] for r in records]),
        "mean_baseline_auc": _mean([r["baseline_auc"] for r in records]),
        "mean_challenger_ece": _mean([r["challenger_ece"] for r in records]),
        "mean_walk_forward_ece": _mean([r["walk_forward_ece"] for r in records]),
        "rows_per_simulation": world.timestamps * world.symbols,
    }


def run(
    sims: int, seed: int, world: World | None = None, scenarios: tuple[Scenario, ...] = SCENARIOS
) -> list[dict[str, Any]]:
    world = world or World()
    return [run_scenario(s, world, sims, seed) for s in scenarios]


def machine_info() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit_learn": sklearn.__version__,
    }


def format_table(results: list[dict[str, Any]]) -> str:
    header = ("scenario", "sims", "promotions", "rate", "95% Wilson", "target", "result", "naive rate")
    rows = [
        (
            r["scenario"],
            str(r["sims"]),
            str(r["promotions"]),
            f"{r['rate']:.1%}",
            f"[{r['wilson_95'][0]:.1%}, {r['wilson_95'][1]:.1%}]",
            r["target"],
            "pass" if r["passed"] else ("FAIL (point met)" if r["point_estimate_met"] else "FAIL"),
            f"{r['naive_rate']:.1%}",
        )
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]

    def line(cells: tuple[str, ...]) -> str:
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))

    return "\n".join([line(header), "-+-".join("-" * w for w in widths), *(line(row) for row in rows)])


def format_details(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        auc = r["mean_challenger_auc"]
        base_auc = r["mean_baseline_auc"]
        lines.append(
            f"- {r['scenario']}: {r['description']}.\n"
            "    CI alone (log_loss-better) passed in "
            f"{r['ci_only_promotions']}/{r['sims']} ({r['ci_only_rate']:.1%}); "
            f"guardrails blocked after the CI passed: {r['blocked_by_guardrail_after_ci_passed'] or 'none'}.\n"
            f"    mean log-loss gain per row {r['mean_log_loss_gain_per_row']:+.4f} nats "
            f"(sd across sims {r['sd_log_loss_gain_per_row'] or 0:.4f}; "
            f"{r['relative_gain'] or 0:+.1%} of the baseline's "
            f"{r['mean_baseline_log_loss']:.4f}); AUC challenger {auc if auc is None else f'{auc:.3f}'} vs baseline "
            f"{base_auc if base_auc is None else f'{base_auc:.3f}'}; challenger ECE {r['mean_challenger_ece']:.4f}, "
            f"pooled walk-forward ECE {r['mean_walk_forward_ece']:.4f}."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.promotion_power", description=__doc__.split("\n")[0])
    parser.add_argument("--sims", type=int, default=2000, help="simulations per scenario (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    parser.add_argument(
        "--timestamps",
        type=int,
        default=World.timestamps,
        help="evaluation window in timestamps (default 500, as EvaluationConfig)",
    )
    parser.add_argument("--symbols", type=int, default=World.symbols, help="symbols in the panel (default 4)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON results (default {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)
    if args.sims < 1:
        parser.error("--sims must be at least 1")
    argv_used = sys.argv[1:] if argv is None else argv

    world = World(timestamps=args.timestamps, symbols=args.symbols)
    start = time.perf_counter()
    results = run(args.sims, args.seed, world)
    wall = time.perf_counter() - start
    ok = all(r["passed"] for r in results)

    print(
        f"Promotion test, {args.sims} simulations per scenario, seed {args.seed}, "
        f"{world.symbols} symbols x {world.timestamps} timestamps, block {BLOCK_LENGTH}, real decide_promotion "
        f"(default PromotionConfig: n_bootstrap {PromotionConfig().n_bootstrap}, level {PromotionConfig().level})\n"
    )
    print(format_table(results))
    print()
    print(format_details(results))
    print(f"\n{'all targets met' if ok else 'TARGETS NOT MET'}; wall time {wall:.1f} s")

    payload = {
        "benchmark": "promotion_power",
        "command": " ".join(["python -m benchmarks.promotion_power", *argv_used]).strip(),
        "seed": args.seed,
        "sims_per_scenario": args.sims,
        "wall_time_seconds": round(wall, 3),
        "all_targets_met": ok,
        "machine": machine_info(),
        "decision": {
            "function": "driftline.promotion.decide_promotion",
            "promotion_config": PromotionConfig().model_dump(mode="json"),
            "metrics_config": MetricsConfig().model_dump(mode="json"),
            "block_length": BLOCK_LENGTH,
            "price_target": False,
            "pass_rule": "null: upper 95% Wilson bound of the promotion rate <= 5%; power: lower bound >= 80% "
            "(point_estimate_met: the observed rate alone)",
            "naive_rule": "promote when the challenger's mean log loss is below the baseline's",
        },
        "world": asdict(world),
        "scenarios": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
