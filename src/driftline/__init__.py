"""Driftline: walk-forward training, calibration and drift monitoring for time-series classifiers.

Importing this package is cheap: it loads neither Prefect nor MLflow (tasks and flows do).
"""

from driftline.errors import ConfigError, DataError, DriftlineError, InsufficientDataError, ValidationFailed

__version__ = "0.1.0"


def code_version() -> str:
    """``<version>+<sha256 of the package's sources>``: changes with any edit, for cache keys and lineage."""
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256(__version__.encode())
    for file in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"

__all__ = ["ConfigError", "DataError", "DriftlineError", "InsufficientDataError", "ValidationFailed", "__version__", "code_version"]
