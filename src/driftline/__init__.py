"""Driftline: walk-forward training, calibration and drift monitoring for time-series classifiers.

Importing this package is cheap: it loads neither Prefect nor MLflow (tasks and flows do).
"""

from driftline.errors import ConfigError, DataError, DriftlineError, InsufficientDataError, ValidationFailed

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "DriftlineError", "InsufficientDataError", "ValidationFailed", "__version__"]
