"""Walk-forward splitting on timestamps, scikit-learn compatible.

Folds are cut on distinct timestamps, not rows, so in a multi-symbol panel every symbol's row at time t
lands on the same side. ``gap`` timestamps between the end of training and the start of the test are
purged: a label at t looks h periods ahead, so with ``gap >= h`` no training label overlaps the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import KW_ONLY, dataclass
from typing import Literal

import numpy as np

from driftline.config import SplitConfig
from driftline.errors import InsufficientDataError


@dataclass(frozen=True)
class WalkForwardSplit:
    """Expanding or sliding walk-forward splitter (``split`` / ``get_n_splits`` like ``TimeSeriesSplit``).

    Args:
        n_splits: number of test folds, contiguous and in time order, ending at the last timestamp.
        test_size: timestamps per test fold; default ``default_test_size``: expanding, the first training
            window as long as a test fold (at least ``min_train_size``).
        gap: timestamps purged between each training window and its test fold.
        min_train_size: timestamps the first training window must have.
        scheme: ``expanding`` keeps all history; ``sliding`` keeps the last ``max_train_size`` timestamps.
        max_train_size: window length for ``sliding`` (default ``min_train_size``).
    """

    n_splits: int = 5
    _: KW_ONLY
    test_size: int | None = None
    gap: int = 0
    min_train_size: int = 1
    scheme: Literal["expanding", "sliding"] = "expanding"
    max_train_size: int | None = None

    def __post_init__(self) -> None:
        if self.n_splits < 1:
            raise ValueError("n_splits must be >= 1")
        if self.gap < 0:
            raise ValueError("gap must be >= 0")
        if self.scheme == "sliding" and self.max_train_size is None:
            object.__setattr__(self, "max_train_size", self.min_train_size)  # frozen: set once, here

    @classmethod
    def from_config(cls, splits: SplitConfig, gap: int) -> WalkForwardSplit:
        return cls(
            splits.n_splits,
            test_size=splits.test_size,
            gap=gap,
            min_train_size=splits.min_train_size,
            scheme=splits.scheme,
            max_train_size=splits.max_train_size,
        )

    def get_n_splits(self, X: object = None, y: object = None, groups: object = None) -> int:
        return self.n_splits

    def default_test_size(self, n_times: int) -> int:
        """Timestamps per test fold when ``test_size`` is not set.

        Expanding: the data after the purge gap in ``n_splits + 1`` equal parts, the first one the first
        training window (as scikit-learn's ``TimeSeriesSplit``), but never a first window shorter than
        ``min_train_size``. Spreading everything after ``min_train_size`` over the test folds instead let a
        250-row first window score a fifth of a 50k-row series: on the glucose series of
        ``benchmarks/quality.py`` that one fold's log loss (0.95 for LightGBM, against 0.10-0.12 on the
        others) put the pooled walk-forward result below "repeat the last label". Sliding: everything after
        ``min_train_size`` (every window is ``max_train_size`` long anyway).
        """
        after_min = (n_times - self.min_train_size - self.gap) // self.n_splits
        if self.scheme == "sliding":
            return after_min
        return min(after_min, (n_times - self.gap) // (self.n_splits + 1))

    def time_folds(self, n_times: int) -> list[tuple[range, range]]:
        """Positions of (train, test) timestamps for ``n_times`` distinct timestamps."""
        test_size = self.test_size or self.default_test_size(n_times)
        first_test = n_times - self.n_splits * test_size
        if test_size < 1 or first_test - self.gap < self.min_train_size:
            need = self.min_train_size + self.gap + self.n_splits * max(test_size, 1)
            raise InsufficientDataError(
                f"too little data for {self.n_splits} walk-forward folds: {n_times} timestamps, need at least "
                f"{need} (min_train_size {self.min_train_size} + gap {self.gap} + {self.n_splits} test folds); "
                "lower splits.n_splits or splits.min_train_size, or add data"
            )
        folds = []
        for k in range(self.n_splits):
            test_start = first_test + k * test_size
            train_end = test_start - self.gap
            train_start = 0 if self.scheme == "expanding" else max(0, train_end - (self.max_train_size or train_end))
            folds.append((range(train_start, train_end), range(test_start, test_start + test_size)))
        return folds

    def split(self, X: object, y: object = None, groups: object = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (train, test) row indices.

        Args:
            X: anything with a length (rows in time order).
            y: binary labels; when given, every training and test fold must hold both classes.
            groups: each row's timestamp; without it each row is its own timestamp.

        Raises:
            InsufficientDataError: too few timestamps, or a fold with a single class.
        """
        n_rows = len(X)  # type: ignore[arg-type]
        times = np.arange(n_rows) if groups is None else np.asarray(groups)
        if len(times) != n_rows:
            raise ValueError("groups must have one timestamp per row")
        unique_times, position = np.unique(times, return_inverse=True)
        labels = None if y is None else np.asarray(y)
        for k, (train_t, test_t) in enumerate(self.time_folds(len(unique_times)), start=1):
            train = np.flatnonzero((position >= train_t.start) & (position < train_t.stop))
            test = np.flatnonzero((position >= test_t.start) & (position < test_t.stop))
            if labels is not None:
                for part, rows in (("training", train), ("test", test)):
                    classes = np.unique(labels[rows])
                    if len(classes) < 2:
                        fix = (
                            f"a longer first window (it is {train_t.stop - train_t.start} timestamps; "
                            "splits.min_train_size sets the least; a seasonal series needs one that spans its "
                            "seasons), fewer folds"
                            if part == "training" and k == 1
                            else "fewer folds, a larger splits.test_size"
                        )
                        raise InsufficientDataError(
                            f"fold {k}: the {part} rows ({len(rows)}) hold a single class ({classes.tolist()}); "
                            f"use {fix}, or more data"
                        )
            yield train, test


def tail_cut(times: np.ndarray, n_tail: int, gap: int, what: str, hint: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Row positions before and in the last ``n_tail`` distinct timestamps, with ``gap`` timestamps
    purged between them so no earlier label looks into the tail.

    Raises:
        InsufficientDataError: fewer than two timestamps would be left before the tail; ``what`` says
            what the tail is for.
    """
    unique_times, position = np.unique(times, return_inverse=True)
    tail_start = len(unique_times) - n_tail
    head_end = tail_start - gap
    if head_end < 2:
        raise InsufficientDataError(
            f"the data is too short: {len(unique_times)} timestamps for {what} of {n_tail} plus a purge gap "
            f"of {gap}{hint}"
        )
    return np.flatnonzero(position < head_end), np.flatnonzero(position >= tail_start)


def calibration_cut(times: np.ndarray, fraction: float, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a training window (rows in time order) into a fitting part and a later calibration slice:
    the last ``fraction`` of distinct timestamps calibrate, after a purge of ``gap``.

    Raises:
        InsufficientDataError: the window is too short to cut.
    """
    n_cal = max(1, round(len(np.unique(times)) * fraction))
    return tail_cut(times, n_cal, gap, "a training window with a calibration slice")
