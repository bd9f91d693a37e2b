"""Walk-forward and evaluation sizes that fit the data.

The defaults (5 folds, a 500-timestamp evaluation window, a 250-timestamp first training window) suit
several years of daily bars. On a shorter series the sizes the user did not set are lowered, within the
minimums below (met in rows on a wide panel), and each change is reported with its reason; on a long one
the evaluation window grows to ``HOLDOUT_SHARE`` of it. A size the user set is never changed. When nothing
fits, the error names the keys to lower and values that fit.

Everything is counted in distinct timestamps of the feature rows (after the trailing windows' warm-up),
as the splits count them: the evaluation window and a purge gap at the end, then the first training
window, a purge gap and the test folds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import yaml

from driftline.config import PipelineConfig, flatten_config
from driftline.errors import InsufficientDataError, show_time

logger = logging.getLogger(__name__)

MIN_FOLDS = 3
"""Fewest folds chosen automatically: the family is picked on its pooled out-of-sample loss, and with
fewer than three test periods one unusual period decides it (2 may still be set explicitly)."""

MIN_TEST_TIMESTAMPS = 50
"""Fewest test timestamps per fold chosen automatically: a shorter fold often holds a single regime or
class, and its metrics are noise. The configured sizes are lowered when their folds would be shorter."""

MIN_TRAIN_TIMESTAMPS = 100
"""Smallest first training window chosen automatically: it is cut into a fitting part and, after a purge
gap, the last ``calibration.fraction`` for the calibrator (20 timestamps at the default 0.2)."""

MIN_EVALUATION_BLOCKS = 10
"""Smallest evaluation window chosen automatically, in bootstrap blocks (``promotion.block_length``,
default max(10, 2 x the label's overlap)): the promotion's paired block bootstrap needs several blocks for its
confidence
interval to mean anything. The window also holds at least ``promotion.min_rows`` rows, or no model could
ever be promoted."""

SMALLEST_WINDOW = 10
"""The least ``evaluation.window`` the config accepts."""

# A wide panel (many symbols at each time: 200 countries a year) reaches a fold's rows in few timestamps. Its
# minimums above may then be met in rows instead, never below the panel floors. Rows at one time are
# correlated (one year's shock moves every country), so a panel needs ten times the rows a single series has
# at the timestamp minimums. A single series, or a panel of a few stocks, keeps the timestamp minimums.
MIN_TEST_ROWS = 10 * MIN_TEST_TIMESTAMPS
PANEL_MIN_TEST_TIMESTAMPS = 5
MIN_TRAIN_ROWS = 10 * MIN_TRAIN_TIMESTAMPS
PANEL_MIN_TRAIN_TIMESTAMPS = 10
MIN_EVALUATION_ROWS = 2_000
"""Wide panels: an evaluation window shorter than ``MIN_EVALUATION_BLOCKS`` bootstrap blocks, at least
``SMALLEST_WINDOW`` timestamps holding this many rows (the bootstrap then shortens its block to have at least two,
``promotion.effective_block``)."""

HOLDOUT_SHARE = 0.05
HOLDOUT_MOST = 5_000
"""Long data: an evaluation window the user did not set grows to this share of the timestamps, at most
``HOLDOUT_MOST`` (10,000 timestamps and more: half a year of minute bars is judged on 5,000 of them, not on the
500 that suit daily bars, whose bootstrap interval is three times wider)."""

AUTOMATIC_SIZES = "config/automatic_sizes.json"
"""The run artifact listing the sizes the user did not set (``SizedConfig.automatic``)."""

SHRINK_ORDER = ("splits.n_splits", "evaluation.window", "splits.min_train_size")
"""What is lowered first: fewer folds keep every out-of-sample row (each fold is longer, the families
refit less often); then the evaluation window; the first training window last."""

WINDOW_KEYS = (
    "features.return_windows",
    "features.vol_short",
    "features.vol_mid",
    "features.vol_long",
    "features.zscore_window",
    "features.median_window",
    "features.rsi_window",
    "features.macd_fast",
    "features.macd_slow",
    "features.macd_signal",
    "target.median_window",
    "target.label_lags",
)
"""The trailing windows lowered when the data is too short for their warm-up (``driftline.short_data``)."""

FITTED_KEYS = ("data.symbol_col", "contract.min_rows_per_symbol", *WINDOW_KEYS, *SHRINK_ORDER)
"""Every setting that may be fitted to the data: logged once fitted, and dropped from a version's config when
the user never set it, so a retrain fits it again (``retrain_config_yaml``)."""


@dataclass(frozen=True)
class Sizes:
    """The three sizes that must fit in the data, by their config keys."""

    n_splits: int
    window: int
    min_train_size: int

    _FIELDS: ClassVar[dict[str, str]] = {
        "splits.n_splits": "n_splits",
        "evaluation.window": "window",
        "splits.min_train_size": "min_train_size",
    }

    @classmethod
    def of(cls, config: PipelineConfig) -> Sizes:
        return cls(config.splits.n_splits, config.evaluation.window, config.splits.min_train_size)

    def get(self, key: str) -> int:
        return int(getattr(self, self._FIELDS[key]))

    def with_value(self, key: str, value: int) -> Sizes:
        return replace(self, **{self._FIELDS[key]: value})

    def need(self, gap: int, test_size: int) -> int:
        """Timestamps needed: evaluation window + gap + first training window + gap + the test folds."""
        return self.window + gap + self.min_train_size + gap + self.n_splits * test_size

    def spelled(self, gap: int, test_size: int) -> str:
        return (
            f"evaluation.window {self.window} + gap {gap} + splits.min_train_size {self.min_train_size} + gap {gap} "
            f"+ {self.n_splits} folds x {test_size} test timestamps need >= {self.need(gap, test_size)}"
        )


@dataclass(frozen=True)
class Adjustment:
    """One setting lowered to fit the data (a size here, a window or the rows per symbol in ``short_data``)."""

    key: str
    before: int | tuple[int, ...]
    after: int | tuple[int, ...]
    reason: str

    def __str__(self) -> str:
        return f"{self.key} {self.before} -> {self.after}: {self.reason}"


@dataclass(frozen=True)
class SizedConfig:
    """The config a run uses (sizes fitted to the data) and what was changed to get it."""

    config: PipelineConfig
    timestamps: int
    adjustments: tuple[Adjustment, ...] = ()
    # The sizes the user did not set (kept or lowered here): a retrain sizes them again on its own data.
    automatic: tuple[str, ...] = ()

    @property
    def adjusted(self) -> dict[str, dict[str, Any]]:
        """``{key: {from, to, reason}}`` for the summary JSON (empty when nothing was changed)."""
        return {a.key: {"from": a.before, "to": a.after, "reason": a.reason} for a in self.adjustments}

    def params(self) -> dict[str, str]:
        """The effective sizes and windows as flat config params."""
        flat = flatten_config(self.config)
        return {key: flat[key] for key in FITTED_KEYS}


def explicit_keys(config: PipelineConfig) -> frozenset[str]:
    """The sizes the user set (in a file, an override or a setting), which are never changed."""
    sections = {"splits": config.splits, "evaluation": config.evaluation}
    return frozenset(key for key in SHRINK_ORDER if key.split(".")[1] in sections[key.split(".")[0]].model_fields_set)


def _rows_in_tail(counts: np.ndarray, n_tail: int) -> int:
    return int(counts[len(counts) - n_tail :].sum()) if n_tail > 0 else 0


def _window_for_rows(counts: np.ndarray, rows: int) -> int:
    """Fewest timestamps at the end that hold ``rows`` rows; when all of them hold fewer, an estimate at
    the data's mean rows per timestamp."""
    held = np.cumsum(counts[::-1])
    if held[-1] < rows:
        return len(counts) + math.ceil(float((rows - held[-1]) / counts.mean()))
    return int(np.searchsorted(held, rows)) + 1


def _timestamps_for_rows(counts: np.ndarray, rows: int, most: int, floor: int) -> int:
    """``most`` timestamps, or fewer (never under ``floor``) when the data's typical timestamp holds enough
    rows that fewer reach ``rows``."""
    per_timestamp = float(np.median(counts)) if len(counts) else 1.0
    return max(floor, min(most, math.ceil(rows / max(per_timestamp, 1.0))))


def min_test_timestamps(counts: np.ndarray) -> int:
    """Fewest test timestamps per fold chosen automatically: ``MIN_TEST_TIMESTAMPS``, or on a wide panel as
    few as hold ``MIN_TEST_ROWS`` rows (at least ``PANEL_MIN_TEST_TIMESTAMPS``)."""
    return _timestamps_for_rows(counts, MIN_TEST_ROWS, MIN_TEST_TIMESTAMPS, PANEL_MIN_TEST_TIMESTAMPS)


def smallest_sizes(config: PipelineConfig, counts: np.ndarray) -> Sizes:
    """The least of each size chosen automatically (see the module's constants)."""
    blocks = MIN_EVALUATION_BLOCKS * config.block_length
    window = max(
        min(blocks, _window_for_rows(counts, MIN_EVALUATION_ROWS)),
        _window_for_rows(counts, config.promotion.min_rows),
        SMALLEST_WINDOW,
    )
    train = _timestamps_for_rows(counts, MIN_TRAIN_ROWS, MIN_TRAIN_TIMESTAMPS, PANEL_MIN_TRAIN_TIMESTAMPS)
    return Sizes(n_splits=MIN_FOLDS, window=window, min_train_size=train)


def _shrink(sizes: Sizes, floors: Sizes, keys: tuple[str, ...], n_times: int, gap: int, test_size: int) -> Sizes | None:
    """Lower ``keys`` in order, each only as far as needed and never below its floor; None if that is not enough."""
    for key in keys:
        short = sizes.need(gap, test_size) - n_times
        if short <= 0:
            break
        value = sizes.get(key)
        step = test_size if key == "splits.n_splits" else 1
        sizes = sizes.with_value(key, min(value, max(floors.get(key), value - math.ceil(short / step))))
    return sizes if sizes.need(gap, test_size) <= n_times else None


def _reason(key: str, sizes: Sizes, config: PipelineConfig, counts: np.ndarray, context: str) -> str:
    floors, panel = smallest_sizes(config, counts), " (a wide panel: its rows count too)"
    if key == "splits.n_splits":
        test = min_test_timestamps(counts)
        why = (
            f"fewer, longer test folds (at least {MIN_FOLDS} folds of {test} timestamps"
            f"{panel if test < MIN_TEST_TIMESTAMPS else ''}): every out-of-sample row is kept, the families refit "
            "less often"
        )
    elif key == "evaluation.window":
        blocks = MIN_EVALUATION_BLOCKS * config.block_length
        why = (
            f"a shorter hold-out leaves room for the walk-forward; {sizes.window} timestamps hold "
            f"{_rows_in_tail(counts, sizes.window)} rows (promotion "
            f"needs promotion.min_rows {config.promotion.min_rows}, and "
            f"at least {MIN_EVALUATION_BLOCKS} bootstrap blocks of {config.block_length}"
            f"{f' or {MIN_EVALUATION_ROWS} rows' if floors.window < blocks else ''})"
        )
    else:
        why = (
            f"a shorter first training window (at least {floors.min_train_size} timestamps"
            f"{panel if floors.min_train_size < MIN_TRAIN_TIMESTAMPS else ''}: a fitting part and a "
            "calibration slice); later folds still train on all earlier rows"
        )
    return f"{why}; {context}"


def _lowered(config: PipelineConfig, counts: np.ndarray) -> Sizes | None:
    """The sizes the user did not set lowered to fit ``counts`` (within the minimums); None if that is not enough."""
    explicit = explicit_keys(config)
    test_size = config.splits.test_size or min_test_timestamps(counts)
    keys = tuple(k for k in SHRINK_ORDER if k not in explicit)
    return _shrink(Sizes.of(config), smallest_sizes(config, counts), keys, len(counts), config.gap, test_size)


def _kept_as_set(config: PipelineConfig, n_times: int) -> bool:
    """The sizes as configured fit ``n_times`` with test folds shorter than the minimum (kept when set)."""
    return Sizes.of(config).need(config.gap, config.splits.test_size or 1) <= n_times


def sizes_fit(config: PipelineConfig, times: np.ndarray, short_folds: bool = True) -> bool:
    """Whether ``size_to_data`` would find sizes for feature rows at ``times`` (without a warning); with
    ``short_folds=False`` not the sizes the user set that fit only with test folds under the minimum."""
    _, counts = np.unique(np.asarray(times), return_counts=True)
    if not len(counts):
        return False
    test_size = config.splits.test_size or min_test_timestamps(counts)
    if Sizes.of(config).need(config.gap, test_size) <= len(counts) or _lowered(config, counts) is not None:
        return True
    return short_folds and _kept_as_set(config, len(counts))


FIRST_WINDOW_CLASS_ROWS = 20
"""Rows of each class the first training window holds, when the user did not set ``splits.min_train_size``: a
label that starts late (no event in the first months) gets a first window that reaches its first events,
instead of stopping on "fold 1: the training rows hold a single class"."""


def _when(time: Any) -> str:
    """A timestamp as messages show it (``errors.show_time``); a row number as it is."""
    return show_time(time) if isinstance(time, np.datetime64) else str(time)


def _class_first_window(
    sized: SizedConfig, config: PipelineConfig, times: np.ndarray, labels: np.ndarray
) -> SizedConfig | None:
    """The sizes again with ``splits.min_train_size`` grown, when the user did not set it and the first training
    window's fitting part (before its calibration slice and purge gap: ``splits.calibration_cut``) holds fewer
    than ``FIRST_WINDOW_CLASS_ROWS`` rows of a class: the window then reaches the timestamp by which each class
    has that many. None when it already does, or when the grown window does not fit the data."""
    from driftline.splits import WalkForwardSplit

    if "splits.min_train_size" in explicit_keys(config):
        return None
    unique, position = np.unique(np.asarray(times), return_inverse=True)
    fitted = sized.config
    development = len(unique) - fitted.evaluation.window - fitted.gap
    try:
        first, _ = WalkForwardSplit.from_config(fitted.splits, fitted.gap).time_folds(development)[0]
    except InsufficientDataError:
        return None  # the split says so, naming what to set
    fraction = fitted.calibration.fraction
    fits = max(0, len(first) - max(1, round(len(first) * fraction)) - fitted.gap)  # timestamps the first fit sees
    positives = np.bincount(position, weights=np.asarray(labels, dtype=float), minlength=len(unique))
    negatives = np.bincount(position, minlength=len(unique)) - positives
    held = min(positives[:fits].sum(), negatives[:fits].sum())
    both = (np.cumsum(positives) >= FIRST_WINDOW_CLASS_ROWS) & (np.cumsum(negatives) >= FIRST_WINDOW_CLASS_ROWS)
    if held >= FIRST_WINDOW_CLASS_ROWS or not both.any():
        return None
    reached = int(np.argmax(both)) + 1  # timestamps by which each class has its rows
    needed = math.ceil((reached + fitted.gap) / (1 - fraction)) + 1
    rare = 1 if positives[:fits].sum() <= negatives[:fits].sum() else 0
    reason = (
        f"the first training window ({len(first)} timestamps) holds {int(held)} rows of class {rare} before its "
        f"calibration slice; it now reaches {FIRST_WINDOW_CLASS_ROWS} rows of each class "
        f"({_when(unique[reached - 1])}); set splits.min_train_size to choose"
    )
    grown = Adjustment("splits.min_train_size", config.splits.min_train_size, needed, reason)
    longer = config.model_copy(update={"splits": config.splits.model_copy(update={"min_train_size": needed})})
    try:
        resized = size_to_data(longer, times)  # the grown window is kept: folds or the hold-out give way first
    except InsufficientDataError:
        return None  # too short either way: the split's error says what to set
    logger.warning("a class starts late: %s", grown)
    automatic = tuple(k for k in SHRINK_ORDER if k in (*resized.automatic, "splits.min_train_size"))
    return SizedConfig(resized.config, resized.timestamps, (grown, *resized.adjustments), automatic)


def size_to_data(config: PipelineConfig, times: np.ndarray, labels: np.ndarray | None = None) -> SizedConfig:
    """Fit the fold count, the evaluation window and the first training window to the data's length (and, given
    the rows' ``labels``, the first training window to where both classes have rows: ``_class_first_window``).

    Sizes the user did not set are lowered (in ``SHRINK_ORDER``, within the module's minimums) when the
    configured ones would leave test folds shorter than ``min_test_timestamps``; the result is a new
    frozen config, so cache keys and tracked params hold the sizes actually used. Sizes the user set are
    kept: when they still fit (with shorter test folds) the run goes ahead as configured.

    Args:
        config: the pipeline config.
        times: each feature row's timestamp.

    Raises:
        InsufficientDataError: the data is too short for the sizes the user set, or for the minimums;
            the message names the keys to lower and values that fit.
    """
    sized = _sized(config, times)
    late = None if labels is None else _class_first_window(sized, config, times, labels)
    return late or sized


def _sized(config: PipelineConfig, times: np.ndarray) -> SizedConfig:
    """``size_to_data`` on the timestamps alone."""
    _, counts = np.unique(np.asarray(times), return_counts=True)
    n_times = len(counts)
    gap = config.gap
    sizes = Sizes.of(config)
    test_size = config.splits.test_size or min_test_timestamps(counts)
    explicit = explicit_keys(config)
    automatic = tuple(k for k in SHRINK_ORDER if k not in explicit)
    if sizes.need(gap, test_size) <= n_times:
        grown = min(HOLDOUT_MOST, int(HOLDOUT_SHARE * n_times))
        if "evaluation.window" in explicit or grown <= sizes.window:
            return SizedConfig(config, n_times, automatic=automatic)
        reason = (
            f"{n_times} timestamps: the hold-out is {HOLDOUT_SHARE:.0%} of them (at most {HOLDOUT_MOST}), "
            f"{_rows_in_tail(counts, grown)} rows for the promotion's interval; set evaluation.window to keep another"
        )
        grow = Adjustment("evaluation.window", sizes.window, grown, reason)
        logger.info("long data: %s", grow)
        return SizedConfig(
            apply_sizes(config, sizes.with_value("evaluation.window", grown)), n_times, (grow,), automatic
        )
    fitted = _lowered(config, counts)
    if fitted is not None:
        context = f"{n_times} timestamps after the features' warm-up, {sizes.spelled(gap, test_size)}"
        adjustments = tuple(
            Adjustment(key, sizes.get(key), fitted.get(key), _reason(key, fitted, config, counts, context))
            for key in SHRINK_ORDER
            if fitted.get(key) != sizes.get(key)
        )
        for adjustment in adjustments:
            logger.warning("data too short for the configured sizes: %s", adjustment)
        return SizedConfig(apply_sizes(config, fitted), n_times, adjustments, automatic)
    if _kept_as_set(config, n_times):
        folds = (n_times - sizes.window - 2 * gap - sizes.min_train_size) // sizes.n_splits
        logger.warning(
            "%d timestamps: the sizes set (%s) leave test folds of %s timestamps; kept as set",
            n_times,
            ", ".join(f"{k} {sizes.get(k)}" for k in sorted(explicit)),
            config.splits.test_size or folds,
        )
        return SizedConfig(config, n_times, automatic=automatic)
    raise InsufficientDataError(too_short_message(config, counts, explicit))


def retrain_config_yaml(recorded_yaml: str, automatic: Sequence[str]) -> str:
    """A version's recorded config (the sizes it used, every key written out) as the start of a retrain:
    the ``automatic`` sizes, which the user never set, are dropped, so the retrain sizes them again on
    its own, grown data instead of keeping what fitted the shorter data as if the user had set it.

    Raises:
        ValueError: a key in ``automatic`` is not one of the sizes (``SHRINK_ORDER``).
    """
    unknown = sorted(set(automatic) - set(FITTED_KEYS))
    if unknown:
        raise ValueError(f"not a setting fitted to the data: {unknown}; those are: {list(FITTED_KEYS)}")
    tree = yaml.safe_load(recorded_yaml) or {}
    for key in automatic:
        section, name = key.split(".")
        if isinstance(tree.get(section), dict):
            tree[section].pop(name, None)
    return yaml.safe_dump(tree, sort_keys=False)


def apply_sizes(config: PipelineConfig, sizes: Sizes) -> PipelineConfig:
    """A frozen copy of ``config`` with these sizes."""
    splits = config.splits.model_copy(update={"n_splits": sizes.n_splits, "min_train_size": sizes.min_train_size})
    evaluation = config.evaluation.model_copy(update={"window": sizes.window})
    return config.model_copy(update={"splits": splits, "evaluation": evaluation})


def _fix(sizes: Sizes, fitted: Sizes, extra: dict[str, int] | None = None) -> str:
    changed = [f"{key}={fitted.get(key)}" for key in SHRINK_ORDER if fitted.get(key) != sizes.get(key)]
    changed += [f"{key}={value}" for key, value in (extra or {}).items()]
    return ", ".join(changed)


def _set_below_minimums(
    sizes: Sizes, floors: Sizes, n_times: int, gap: int, test_size: int
) -> tuple[Sizes, int] | None:
    """Sizes below the automatic minimums that fit (two folds; window, first training window and test
    folds scaled down together), and their test fold length; None when even those would be meaningless."""
    floors = Sizes(2, min(sizes.window, floors.window), min(sizes.min_train_size, floors.min_train_size))
    test = test_size
    room = n_times - 2 * gap
    total = floors.window + floors.min_train_size + floors.n_splits * test
    if total <= room:
        return floors, test
    scale = room / total
    window, train = int(floors.window * scale), int(floors.min_train_size * scale)
    test = (room - window - train) // floors.n_splits
    if window < SMALLEST_WINDOW or train < 10 or test < 5:
        return None
    return Sizes(2, window, train), test


def shorter_horizon(config: PipelineConfig, counts: np.ndarray) -> int | None:
    """The longest horizon below the configured one at which the sizes fit (as ``size_to_data`` would lower
    them), for a price target whose purge gap follows its horizon; None when no horizon does, or for a label
    target or a gap set by hand. The question changes with the horizon, so it is proposed, never applied.
    ``counts`` are taken at the configured horizon: a shorter one labels a few more of the last rows."""
    target = config.target
    if target.needs_label or target.label_delay is not None or config.splits.gap is not None:
        return None
    for horizon in range(target.horizon - 1, 0, -1):
        shorter = config.model_copy(update={"target": target.model_copy(update={"horizon": horizon})})
        if _lowered(shorter, counts) is not None:
            return horizon
    return None


def too_short_message(config: PipelineConfig, counts: np.ndarray, explicit: frozenset[str] = frozenset()) -> str:
    """Why the data does not fit, which keys to lower, and values that fit."""
    n_times, gap = len(counts), config.gap
    sizes = Sizes.of(config)
    test_size = config.splits.test_size or min_test_timestamps(counts)
    floors = smallest_sizes(config, counts)
    message = f"too little data: {n_times} timestamps after the features' warm-up, but {sizes.spelled(gap, test_size)}"
    within = _shrink(sizes, floors, SHRINK_ORDER, n_times, gap, test_size)
    if within is not None:
        blocked = [key for key in SHRINK_ORDER if within.get(key) != sizes.get(key) and key in explicit]
        set_by_user = f" ({', '.join(blocked)} set explicitly, so not lowered automatically)" if blocked else ""
        return f"{message}; with {_fix(sizes, within)} it fits{set_by_user}"
    least = Sizes(*(min(sizes.get(k), floors.get(k)) for k in SHRINK_ORDER))
    min_rows = config.promotion.min_rows
    if floors.window <= n_times:
        blocks = (
            f"{MIN_EVALUATION_ROWS} rows"
            if floors.window < MIN_EVALUATION_BLOCKS * config.block_length
            else f"{MIN_EVALUATION_BLOCKS} bootstrap blocks"
        )
        window = (
            f"evaluation.window {floors.window}, the fewest timestamps holding promotion.min_rows {min_rows} "
            f"and {blocks}"
        )
    else:
        window = f"all {n_times} timestamps hold {int(counts.sum())} rows, fewer than promotion.min_rows {min_rows}"
    message += (
        f"; even the smallest sizes chosen automatically ({least.spelled(gap, test_size)}; {window}) do not fit: "
        f"add at least {least.need(gap, test_size) - n_times} timestamps of data"
    )
    horizon = shorter_horizon(config, counts)
    if horizon is not None:
        message += (
            f", or predict {horizon} period{'s' if horizon > 1 else ''} ahead instead of {config.target.horizon}: "
            f"with --horizon {horizon} (target.horizon; the purge gaps follow it) the sizes fit"
        )
    below = _set_below_minimums(sizes, floors, n_times, gap, test_size)
    if below is None:
        return message + ("" if horizon is not None else " (it is too short to train and evaluate a model on)")
    fitted, test = below
    extra = {"splits.test_size": test} if config.splits.test_size and test < config.splits.test_size else {}
    rows = _rows_in_tail(counts, fitted.window)
    promotion = (
        f"; a {fitted.window}-timestamp evaluation window holds {rows} rows, below promotion.min_rows "
        f"{config.promotion.min_rows}: no model is promoted unless promotion.min_rows={rows} too"
        if rows < config.promotion.min_rows
        else ""
    )
    return f"{message}, or set smaller sizes yourself: with {_fix(sizes, fitted, extra)} it fits{promotion}"
