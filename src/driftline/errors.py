"""Errors a user can act on. Each message names the file, column or key and the problem."""


class DriftlineError(Exception):
    """Base class: the CLI prints these as one paragraph, without a traceback."""


class ConfigError(DriftlineError, ValueError):
    """A config key or value is wrong."""


class DataError(DriftlineError, ValueError):
    """Input data cannot be read or does not have what the pipeline needs."""


class SourceUnavailable(DataError):
    """The source (e.g. an S3 endpoint) cannot be reached right now; retrying may help."""

    transient = True


class ValidationFailed(DataError):
    """The data contract failed; nothing was trained or registered."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class InsufficientDataError(DataError):
    """Too few rows, or a split or slice with a single class."""


class ArtifactStoreFull(DriftlineError):
    """The MLflow artifact store has no space left (or refuses a file that large)."""
