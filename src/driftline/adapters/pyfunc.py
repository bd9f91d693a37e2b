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
    """pyfunc wrapper: feature frame in, calibrated probability of class 1 (and the 0.5 decision) out."""

    def load_context(self, context: Any) -> None:
        import joblib

        self.model = joblib.load(context.artifacts["estimator"])
        self.features = json.loads(Path(context.artifacts["features"]).read_text())

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        probability = self.model.predict_proba(model_input[self.features])[:, 1]
        threshold = getattr(self.model, "threshold_", 0.5)
        return pd.DataFrame({"probability": probability, "prediction": (probability >= threshold).astype(int)})
