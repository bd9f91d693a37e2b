"""The only module that talks to MLflow: tracking runs, logged models, registry versions and aliases.

``MlflowStore`` is one tracking store and registry with its own client, built once per run from
``Settings`` and passed to the tasks that need it; ``MlflowAliasRegistry`` is its ``ModelRegistry``
(``driftline.model_registry``). Nothing here sets MLflow's process-wide URIs except ``MlflowStore._fluent``,
around the few fluent calls that have no client form. Everything takes an explicit ``run_id`` so it is safe
from Prefect's worker threads (MLflow's active-run stack is per thread).
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from driftline import tags as tagkeys
from driftline.adapters.pyfunc import CalibratedProbabilityModel
from driftline.config import Settings
from driftline.errors import ArtifactStoreFull
from driftline.faults import DRILL_KILL_ENV, DRILL_PAUSE_ENV, DRILL_RESUME_ENV, FaultHook, no_faults
from driftline.faults import from_environment as faults_from_environment
from driftline.model_registry import (
    ChampionMove,
    ChampionMoved,
    Fence,
    FenceLost,
    ModelRegistry,
    PromotionPending,
    read_fence,
    unknown_model,
    unknown_version,
)

logger = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
RUNTIME_PACKAGES = ("scikit-learn", "xgboost-cpu", "lightgbm", "pandas", "numpy", "joblib")


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    model_uri: str


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _is_full(exc: BaseException) -> bool:
    """An out-of-space error, raised here (local store) or reported back by a tracking server's artifact proxy."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _FULL:
            return True
        if any(text in str(seen) for text in ("No space left on device", "Disk quota exceeded", "File too large")):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _artifact_write(func):
    """Name the problem when an artifact write runs out of space: one clear error instead of a deep traceback.

    Wraps a store method ``(self, run_id, ..., artifact_file)``; the fault point ``artifact:<artifact_file>``
    is reached just before the write.
    """

    @functools.wraps(func)
    def wrapper(self: MlflowStore, run_id: str, *args: Any, **kwargs: Any) -> Any:
        self.faults(f"artifact:{args[-1] if args and isinstance(args[-1], str) else func.__name__}")
        try:
            return func(self, run_id, *args, **kwargs)
        except Exception as exc:
            if not _is_full(exc):
                raise
            try:
                location = self.client.get_run(run_id).info.artifact_uri
            except Exception:  # noqa: BLE001 - the message is still useful without it
                location = "the run's artifact location"
            what = (
                "the model"
                if func.__name__ == "log_model"
                else (args[-1] if args and isinstance(args[-1], str) else "an artifact")
            )
            raise ArtifactStoreFull(
                f"the MLflow artifact store is full: writing {what} of run {run_id} to {location} failed "
                f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]}). Free space there or point the "
                "experiment's artifact location elsewhere, then re-run; the run is marked FAILED"
            ) from exc

    return wrapper


_UNREACHABLE = (
    "Max retries exceeded",
    "Connection refused",
    "Failed to establish a new connection",
    "Connection reset",
)


def tracking_unreachable(exc: BaseException, tracking_uri: str | None = None) -> str | None:
    """One paragraph for the user when ``exc`` means the MLflow tracking server cannot be reached; else None."""
    import requests

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.exceptions.ConnectionError) or any(m in str(seen) for m in _UNREACHABLE):
            where = f" {redact_uri(tracking_uri)}" if tracking_uri else ""
            return (
                f"the MLflow tracking server{where} cannot be reached "
                f"({type(seen).__name__}); the run failed after retrying with backoff. Re-run when it is back: "
                "finished fits come from Prefect's cache, and a half-done promotion is rolled back first"
            )
        seen = seen.__cause__ or seen.__context__
    return None


def redact_uri(uri: str) -> str:
    """``uri`` without a password (``http://user:secret@host`` -> ``http://user:***@host``), for messages."""
    scheme, sep, rest = uri.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return uri
    userinfo, _, host = rest.partition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in userinfo else uri


# MLflow keeps its tracking and registry URIs in module globals; a few fluent APIs (logging a pyfunc model
# and registering it, loading one by a models:/ URI) have no client form and read them. This lock and
# MlflowStore._fluent are the one place Driftline sets them: for the duration of such a call only, then
# put back (globals and the environment variables MLflow exports), so two stores in one process never
# see each other's URIs.
_FLUENT_LOCK = threading.RLock()


class MlflowStore:
    """One MLflow tracking store and model registry, with its own client: built once per run (from
    ``Settings``) and handed to what writes or reads runs, artifacts and versions.

    ``faults`` is called with a fault point's name just before each registry and artifact write (see
    ``driftline.faults``); the default does nothing. Picklable (the client is rebuilt on first use), so
    it can cross into a Dask worker.
    """

    def __init__(
        self,
        tracking_uri: str,
        registry_uri: str | None = None,
        faults: FaultHook = no_faults,
        artifact_root: Path | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.faults = faults
        self.artifact_root = artifact_root
        self._client: MlflowClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings, faults: FaultHook | None = None) -> MlflowStore:
        """The store ``settings`` name; without ``faults``, the drills' hook when a drill variable
        (``DRIFTLINE_DRILL_KILL_AT`` / ``DRIFTLINE_DRILL_PAUSE_AT``) is set, else none."""
        return cls(
            settings.tracking_uri,
            settings.registry_uri or settings.tracking_uri,
            faults if faults is not None else faults_from_environment(os.environ),
            # Keep artifacts beside a SQLite file rather than in ./mlruns of whatever the cwd is.
            settings.home / "mlartifacts" if settings.tracking_uri.startswith("sqlite:") else None,
        )

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        return self._client

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}

    def __repr__(self) -> str:
        return f"MlflowStore(tracking={redact_uri(self.tracking_uri)!r}, registry={redact_uri(self.registry_uri)!r})"

    def models(self, fence: Fence | None = None) -> ModelRegistry:
        """The model registry of this store (aliases, promotion), writing under ``fence`` when given."""
        return MlflowAliasRegistry(self, fence)

    @contextmanager
    def _fluent(self) -> Iterator[None]:
        """MLflow's process-wide URIs point at this store for the duration (see ``_FLUENT_LOCK``)."""
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        with _FLUENT_LOCK:
            environment = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
            saved = tracking_utils._tracking_uri, registry_utils._registry_uri
            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.registry_uri)
            try:
                yield
            finally:
                tracking_utils._tracking_uri, registry_utils._registry_uri = saved
                for key, value in environment.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    # Experiments and runs

    def ensure_experiment(self, experiment: str) -> str:
        """The id of ``experiment``, created (artifacts beside a SQLite store) when missing."""
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            return str(found.experiment_id)
        location = self.artifact_root.as_uri() if self.artifact_root is not None else None
        try:
            return str(self.client.create_experiment(experiment, artifact_location=location))
        except MlflowException:  # created concurrently, else the original error stands
            raced = self.client.get_experiment_by_name(experiment)
            if raced is None:
                raise
            return str(raced.experiment_id)

    def start_run(self, experiment_id: str, run_name: str, tags: dict[str, str]) -> str:
        return str(self.client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id)

    def start_child_run(self, parent_run_id: str, run_name: str, tags: dict[str, str] | None = None) -> str:
        parent = self.client.get_run(parent_run_id)
        all_tags = {"mlflow.parentRunId": parent_run_id, **(tags or {})}
        return str(self.client.create_run(parent.info.experiment_id, run_name=run_name, tags=all_tags).info.run_id)

    def finish_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        items = list(params.items())
        for start in range(0, len(items), 100):
            self.client.log_batch(
                run_id, params=[mlflow.entities.Param(k, str(v)[:6000]) for k, v in items[start : start + 100]]
            )

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        import math
        import time

        now = int(time.time() * 1000)
        entries = [
            mlflow.entities.Metric(k, float(v), now, step)
            for k, v in metrics.items()
            if v is not None and math.isfinite(v)
        ]
        for start in range(0, len(entries), 500):
            self.client.log_batch(run_id, metrics=entries[start : start + 500])

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_tag(run_id, key, str(value)[:5000])

    def run_record(self, run_id: str) -> tuple[dict[str, float], dict[str, str]]:
        """A run's metrics (latest values) and tags."""
        data = self.client.get_run(run_id).data
        return dict(data.metrics), dict(data.tags)

    def find_finished_run(self, experiment: str, tag: str, value: str) -> str | None:
        """The latest FINISHED run of ``experiment`` whose ``tag`` equals ``value`` (None if there is none)."""
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            return None
        runs = self.client.search_runs(
            [found.experiment_id],
            filter_string=f"tags.`{tag}` = '{value}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return str(runs[0].info.run_id) if runs else None

    def finished_training(self, model_name: str, fingerprint: str) -> dict[str, Any] | None:
        """The summary (plus ``rerun_of``, its run id) of a finished training run of ``model_name`` on the same
        data, config and code (``fingerprint``) whose model version still exists; None when there is none."""
        run_id = self.find_finished_run(model_name, FINGERPRINT_TAG, fingerprint)
        if run_id is None:
            return None
        summary = self.load_run_dict(run_id, "summary.json")
        if not summary.get("model_version") or not self.version_exists(
            summary["model_name"], str(summary["model_version"])
        ):
            return None
        return {**summary, "rerun_of": run_id}

    def ui_links(self, run_id: str, model_name: str, version: str) -> dict[str, str]:
        """Where the run and the model version are in the MLflow UI, when the tracking store is a server."""
        uri = self.tracking_uri.rstrip("/")
        if not uri.startswith(("http://", "https://")):
            return {}
        experiment = self.client.get_run(run_id).info.experiment_id
        return {
            "mlflow_run": f"{uri}/#/experiments/{experiment}/runs/{run_id}",
            "mlflow_model": f"{uri}/#/models/{model_name}/versions/{version}",
        }

    # Artifacts

    @_artifact_write
    def log_dict(self, run_id: str, data: Any, artifact_file: str) -> None:
        self.client.log_dict(run_id, json.loads(json.dumps(data, default=str)), artifact_file)

    @_artifact_write
    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    @_artifact_write
    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        import matplotlib.pyplot as plt

        self.client.log_figure(run_id, figure, artifact_file)
        plt.close(figure)

    @_artifact_write
    def log_frame(self, run_id: str, frame: pd.DataFrame, artifact_file: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact_file).name
            frame.to_parquet(path, index=False)
            self.client.log_artifact(
                run_id, str(path), str(Path(artifact_file).parent) if "/" in artifact_file else None
            )

    @_artifact_write
    def log_file(self, run_id: str, path: Path, artifact_dir: str) -> str:
        """Log a local file; returns its artifact URI."""
        self.client.log_artifact(run_id, str(path), artifact_dir)
        return f"{self.client.get_run(run_id).info.artifact_uri}/{artifact_dir}/{path.name}"

    def _download(self, run_id: str, artifact_path: str, tmp: str) -> Path:
        return Path(self.client.download_artifacts(run_id, artifact_path, tmp))

    def load_run_dict(self, run_id: str, artifact_path: str) -> Any:
        with tempfile.TemporaryDirectory() as tmp:
            return json.loads(self._download(run_id, artifact_path, tmp).read_text())

    def load_run_text(self, run_id: str, artifact_path: str) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            return self._download(run_id, artifact_path, tmp).read_text()

    def load_run_frame(self, run_id: str, artifact_path: str) -> pd.DataFrame:
        with tempfile.TemporaryDirectory() as tmp:
            return pd.read_parquet(self._download(run_id, artifact_path, tmp))

    def log_dataset(
        self,
        run_id: str,
        frame: pd.DataFrame,
        source: str,
        content_hash: str,
        name: str,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Record the input (source URI, sha256, rows, schema) so a version can be traced to its exact data.

        A metadata-only dataset: the digest is our content hash and the schema is read off the first rows
        (columns have one dtype each). ``mlflow.data.from_pandas`` infers the schema over every row: 27 s for
        1M rows x 50 columns, for the same result.
        """
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.tracking.fluent import _create_dataset_input
        from mlflow.types.utils import _infer_schema

        with _quiet():
            dataset = MetaDataset(  # type: ignore[abstract]  # MLflow's own class; profile is optional at run time
                resolve_dataset_source(source),
                name=f"{name}@{content_hash[:12]}",
                digest=content_hash[:36],
                schema=_infer_schema(frame.head(1000)),
            )
        entry = _create_dataset_input(dataset, "training", {"sha256": content_hash, **(tags or {})})
        self.client.log_inputs(run_id, datasets=[entry] if entry is not None else None)

    # Models

    @_artifact_write
    def log_model(
        self,
        run_id: str,
        estimator: Any,
        features: list[str],
        input_example: pd.DataFrame,
        registered_name: str,
        classes: tuple[str, str] | None = None,
    ) -> RegisteredVersion:
        """Log the calibrated estimator as a pyfunc model and register a new version of ``registered_name``;
        ``classes``: the label's names of 0 and 1 (``ColumnMap.classes``), each prediction's ``class``."""
        import joblib
        from mlflow.models import infer_signature

        example = input_example[features].head(5)
        with tempfile.TemporaryDirectory() as tmp:
            estimator_path = Path(tmp) / "estimator.joblib"
            features_path = Path(tmp) / "features.json"
            joblib.dump(estimator, estimator_path)
            features_path.write_text(json.dumps(features))
            artifacts = {"estimator": str(estimator_path), "features": str(features_path)}
            if classes:
                (Path(tmp) / "classes.json").write_text(json.dumps(list(classes)))
                artifacts["classes"] = str(Path(tmp) / "classes.json")
            output = pd.DataFrame({"probability": estimator.predict_proba(example)[:, 1]})
            output["prediction"] = (output["probability"] >= getattr(estimator, "threshold_", 0.5)).astype(int)
            if classes:
                output["class"] = [classes[k] for k in output["prediction"]]
            # pyfunc.log_model has no client form: it logs into the active run and registers through the
            # process-wide URIs. Its prints ("Successfully registered model", "already exists. Creating a new
            # version…", "Created version") are muted: the run's own summary names the version.
            with self._fluent(), _active(run_id), _quiet(), _no_mlflow_prints():
                info = mlflow.pyfunc.log_model(
                    name=MODEL_ARTIFACT,
                    python_model=CalibratedProbabilityModel(),
                    artifacts=artifacts,
                    signature=infer_signature(example, output),
                    input_example=example,
                    pip_requirements=_requirements(),
                    registered_model_name=registered_name,
                )
        version = str(info.registered_model_version)
        logger.info("registered %s version %s", registered_name, version)
        return RegisteredVersion(
            name=registered_name, version=version, model_uri=f"models:/{registered_name}/{version}"
        )

    def version_exists(self, name: str, version: str) -> bool:
        try:
            self.client.get_model_version(name, version)
            return True
        except MlflowException:
            return False

    def registered_model_exists(self, name: str) -> bool:
        """Whether the registry has this model.

        Raises:
            MlflowException: the registry could not answer (down, refused, timed out): not the same as "no
                such model", which would turn an outage into a 404 for every caller.
        """
        try:
            self.client.get_registered_model(name)
            return True
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise

    def model_feature_names(self, uri: str) -> list[str]:
        """The input columns a logged model's signature expects, in order."""
        with self._fluent():
            info = mlflow.models.get_model_info(uri)
        return list(info.signature.inputs.input_names())

    def load_pyfunc(self, uri: str) -> Any:
        with self._fluent():
            return mlflow.pyfunc.load_model(uri)

    def predict_pyfunc(self, uri: str, frame: pd.DataFrame) -> pd.DataFrame:
        """Score ``frame`` with the pyfunc model at ``uri``, handing it only the columns its signature names:
        MLflow would warn about every other column (meta columns, newer features) and ignore it anyway."""
        model = self.load_pyfunc(uri)
        schema = model.metadata.get_input_schema()
        names = schema.input_names() if schema is not None and schema.has_input_names() else None
        return model.predict(frame[names] if names and set(names) <= set(frame.columns) else frame)

    def load_estimator(self, uri: str) -> Any:
        """The fitted ``CalibratedModel`` inside a logged pyfunc model (what ``predict`` calls), for explanations."""
        return self.load_pyfunc(uri).unwrap_python_model().model


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence MLflow's advice that is not actionable here (cloudpickle notice, int-column hint, pip)."""
    names = ("mlflow.pyfunc", "mlflow.utils.environment", "mlflow.utils.uv_utils", "mlflow.models.model")
    levels = {name: logging.getLogger(name).level for name in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for name in names:
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


@contextmanager
def _no_mlflow_prints() -> Iterator[None]:
    """MLflow's own stream (its ``eprint`` and its loggers' handler) off, as it was after (a process-wide flag:
    use it under ``MlflowStore._fluent``, whose lock serialises the threads that set it)."""
    from mlflow.utils.logging_utils import MLFLOW_LOGGING_STREAM

    enabled = MLFLOW_LOGGING_STREAM.enabled
    MLFLOW_LOGGING_STREAM.enabled = False
    try:
        yield
    finally:
        MLFLOW_LOGGING_STREAM.enabled = enabled


@contextmanager
def _active(run_id: str) -> Iterator[None]:
    """``run_id`` as MLflow's active run (call inside ``MlflowStore._fluent``)."""
    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        yield
        return
    with mlflow.start_run(run_id=run_id):
        yield


def _requirements() -> list[str]:
    pins = []
    for package in RUNTIME_PACKAGES:
        try:
            pins.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


INTENT_TAG = tagkeys.INTENT
FENCE_TAG = tagkeys.FENCE
FINGERPRINT_TAG = tagkeys.FINGERPRINT
_UNCHECKED = object()


class MlflowAliasRegistry:
    """Aliases, with every move recorded: as tags on the version and as a timeline on the registered model.

    A champion move is a small transaction: an intent record (registered-model tag ``tags.INTENT``)
    holds where ``champion`` and ``previous-champion`` pointed before, it is written before the first alias
    moves and cleared only when the promotion is committed (after the smoke test). ``champion`` is moved
    first, by overwriting (never deleted), so it never disappears. A leftover record means a promotion
    died half way; ``repair_promotion`` rolls it back (see there).
    """

    def __init__(self, store: MlflowStore | None = None, fence: Fence | None = None) -> None:
        self.store = store if store is not None else _environment_store()
        self.client = self.store.client
        self.fence = fence

    def with_fence(self, fence: Fence | None) -> MlflowAliasRegistry:
        """The same registry, writing under ``fence``."""
        return MlflowAliasRegistry(self.store, fence)

    def exists(self, name: str) -> bool:
        """Whether ``name`` is registered (raises when the registry cannot answer)."""
        return self.store.registered_model_exists(name)

    def require(self, name: str, version: str | None = None) -> None:
        """Check that ``name`` (and ``version`` of it, when given) is registered.

        Raises:
            NotRegistered: it is not; the message names the models or versions the registry does hold.
            MlflowException: the registry could not answer.
        """
        if not self.store.registered_model_exists(name):
            held = [model.name for model in self.client.search_registered_models(max_results=1000)]
            raise unknown_model(name, held, redact_uri(self.store.registry_uri))
        if version is not None and not self.store.version_exists(name, version):
            known = [str(v.version) for v in self.versions(name)]
            # search_model_versions leaves the aliases out (SQLite store): read them for the ten shown.
            raise unknown_version(
                name, version, [(v, self.aliases(name, v) if v in known[-10:] else []) for v in known]
            )

    def lock_key(self, name: str) -> str:
        """What names ``name``'s promotion lock: the model's name and the time this registry created it (ms).

        Every client of one registry finds the same key, whatever URI it reaches the registry by; two
        registries that share one Prefect server (a team's server and each person's local store, staging
        and production) hold a model of the same name under different keys, so they never wait on each
        other. A model not registered yet (nothing to promote) keys on its name alone.

        Raises:
            MlflowException: the registry could not answer.
        """
        try:
            created = self.client.get_registered_model(name).creation_timestamp
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return name
            raise
        return f"{name}-{created}"

    def acquire_fence(self, name: str, holder: str, lease_check: Callable[[], None] | None = None) -> Fence:
        """Bump the fencing generation of ``name`` (call right after taking its promotion lock); returns the
        fence every later write of this holder is checked against (see :meth:`check_fence`)."""
        generation, _ = read_fence(self.model_tag(name, FENCE_TAG))
        record = {"generation": generation + 1, "holder": holder, "at": datetime.now(UTC).isoformat()}
        self.client.set_registered_model_tag(name, FENCE_TAG, json.dumps(record))
        fence = Fence(name, generation + 1, holder, lease_check)
        self.fence = fence
        self.check_fence(name)  # read back: a concurrent holder that bumped at the same moment loses here
        return fence

    def check_fence(self, name: str, champion: Any = _UNCHECKED) -> None:
        """Immediately before a write: this holder still owns the lock (lease alive, generation unchanged)
        and ``champion`` (when given) is where this holder expects it. No fence: nothing to check.

        Raises:
            FenceLost: the lease is gone or a newer holder took the lock.
            ChampionMoved: the champion is not where this holder expects it.
        """
        fence = self.fence
        if fence is None:
            return
        if fence.lease_check is not None:
            fence.lease_check()
        generation, holder = read_fence(self.model_tag(name, FENCE_TAG))
        if (generation, holder) != (fence.generation, fence.holder):
            raise FenceLost(
                f"{name}: this holder ({fence.holder}, lock generation {fence.generation}) lost the promotion lock "
                f"to {holder or 'another holder'} (generation {generation}); it stopped before its next registry "
                "write. Check `driftline history` and re-run"
            )
        if champion is not _UNCHECKED:
            current = self.alias_version(name, "champion")
            if current != champion:
                raise ChampionMoved(
                    f"{name}: champion is {current or 'none'}, expected {champion or 'none'} just before a registry "
                    "write under the promotion lock; nothing more was written. Re-run"
                )

    def alias_version(self, name: str, alias: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def set_alias(
        self,
        name: str,
        alias: str,
        version: str,
        reason: str,
        run_id: str = "",
        action: str = "set",
        champion: Any = _UNCHECKED,
    ) -> None:
        """Point ``alias`` at ``version``; with a fence, only if this holder still owns the lock and the
        champion is ``champion`` (when given) just before the write."""
        previous = self.alias_version(name, alias)
        self.store.faults(alias)
        self.check_fence(name, champion)
        self.client.set_registered_model_alias(name, alias, version)
        self._record(name, alias, version, previous, reason, run_id, action)

    def _record(
        self, name: str, alias: str, version: str | None, previous: str | None, reason: str, run_id: str, action: str
    ) -> None:
        now = datetime.now(UTC)
        event = {
            "at": now.isoformat(),
            "action": action,
            "alias": alias,
            "version": version,
            "previous": previous,
            "reason": reason[:3000],
            "run_id": run_id,
        }
        key = tagkeys.event_tag(now.strftime("%Y%m%dT%H%M%S.%f"), alias)
        self.store.faults(f"{alias}-event")
        self.client.set_registered_model_tag(name, key, json.dumps(event))
        if version is not None:
            self.store.faults(f"{alias}-version-tag")
            self.client.set_model_version_tag(name, version, tagkeys.alias_tag(alias), json.dumps(event))

    def delete_alias(
        self, name: str, alias: str, reason: str, run_id: str = "", action: str = "delete", champion: Any = _UNCHECKED
    ) -> None:
        previous = self.alias_version(name, alias)
        if previous is not None:
            self.store.faults(alias)
            self.check_fence(name, champion)
            self.client.delete_registered_model_alias(name, alias)
            self._record(name, alias, None, previous, reason, run_id, action)

    def intent(self, name: str) -> dict[str, Any] | None:
        """The leftover (or in-flight) promotion record of ``name``, if any."""
        raw = self.model_tag(name, INTENT_TAG)
        return json.loads(raw) if raw else None

    def move_champion(self, move: ChampionMove, commit: bool = True) -> str | None:
        """Compare-and-set: make ``move.version`` the champion only if the champion is still ``move.expected``.

        The old champion becomes ``previous-champion``. With ``commit=False`` the intent record stays until
        ``commit_promotion`` (the caller smoke-tests first). Returns the old champion.

        Raises:
            ChampionMoved: another promotion changed the champion since this one was evaluated.
            PromotionPending: an earlier promotion's intent record is still there (run ``repair_promotion``).
        """
        name, version, expected, run_id, action = move.name, move.version, move.expected, move.run_id, move.action
        pending = self.intent(name)
        if pending is not None:
            raise PromotionPending(
                f"{name}: the promotion of version {pending['version']} by run {pending['run_id'] or '-'} "
                f"(started {pending['at']}) did not finish; the next training run repairs it"
            )
        current = self.alias_version(name, "champion")
        if current != expected:
            raise ChampionMoved(
                f"{name}: champion moved from {expected or 'none'} to {current or 'none'} while version {version} "
                "was being evaluated; re-run to compare against the new champion"
            )
        record = {
            "version": version,
            "champion": current,
            "previous_champion": self.alias_version(name, "previous-champion"),
            "run_id": run_id,
            "action": action,
            "at": datetime.now(UTC).isoformat(),
        }
        self.store.faults("intent")
        self.check_fence(name, current)
        self.client.set_registered_model_tag(name, INTENT_TAG, json.dumps(record))
        # Champion first: overwriting it is atomic, so readers see the old or the new one, never none.
        self.set_alias(name, "champion", version, move.reason, run_id, action, champion=current)
        if current is not None and current != version:
            self.set_alias(
                name, "previous-champion", current, f"replaced by version {version}", run_id, action, champion=version
            )
        if commit:
            self.commit_promotion(name, champion=version)
        return current

    def commit_promotion(self, name: str, champion: Any = _UNCHECKED) -> None:
        """The promotion is done (and smoke-tested): drop its intent record.

        Raises unless the record is gone afterwards: a commit that silently failed would be "repaired"
        back by the next run after the caller reported success.
        """
        self.store.faults("commit")
        self.check_fence(name, champion)
        try:
            self.client.delete_registered_model_tag(name, INTENT_TAG)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST" or self.intent(name) is not None:
                raise

    def repair_promotion(
        self, name: str, run_id: str = "", action: str = "repair", why: str = ""
    ) -> dict[str, Any] | None:
        """Roll back an uncommitted promotion from its intent record; returns the record (None: nothing to do).

        Rolled back, not forward: the record is cleared only after the smoke test, so a leftover one means
        the new champion was never smoke-tested. The old ``previous-champion`` is put back first, then the
        old champion (overwritten, never absent; deleted only when there was none), and each restore is
        recorded in the history. Idempotent: a repair that dies half way is finished by the next one.
        Call it only under the promotion lock, where no other promotion can be in flight.
        """
        record = self.intent(name)
        if record is None:
            return None
        failed = record["version"]
        reason = (
            why
            or f"promotion of version {failed} by run {record['run_id'] or '-'} "
            f"(started {record['at']}) was interrupted; rolled back"
        )
        self.store.faults("repair")
        found = self.alias_version(name, "champion")  # under the lock nobody else moves it: every write expects it
        restore = (name, reason, run_id, action, found)
        self._restore_alias("previous-champion", record["previous_champion"], *restore, always=False)
        self._restore_alias("champion", record["champion"], *restore, always=True)
        if self.store.version_exists(name, failed):
            self.client.set_model_version_tag(name, failed, tagkeys.ROLLED_BACK, reason[:5000])
        self.commit_promotion(name, champion=record["champion"])
        logger.warning("%s: %s", name, reason)
        return record

    def _restore_alias(
        self,
        alias: str,
        version: str | None,
        name: str,
        reason: str,
        run_id: str,
        action: str,
        found: str | None,
        always: bool,
    ) -> None:
        """Repair step: point ``alias`` at ``version`` (None: no alias) and record it. Skipped (unless
        ``always``) only when both the alias and its last recorded event already say ``version``: a repair
        killed between an alias write and its record leaves the alias right and the history wrong."""
        current = self.alias_version(name, alias)
        recorded = [e["version"] for e in self.history(name) if e["alias"] == alias]
        last = recorded[-1] if recorded else None
        if current == version and last == version and not always:
            return
        if version is not None:
            self.set_alias(name, alias, version, reason, run_id, action, champion=found)
        elif current is not None:
            self.delete_alias(name, alias, reason, run_id, action, champion=found)
        elif last is not None:  # already gone; only its record is missing
            self.check_fence(name, found)
            self._record(name, alias, None, last, reason, run_id, action)

    def restore_champion(self, name: str, previous: str | None, failed: str, reason: str, run_id: str) -> None:
        """Undo ``move_champion``: put ``previous`` back (or remove the alias if there was none)."""
        why = f"restored after version {failed} failed: {reason}"
        record = self.intent(name)
        if record is not None and record["version"] == failed:
            self.repair_promotion(name, run_id, "restore", why)
            return
        if previous is None:
            self.delete_alias(name, "champion", why, run_id, "restore", champion=failed)
            return
        self.set_alias(name, "champion", previous, why, run_id, "restore", champion=failed)

    def monitored(self, name: str) -> tuple[str, str | None, dict[str, str]]:
        """The version a monitor watches (the champion, else the newest version), a note when it is not
        the champion, and the version's tags.

        Raises:
            DriftlineError: nothing is registered under ``name``.
        """
        from driftline.timeline import monitored_version

        self.require(name)
        version, note = monitored_version(
            self.alias_version(name, "champion"), [str(v.version) for v in self.versions(name)], name
        )
        tags = self.version_tags(name, version)
        if note is not None and tags.get(tagkeys.DECISION):
            note += f" (its training decision: {tags[tagkeys.DECISION]})"
        return version, note, tags

    def rollback(
        self, name: str, to_version: str | None, reason: str, force: bool = False
    ) -> tuple[str | None, str, str | None]:
        """Make ``to_version`` (default: previous-champion) the champion, recorded as a rollback.

        A version its training did not promote needs ``force``; the forced move is recorded on the
        version (tag ``driftline.forced_rollback``) and in the history's reason.

        Returns:
            The old champion, the new one, and the note of a forced rollback (None otherwise).

        Raises:
            DriftlineError: nothing to roll back to, already champion, or a rejected version without force.
            NotRegistered: the model or the version does not exist.
        """
        from driftline.promotion import forced_rollback_note, rollback_target

        self.require(name)
        current = self.alias_version(name, "champion")
        versions = [str(v.version) for v in self.versions(name)]
        target = rollback_target(current, self.alias_version(name, "previous-champion"), to_version, versions)
        self.require(name, target)
        tags = self.version_tags(name, target)
        note = forced_rollback_note(
            target,
            tags.get(tagkeys.DECISION),
            tags.get(tagkeys.REASONS),
            force,
            reason,
            was_champion=tagkeys.alias_tag("champion") in tags,
        )
        if note is not None:
            self.check_fence(name, current)
            self.client.set_model_version_tag(name, target, tagkeys.FORCED_ROLLBACK, note[:5000])
        why = f"{reason} (forced: training decision was {tags[tagkeys.DECISION]})" if note else reason
        self.move_champion(ChampionMove(name, target, current, why, action="rollback"))
        return current, target, note

    def history(self, name: str) -> list[dict[str, Any]]:
        """Every recorded alias move of ``name``, oldest first (``NotRegistered`` for an unknown model)."""
        self.require(name)
        tags = self.client.get_registered_model(name).tags
        events = [json.loads(v) for k, v in tags.items() if k.startswith(tagkeys.EVENT_PREFIX)]
        return sorted(events, key=lambda e: e["at"])

    def model_tag(self, name: str, key: str) -> str | None:
        return self.client.get_registered_model(name).tags.get(key)

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        self.client.set_registered_model_tag(name, key, value)

    def versions(self, name: str) -> list[Any]:
        return sorted(self.client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))

    def aliases(self, name: str, version: str) -> list[str]:
        return sorted(self.client.get_model_version(name, version).aliases)

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(name, version).tags)

    def tag_version(self, name: str, version: str, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, version, key, str(value)[:5000])


__all__ = [
    "DRILL_KILL_ENV",
    "DRILL_PAUSE_ENV",
    "DRILL_RESUME_ENV",
    "ChampionMoved",
    "Fence",
    "FenceLost",
    "MlflowAliasRegistry",
    "MlflowStore",
    "ModelRegistry",
    "PromotionPending",
    "RegisteredVersion",
    "read_fence",
]


# Scripts and tests: the store the environment names (MLFLOW_TRACKING_URI, MLFLOW_REGISTRY_URI,
# DRIFTLINE_HOME), built afresh per call, so nothing process-wide is set. Production code builds one
# MlflowStore per run and passes it on (tests/unit/test_registry_uris.py keeps it from calling these).


def _environment_store() -> MlflowStore:
    return MlflowStore.from_settings(Settings.from_env())


def configure(settings: Settings, experiment: str) -> str:
    """The id of ``experiment`` in the store ``settings`` name (created when missing)."""
    return MlflowStore.from_settings(settings).ensure_experiment(experiment)


def start_run(experiment_id: str, run_name: str, tags: dict[str, str]) -> str:
    return _environment_store().start_run(experiment_id, run_name, tags)


def finish_run(run_id: str, status: str = "FINISHED") -> None:
    _environment_store().finish_run(run_id, status)


def log_model(
    run_id: str, estimator: Any, features: list[str], input_example: pd.DataFrame, registered_name: str
) -> RegisteredVersion:
    return _environment_store().log_model(run_id, estimator, features, input_example, registered_name)


def log_dict(run_id: str, data: Any, artifact_file: str) -> None:
    _environment_store().log_dict(run_id, data, artifact_file)


def load_run_dict(run_id: str, artifact_path: str) -> Any:
    return _environment_store().load_run_dict(run_id, artifact_path)


def load_run_frame(run_id: str, artifact_path: str) -> pd.DataFrame:
    return _environment_store().load_run_frame(run_id, artifact_path)


def load_estimator(uri: str) -> Any:
    return _environment_store().load_estimator(uri)


def registered_model_exists(name: str) -> bool:
    return _environment_store().registered_model_exists(name)


ENVIRONMENT_HELPERS = frozenset(
    {
        "configure",
        "start_run",
        "finish_run",
        "log_model",
        "log_dict",
        "load_run_dict",
        "load_run_frame",
        "load_estimator",
        "registered_model_exists",
    }
)
