"""Cache keys for Prefect tasks: the input's content hash, the config sections that shape the result and
the code version. Light on purpose: Dask workers import it (through ``tasks.training``) before their first fit."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from driftline import code_version
from driftline.config import FitSpec

CACHE_DAYS = 7


@cache
def _code() -> str:
    return code_version()


def content_cache_key(stage: str, content_hash: str, *configs: Any) -> str:
    """Key on a content hash (e.g. of a feature set), the config sections that shape the result and the
    code version: unchanged input under the same config and code is not processed twice, whichever run asks."""
    blob = json.dumps([c.model_dump(mode="json") if hasattr(c, "model_dump") else c for c in configs], sort_keys=True)
    return f"{stage}-{content_hash[:24]}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}-{_code()}"


def fit_cache_key(stage: str, features_digest: str, spec: FitSpec, *where: Any) -> str:
    """A fit's key: what it sees (the features' hash and, for one job, which rows and family) and the whole
    fit spec it is given, so nothing the fit reads can be missing from its key."""
    return content_cache_key(stage, features_digest, spec, *where)
