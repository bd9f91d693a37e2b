"""What explanations cost on the bundled demo panel, per family (default hyperparameters): SHAP for every
row as `driftline score --explain 3` computes it, and the training run's SHAP summary plot (at most
SUMMARY_ROWS rows, figure drawn and saved as PNG); for the random forest, the same rows through SHAP's own
``TreeExplainer`` beside ours (XGBoost's TreeSHAP on the forest's trees), when shap (a dev dependency) is
installed. Not part of ``benchmarks.run``; numbers in docs/pipeline.md ("Explaining scores").

    python -m benchmarks.explain_cost [family ...]
"""

from __future__ import annotations

import importlib
import io
import sys
import time


def main(families: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from driftline.calibration import CalibratedModel
    from driftline.config import load_config
    from driftline.explain import SUMMARY_ROWS, explain_model, summary_rows, top_contributions
    from driftline.features import build_features
    from driftline.ingest import load_data
    from driftline.models import make_estimator
    from driftline.plots import shap_summary_figure

    config = load_config(None)
    loaded = load_data(config.data)
    features = build_features(loaded.frame, config.features, config.target)
    X = features.X
    print(f"demo panel: {len(X)} rows, {X.shape[1]} features")
    for family in families:
        model = CalibratedModel.from_config(
            make_estimator(family, config.models), config.calibration, gap=config.gap
        ).fit(X, features.y, features.times)
        started = time.perf_counter()
        model.predict_proba(X)
        predict = time.perf_counter() - started
        started = time.perf_counter()
        top_contributions(explain_model(model, X), 3)
        explain = time.perf_counter() - started
        summary = []
        for _ in range(3):
            started = time.perf_counter()
            rows = summary_rows(X, SUMMARY_ROWS)
            explanation = explain_model(model, rows)
            figure = shap_summary_figure(explanation.frame(), rows, explanation.space, explanation.method)
            figure.savefig(io.BytesIO(), format="png")
            plt.close(figure)
            summary.append(time.perf_counter() - started)
        print(
            f"{family:>13}: explain all rows (K=3) {explain:.2f} s, probabilities {predict:.2f} s; "
            f"SHAP summary ({min(len(X), SUMMARY_ROWS)} rows, best of 3) {min(summary):.2f} s"
        )
        if family == "random_forest":
            _against_shap(model.base_estimator_, X, explain)


def _against_shap(forest: object, X: object, ours: float) -> None:
    """SHAP's TreeExplainer on the same forest and rows: its import, its time and the largest difference."""
    import numpy as np

    from driftline.explain import explain_estimator

    try:
        started = time.perf_counter()
        shap = importlib.import_module("shap")
    except ImportError:
        print("  shap is not installed (it is a dev dependency): no comparison")
        return
    imported = time.perf_counter() - started
    started = time.perf_counter()
    values = np.asarray(shap.TreeExplainer(forest).shap_values(X))[..., 1]
    seconds = time.perf_counter() - started
    gap = np.abs(values - explain_estimator(forest, X).values).max()
    print(
        f"  SHAP TreeExplainer on the same rows: {seconds:.2f} s (ours {ours:.2f} s), import shap {imported:.2f} s; "
        f"largest difference {gap:.1e}"
    )


if __name__ == "__main__":
    main(sys.argv[1:] or ["logreg", "random_forest", "xgboost", "lightgbm"])
