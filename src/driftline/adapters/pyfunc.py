"""The pyfunc model every registered version is: MLflow pickles this class by its import path.

Its path is inside every registered model's ``python_model.pkl``, so it is kept in a module of its own that a
refactor of the store has no reason to move. Versions registered before the adapters/ layout pickled it as
``driftline.registry.CalibratedProbabilityModel``: ``driftline/registry.py`` resolves that one name here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel


class CalibratedProbabilityModel(PythonModel):
    """pyfunc wrapper: feature frame in, calibrated probability of class 1 and the decision at the model's
    threshold out, and the decision's ``class`` by the label's own names (up/down) where it named them."""

    def load_context(self, context: Any) -> None:
        import joblib

        self.model = joblib.load(context.artifacts["estimator"])
        self.features = json.loads(Path(context.artifacts["features"]).read_text())
        classes = context.artifacts.get("classes")  # versions registered before class names have none
        self.classes = json.loads(Path(classes).read_text()) if classes else None

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        probability = self.model.predict_proba(model_input[self.features])[:, 1]
        threshold = getattr(self.model, "threshold_", 0.5)
        out = pd.DataFrame({"probability": probability, "prediction": (probability >= threshold).astype(int)})
        classes = self.classes
        if classes:
            out["class"] = [classes[k] for k in out["prediction"]]
        return out
