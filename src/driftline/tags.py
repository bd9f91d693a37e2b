"""Every ``driftline.*`` tag key Driftline writes on MLflow runs, model versions and registered models.

One place, so a reader of a tag and its writer cannot spell it differently (a unit test keeps other
modules from writing the literals again).
"""

from __future__ import annotations

PREFIX = "driftline."

# Runs
KIND = "driftline.kind"  # monitor | score
TARGET = "driftline.target"
TRIGGER = "driftline.trigger"
FINGERPRINT = "driftline.fingerprint"
RERUN_OF = "driftline.rerun_of"
ADJUSTED = "driftline.adjusted"
FOLD = "driftline.fold"
TUNING = "driftline.tuning"
FAMILY = "driftline.family"
SELECTION = "driftline.selection"
BEST_BASELINE = "driftline.best_baseline"
DECISION = "driftline.decision"
REASONS = "driftline.reasons"
CHAMPION_VERSION = "driftline.champion_version"
ROWS_JUDGED = "driftline.rows_judged"

# Provenance (runs and model versions)
GIT_COMMIT = "driftline.git_commit"
LOCK_SHA256 = "driftline.uv_lock_sha256"
CODE_VERSION = "driftline.code_version"
CONFIG_SHA256 = "driftline.config_sha256"
DATA_SHA256 = "driftline.data_sha256"
SOURCE = "driftline.source"
PYTHON = "driftline.python"

# Model versions
RUN_ID = "driftline.run_id"
TRAIN_CUTOFF = "driftline.train_cutoff"
THRESHOLD = "driftline.threshold"
THRESHOLD_OBJECTIVE = "driftline.threshold_objective"
ROLLED_BACK = "driftline.promotion.rolled_back"
FORCED_ROLLBACK = "driftline.forced_rollback"
ALIAS_PREFIX = "driftline.alias."

# Registered models
INTENT = "driftline.promotion.intent"
FENCE = "driftline.promotion.fence"
EVENT_PREFIX = "driftline.event."
LAST_RETRAIN = "driftline.last_retrain_at"
RETRAIN_FAILED = "driftline.retrain_failed"  # JSON: failures in a row since the last finished retrain
RETRAIN_SKIPPED_PREFIX = "driftline.retrain_skipped."


def alias_tag(alias: str) -> str:
    """The model-version tag recording the last move of ``alias`` onto that version."""
    return f"{ALIAS_PREFIX}{alias}"


def event_tag(stamp: str, alias: str) -> str:
    """The registered-model tag of one alias move (``stamp`` sorts in time)."""
    return f"{EVENT_PREFIX}{stamp}.{alias}"


def run_tag(key: str) -> str:
    """A run tag for a plain key (e.g. a monitoring window's ``window_start``)."""
    return f"{PREFIX}{key}"
