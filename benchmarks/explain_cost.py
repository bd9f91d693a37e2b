"""What explanations cost on the bundled demo panel, per family (default hyperparameters): SHAP for every
row as `driftline score --explain 3` computes it, and the training run's SHAP summary plot (at most
SUMMARY_ROWS rows, figure drawn and saved as PNG). Not part of ``benchmarks.run``; numbers in
docs/pipeline.md ("Explaining scores").

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
    started = time.perf_counter()
    importlib.import_module("shap")  # what the first forest explanation pays once

    print(f"import shap: {time.perf_counter() - started:.2f} s")
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


if __name__ == "__main__":
    main(sys.argv[1:] or ["logreg", "random_forest", "xgboost", "lightgbm"])
