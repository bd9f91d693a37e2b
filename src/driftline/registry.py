"""The import path registered models pickled before the adapters/ layout; nothing else lives here.

MLflow pickles a pyfunc model's class by its path: every version registered before the move names
``driftline.registry.CalibratedProbabilityModel``. That one name resolves, on first use only, to
``driftline.adapters.pyfunc``, so importing this module loads no MLflow. New code imports the adapter.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "CalibratedProbabilityModel":
        from driftline.adapters.pyfunc import CalibratedProbabilityModel

        return CalibratedProbabilityModel
    raise AttributeError(
        f"module {__name__!r} has no attribute {name!r} (the MLflow store is driftline.adapters.registry)"
    )
