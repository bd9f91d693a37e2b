"""Figures for people: reliability, ROC and precision-recall curves, feature importance, metrics per fold and
the equity curve."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from driftline.metrics import reliability_curve


def _figure(title: str) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=110)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set_title(title)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    return fig, ax


def reliability_figure(y: np.ndarray, p: np.ndarray, p_uncalibrated: np.ndarray, n_bins: int = 10) -> Any:
    """Observed rate against mean predicted probability, before and after calibration."""
    fig, ax = _figure("Reliability (out-of-sample, equal-mass bins)")
    for label, probs, style in (("calibrated", p, "o-"), ("uncalibrated", p_uncalibrated, "s:")):
        curve = reliability_curve(y, probs, n_bins)
        ax.plot(curve["mean_predicted"], curve["observed_rate"], style, label=label)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed rate")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def roc_figure(y: np.ndarray, p: np.ndarray) -> Any:
    """ROC curve with its AUC."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = _figure("ROC (out-of-sample)")
    fpr, tpr, _ = roc_curve(y, p)
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(y, p):.3f}")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def _plain_figure(title: str, size: tuple[float, float] = (7.5, 4.5)) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=110)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig, ax


def pr_figure(y: np.ndarray, p: np.ndarray) -> Any:
    """Precision against recall, with average precision and the base rate (what a coin would get)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig, ax = _plain_figure("Precision-recall (out-of-sample)", (5.5, 5))
    precision, recall, _ = precision_recall_curve(y, p)
    ax.plot(recall, precision, label=f"AP {average_precision_score(y, p):.3f}")
    ax.axhline(float(np.mean(y)), linestyle="--", color="grey", linewidth=1, label=f"base rate {np.mean(y):.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def importance_figure(importance: pd.Series, what: str, top: int = 20) -> Any:
    """The ``top`` features by the model's own importance, largest at the top."""
    shown = importance.sort_values(ascending=False).head(top)[::-1]
    fig, ax = _plain_figure(f"Feature importance ({what})", (7.5, max(3.0, 0.3 * len(shown) + 1.2)))
    ax.barh(shown.index.astype(str), shown.to_numpy())
    ax.set_xlabel(what)
    fig.tight_layout()
    return fig


def fold_metrics_figure(folds: pd.DataFrame, metrics: tuple[str, ...] = ("auc", "brier", "ece")) -> Any:
    """Each family's metrics per walk-forward fold, at the end of the fold's test window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(metrics), 1, figsize=(7.5, 2.4 * len(metrics)), dpi=110, sharex=True)
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        for family, rows in folds.groupby("family", sort=True):
            rows = rows.sort_values("test_end")
            ax.plot(pd.to_datetime(rows["test_end"]), rows[metric], "o-", label=str(family))
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_title("Out-of-sample metrics per fold (x: end of the fold's test window)")
    np.atleast_1d(axes)[0].legend(loc="best", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def equity_figure(book: pd.DataFrame) -> Any:
    """Cumulative log return of the long/flat strategy after costs against equal-weight buy and hold."""
    fig, ax = _plain_figure("Equity (out-of-sample, long/flat on the calibrated probability, after costs)")
    times = pd.to_datetime(book.index)
    ax.plot(times, book["pnl"].cumsum().to_numpy(), label="strategy")
    ax.plot(times, book["market"].fillna(0.0).cumsum().to_numpy(), label="buy and hold", alpha=0.7)
    ax.set_ylabel("cumulative log return")
    ax.legend(loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def shap_summary_figure(values: pd.DataFrame, inputs: pd.DataFrame, space: str, method: str, top: int = 15) -> Any:
    """SHAP summary (beeswarm): per feature, each row's contribution, coloured by the feature's value.

    Features are ordered by mean |contribution|, largest at the top; colour is the value's rank within its
    column (low blue, high red), so features on different scales share one colour bar.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = values.abs().mean().sort_values(ascending=False).head(top).index[::-1]
    fig, ax = _plain_figure(
        f"SHAP summary on {len(values)} rows ({space}; {method})", (8.0, max(3.0, 0.35 * len(order) + 1.5))
    )
    ax.title.set_fontsize("small")
    rng = np.random.default_rng(0)
    scatter = None
    for position, feature in enumerate(order):
        colour = inputs[feature].rank(pct=True).to_numpy()
        jitter = rng.uniform(-0.25, 0.25, len(values))
        scatter = ax.scatter(
            values[feature].to_numpy(),
            position + jitter,
            c=colour,
            cmap="coolwarm",
            vmin=0,
            vmax=1,
            s=6,
            alpha=0.6,
            linewidths=0,
        )
    ax.axvline(0.0, color="grey", linewidth=1)
    ax.set_yticks(range(len(order)), [str(f) for f in order])
    ax.set_xlabel(f"contribution to the base model's {space} (SHAP value)")
    if scatter is not None:
        bar = plt.colorbar(scatter, ax=ax, ticks=[0, 1])
        bar.ax.set_yticklabels(["low", "high"])
        bar.set_label("feature value (rank)")
    fig.tight_layout()
    return fig
