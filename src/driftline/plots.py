"""Figures for people: reliability diagram and ROC curve of out-of-sample predictions."""

from __future__ import annotations

from typing import Any

import numpy as np

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
