"""Registered models keep loading across code moves: MLflow pickles the pyfunc class by its import path.

``tests/data/registered_model_v1`` was saved (``mlflow.pyfunc.save_model``, as ``MlflowStore.log_model`` does)
by the code before the adapters/ layout, when the class lived at ``driftline.registry``: a champion registered
then must still load and score through the store.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from driftline.adapters import registry
from driftline.adapters.pyfunc import CalibratedProbabilityModel

OLD_MODEL = Path(__file__).resolve().parents[1] / "data" / "registered_model_v1"


def test_a_model_pickled_under_the_old_path_still_loads_and_scores(tmp_path):
    assert b"driftline.registry" in (OLD_MODEL / "python_model.pkl").read_bytes()  # it names the old path
    store = registry.MlflowStore(f"sqlite:///{tmp_path / 'mlflow.db'}")
    features = json.loads((OLD_MODEL / "artifacts" / "features.json").read_text())
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({name: rng.normal(size=40) for name in [*features, "symbol_code"]})
    scored = store.predict_pyfunc(str(OLD_MODEL), frame)
    expected = joblib.load(OLD_MODEL / "artifacts" / "estimator.joblib").predict_proba(frame[features])[:, 1]
    np.testing.assert_allclose(scored["probability"].to_numpy(), expected)
    assert scored["prediction"].tolist() == (expected >= 0.5).astype(int).tolist()
    assert isinstance(store.load_pyfunc(str(OLD_MODEL)).unwrap_python_model(), CalibratedProbabilityModel)


def test_new_models_pickle_the_adapter_path():
    """What a version registered now names: moving ``driftline.adapters.pyfunc`` needs the same care."""
    import cloudpickle

    pickled = cloudpickle.dumps(CalibratedProbabilityModel())
    assert b"driftline.adapters.pyfunc" in pickled and b"driftline.registry" not in pickled
