"""The ``driftline`` command. Heavy libraries are imported inside commands, so ``--help`` is instant."""

from __future__ import annotations

import atexit
import functools
import inspect
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypedDict

import typer
from rich.markup import escape

from driftline import tags as tagkeys
from driftline.errors import ConfigError, DriftlineError
from driftline.model_registry import ModelRegistry

if TYPE_CHECKING:
    from driftline.adapters.registry import MlflowStore

app = typer.Typer(
    help="Driftline: walk-forward training, calibration and promotion of time-series classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Offline by default: no telemetry, no progress bars in logs. Users can still override any of these.
OFFLINE_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "driftline",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # MLflow's own INFO lines (a new local store's "Creating initial MLflow database tables...") are not the
    # command's output; its warnings and errors still show.
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "GX_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    # A first local run migrates a fresh Prefect database; on a busy 2-core machine that can pass 20 s.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def _examples(*commands: str) -> str:
    """The epilog of a command's --help (blank lines keep rich from joining them; a list such as
    ``[logreg,lightgbm]`` escaped, or rich reads it as markup and drops it)."""
    return "Examples:\n\n" + "\n\n".join(f"  {escape(c)}" for c in commands)


# The column flags every command that reads raw rows takes, in this order at the end of its options.
COLUMN_OPTIONS = {
    "time_col": typer.Option("--time-col", help="Time column, when detection is not enough."),
    "price_col": typer.Option("--price-col", help="Price (close) column."),
    "symbol_col": typer.Option("--symbol-col", help="Symbol column."),
    "target_col": typer.Option("--target-col", help="Label column (label target)."),
}


class Columns(TypedDict):
    """The column flags' values, named like the flows' parameters (None: detect or keep the config's)."""

    time_col: str | None
    price_col: str | None
    symbol_col: str | None
    target_col: str | None


def with_column_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the column flags (--time-col, --price-col, --symbol-col, --target-col) and hand
    them to it as one ``columns`` argument, keyed like the flows' parameters (``time_col``, ...)."""
    signature = inspect.signature(command, eval_str=True)
    flags = [
        inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[str | None, option])
        for key, option in COLUMN_OPTIONS.items()
    ]

    kept = [p for p in signature.parameters.values() if p.name != "columns"]

    @functools.wraps(command)
    def run(**params: Any) -> None:
        columns = Columns(
            time_col=params.pop("time_col", None),
            price_col=params.pop("price_col", None),
            symbol_col=params.pop("symbol_col", None),
            target_col=params.pop("target_col", None),
        )
        command(**params, columns=columns)

    run.__signature__ = signature.replace(parameters=[*kept, *flags])  # type: ignore[attr-defined]
    return run


NAME_HELP = "Pipeline name; default: the --data file or folder stem (demo for the bundled demo panel)"
# --set where a command reads rows for a trained model: how they are read and checked (config.reading_overrides).
ReadingSets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="How the rows are read and checked: --set key=value for data.* and contract.* keys (repeatable; "
        "e.g. data.encoding=cp1252, contract.unique=warn); the rest is the model's own.",
    ),
]


def _reading_sets(items: list[str] | None, command: str) -> dict[str, Any] | None:
    """``--set`` items of a command that reads rows for a trained model, checked before Prefect starts."""
    from driftline.config import parse_set_options, reading_overrides

    try:
        return reading_overrides(parse_set_options(items), command) or None
    except DriftlineError as exc:
        _fail(exc)
    raise AssertionError("unreachable")


# What --data reads, where a command's own words take more than its option's line.
TRAIN_DATA_HELP = (
    "CSV/Parquet file, glob, folder (Hive partitions welcome) or s3://bucket/prefix/; "
    "the bundled demo panel if omitted."
)
MONITOR_DATA_HELP = (
    "The pipeline's source, grown by the new rows (earlier rows serve as feature history); "
    "the champion's recorded source if omitted."
)


def _pipeline_name(name: str | None, data: str | None) -> str:
    from driftline.config import pipeline_name_from_data

    return name or pipeline_name_from_data(data)


def _naming_line(model_name: str, name: str | None, data: str | None) -> str:
    """Which model a command works on, and where that name came from."""
    from driftline.config import pipeline_name_from_data

    if not name and data and model_name == f"driftline-{pipeline_name_from_data(data)}":
        return f"model {model_name} (named after --data {data}; pass --name to choose)"
    return f"model {model_name}"


class Target(StrEnum):
    direction = "direction"
    volatility = "volatility"
    label = "label"


class _NoTraceback(logging.Filter):
    """Our own errors are explained in one paragraph; their tracebacks would only bury the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], DriftlineError):
            record.exc_info = None
            record.exc_text = None
        return True


def _missing_data(data: str | None) -> DriftlineError | None:
    """A missing, empty or unreadable local source, found at once: before the local API starts."""
    if not data:
        return None
    if not data.startswith("s3://") and not any(c in data for c in "*?[") and not Path(data).expanduser().exists():
        from driftline.sources import nearest_path

        return DriftlineError(f"--data {data}: no such file or folder{nearest_path(data)}")
    from driftline.sources import preflight

    try:
        preflight(data)
    except DriftlineError as exc:
        return exc
    return None


def _require_data(data: str | None) -> None:
    missing = _missing_data(data)
    if missing is not None:
        _fail(missing)


def apply_offline_defaults() -> None:
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if os.environ.get("PREFECT_HOME"):
        # Prefect makes its home on import but not the folders above it: "UserWarning: Failed to create the
        # Prefect home directory" for a PREFECT_HOME under a folder that does not exist yet.
        Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
    if not any(k in os.environ for k in ("PREFECT_RESULTS_LOCAL_STORAGE_PATH", "PREFECT_LOCAL_STORAGE_PATH")):
        # Cached task results (keyed on data hash + config + code) beside the rest of Driftline's state.
        from driftline.config import Settings

        os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(Settings.from_env().home / "prefect-results")
    if "prefect.context" in sys.modules:  # imported before this command's environment (driftline.app.forkserver)
        sys.modules["prefect.context"].refresh_global_settings_context()


def _start_local_api() -> Any:
    """Start the local Prefect API now, when no server is configured, so it comes up while the caller
    imports its flows; ``_use_local_api`` before the first flow runs (driftline.app.local_api). A new local
    MLflow store starts as the environment's migrated template (driftline.app.db_templates)."""
    from driftline.adapters.templates import mlflow_template, seed
    from driftline.app.local_api import LocalPrefectApi
    from driftline.config import Settings

    tracking_file = Settings.from_env().tracking_file
    if tracking_file is not None:
        seed(tracking_file, mlflow_template())
    return LocalPrefectApi.start_if_needed()


def _importing(module: str) -> Callable[[], None]:
    def step() -> None:
        import importlib

        try:
            importlib.import_module(module)
        except ImportError:  # raised again, with its own message, by the task that needs it
            pass

    return step


def create_local_tracking_store() -> None:
    """A new local MLflow store (SQLite) creates its tables on first use, about 1 s of migrations; with one
    there already, or a tracking server, nothing. Any failure is left to the flow's first step, which meets
    it again and reports it in context."""
    from driftline.config import Settings

    settings = Settings.from_env()
    if settings.tracking_file is None or settings.tracking_file.exists():
        return
    from driftline.adapters.registry import MlflowStore

    try:
        MlflowStore.from_settings(settings).client.search_experiments(max_results=1)
    except Exception:  # noqa: BLE001 - see the docstring
        pass


# What a training run needs before its tasks can work (the data contract's and the Evidently report's
# imports, ~4 s; a new local MLflow store's tables, ~1 s), done in the wait for a local API that is still
# starting (a fresh database: several seconds), where it costs no time.
WHILE_THE_API_STARTS = (_importing("great_expectations"), _importing("evidently"), create_local_tracking_store)


def _use_local_api(api: Any, steps: tuple[Callable[[], None], ...] = ()) -> None:
    """Make ``api`` this process's Prefect API once it answers; while it is still starting, run ``steps``."""
    if api is None:
        return
    for step in steps:
        if api.ready():
            break
        step()
    try:
        api.activate()
    except RuntimeError as exc:
        _fail(DriftlineError(str(exc)))


class _StepHandler(logging.Handler):
    """Feeds the spinner: the last finished Prefect task, or the last thing Driftline's core said."""

    def __init__(self, update: Any) -> None:
        super().__init__(logging.INFO)
        self.update = update

    def emit(self, record: logging.LogRecord) -> None:
        task_run = getattr(record, "task_run_name", None)
        self.update(f"{task_run} finished" if task_run else record.getMessage()[:80])


@contextmanager
def _progress(what: str) -> Iterator[None]:
    """A spinner on stderr with the elapsed time and the latest step; a single line when not a terminal."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        typer.echo(f"{what} ...", err=True)
        yield
        return
    started = time.monotonic()
    loggers = [logging.getLogger("prefect.task_runs"), logging.getLogger("driftline")]
    with console.status(what) as status:
        handler = _StepHandler(lambda step: status.update(f"{what} [{time.monotonic() - started:.0f} s] {step}"))
        for logger in loggers:
            logger.addHandler(handler)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeHandler(handler)


def _error_names(cls: type[BaseException] = DriftlineError) -> set[str]:
    return {cls.__name__, *(name for sub in cls.__subclasses__() for name in _error_names(sub))}


class _ReportedByTheCli(logging.Filter):
    """The terminal shows a Driftline error once, as the CLI's ``error:`` line: Prefect's own copies on the
    console (the failed task's and flow's ``Finished in state Failed(...DataError: ...)`` and ``Encountered
    exception during execution``) are dropped there. The Prefect API (the UI's run logs) keeps them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(("prefect.task_runs", "prefect.flow_runs")):
            return True
        if record.exc_info and isinstance(record.exc_info[1], DriftlineError):
            return False
        message = record.getMessage()
        if record.levelno < logging.ERROR and "Failed(" not in message:  # a flow's final state is logged at INFO
            return True
        return not any(f"{name}:" in message or f"{name}(" in message for name in _error_names())


class _OutcomePrintedByTheCli(logging.Filter):
    """A flow's outcome is logged for the run's log in the Prefect UI (``tasks.outcome.publish``); the command
    prints the same outcome itself when the flow returns, so its console leaves the log record out."""

    def __init__(self, attribute: str) -> None:
        super().__init__()
        self.attribute = attribute

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, self.attribute, False)


def _quiet_driftline_tracebacks() -> None:
    from driftline.report import OUTCOME_RECORD

    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(_NoTraceback())
            if isinstance(handler, logging.StreamHandler):  # the console, not Prefect's API log handler
                handler.addFilter(_ReportedByTheCli())
                handler.addFilter(_OutcomePrintedByTheCli(OUTCOME_RECORD))


def _fail(exc: Exception) -> None:
    message = " ".join(str(exc).split()) if not isinstance(exc, DriftlineError) or "\n" not in str(exc) else str(exc)
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command(
    epilog=_examples(
        "driftline train",
        "driftline train --data prices.parquet --target direction --name btc --horizon 1",
        "driftline train --config configs/default.yaml --data s3://my-bucket/ohlcv/ --summary-json out/summary.json",
        "driftline train --data labels.csv --target label --target-col y --time-col ts",
        "driftline train --set splits.n_splits=3 --set models.families=[logreg,lightgbm]",
    )
)
@with_column_options
def train(
    config: Annotated[Path | None, typer.Option("--config", help="Pipeline YAML (configs/default.yaml).")] = None,
    data: Annotated[str | None, typer.Option("--data", help=TRAIN_DATA_HELP)] = None,
    name: Annotated[str | None, typer.Option("--name", help=NAME_HELP + "; registers driftline-<name>.")] = None,
    target: Annotated[Target | None, typer.Option("--target", help="What to predict.")] = None,
    horizon: Annotated[
        int | None,
        typer.Option(
            "--horizon",
            min=1,
            help="Rows ahead the target looks: a price target's (target.horizon); a label target predicts its "
            "column that many rows on (target.ahead).",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Any config key: --set key=value (repeatable; value as YAML, "
            f"e.g. splits.gap=3, {escape('models.families=[logreg,lightgbm]')}).",
        ),
    ] = None,
    summary_json: Annotated[Path | None, typer.Option("--summary-json", help="Write the run summary here.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Train again even if a finished run used the same data, config and code.")
    ] = False,
    *,
    columns: Columns,
) -> None:
    """Train every model family walk-forward, register the challenger and promote it if it earns it.

    A rerun on the same data, config and code registers nothing: it reports the earlier run (use --force).
    """
    from driftline.config import data_overrides, load_config, parse_set_options
    from driftline.summary import TrainingSummary, error_text

    def failed(exc: BaseException, **known: Any) -> None:
        # A failed run still leaves its summary (status: failed and the error) where one was asked for.
        if summary_json:
            _write_summary(summary_json, TrainingSummary.failed(error_text(exc), source=data, **known))

    try:
        sets = parse_set_options(set_)
    except DriftlineError as exc:
        failed(exc)
        _fail(exc)
    if horizon is not None:
        sets["target.horizon"] = horizon
    params: dict[str, Any] = {
        "config_file": str(config) if config else None,
        "data": data,
        "name": name,
        "target": target.value if target else None,
        **columns,
        "force": force,
        "overrides": sets or None,
    }
    overrides = {
        "name": name,
        "target.kind": params["target"],
        **data_overrides(data, **columns),
    }
    try:
        resolved = load_config(params["config_file"], overrides, sets=sets)  # fail fast, before Prefect starts
        if horizon is not None and resolved.target.needs_label:
            # A label is no price's horizon: --horizon N asks for the label N rows on (before: silently unused).
            sets["target.ahead"] = sets.pop("target.horizon")
            resolved = load_config(params["config_file"], overrides, sets=sets)
    except DriftlineError as exc:
        failed(exc)
        _fail(exc)
    missing = _missing_data(data)
    if missing is not None:
        failed(missing, model_name=resolved.model_name)
        _fail(missing)
    typer.echo(_naming_line(resolved.model_name, name, data), err=True)

    apply_offline_defaults()
    rerun = None if force else _finished_rerun(resolved)
    if rerun is not None:
        _report_training(rerun, summary_json)
        return
    api = _start_local_api()
    from driftline.ingest import check_columns

    try:  # while the API starts (the flow imports pandas anyway): a wrong column flag is said in a second
        check_columns(resolved.data, resolved.target.needs_label)
    except DriftlineError as exc:
        failed(exc, model_name=resolved.model_name)
        _fail(exc)
    from flows.training import train_and_promote

    _use_local_api(api, WHILE_THE_API_STARTS)

    _quiet_driftline_tracebacks()
    try:
        with _progress(f"training {resolved.model_name} on {data or resolved.data.path or 'the bundled demo panel'}"):
            summary = TrainingSummary.model_validate(train_and_promote(**params))
    except DriftlineError as exc:
        failed(exc, model_name=resolved.model_name)
        _fail(exc)
    except Exception as exc:
        from driftline.adapters.registry import tracking_unreachable
        from driftline.config import Settings

        explained = tracking_unreachable(exc, Settings.from_env().tracking_uri)
        failed(exc if explained is None else DriftlineError(explained), model_name=resolved.model_name)
        if explained is None:
            raise
        _fail(DriftlineError(explained))
    _report_training(summary, summary_json)


def _report_training(summary: Any, summary_json: Path | None) -> None:
    from driftline.report import render_summary

    typer.echo(render_summary(summary))
    if summary_json:
        _write_summary(summary_json, summary)
        typer.echo(f"summary written to {summary_json}")


def _finished_rerun(config: Any) -> Any:
    """The rerun summary when a finished run already trained on the same data, config and code, found
    without starting Prefect or opening an MLflow run (the flow makes the same check and would only
    report that run); None when there is none or the check cannot be made here (the flow then decides).

    A store that does not exist yet cannot hold a finished run: nothing is staged or imported for it. Nothing
    is staged here at all: only a source whose every object is unchanged since its last staging can be a
    rerun (new objects are left for the flow to read and report). A promotion's leftover intent record sends
    the command to the flow, whose first step repairs it.
    """
    import time

    from driftline.config import Settings

    settings = Settings.from_env()
    if settings.tracking_file is not None and not settings.tracking_file.exists():
        return None
    started = time.perf_counter()
    try:
        from driftline import code_version
        from driftline.adapters import registry
        from driftline.config import training_fingerprint
        from driftline.ingest import unchanged_data
        from driftline.report import rerun_summary

        unchanged = unchanged_data(config.data, settings.ingest_dir)
        if unchanged is None:
            return None  # new or changed data (the flow stages it and reports what it read), or no stage yet
        content_hash, stats = unchanged
        store = registry.MlflowStore.from_settings(settings)
        if store.models().intent(config.model_name) is not None:
            return None  # a promotion died half way: the flow repairs it first (flows.promotion)
        previous = store.finished_training(
            config.model_name, training_fingerprint(content_hash, config, code_version())
        )
    except Exception:  # noqa: BLE001 - an S3 hiccup or a store being migrated: the flow retries and reports it
        return None
    if previous is None:
        return None
    return rerun_summary(previous, None, stats, time.perf_counter() - started)


def _write_summary(path: Path, summary: Any) -> None:
    """The summary as strict JSON (NaN is written as null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary.to_json())


def _run_flow(
    flow_name: str,
    given_name: str | None,
    data: str | None,
    columns: Columns,
    sets: dict[str, Any] | None,
    module: str = "flows.scoring",
    **params: Any,
) -> dict[str, Any]:
    """Run a flow of ``module`` on ``data`` as the user's options read it (``--name``, the column options and
    ``--set``), behind the local API; a data error ends the command, with a hint when no ``--name`` was given
    (``given_name``) and the pipeline's name was derived from ``--data``."""
    hint = _derived_hint(given_name, data)
    apply_offline_defaults()
    api = _start_local_api()
    import importlib

    flows_module = importlib.import_module(module)
    _use_local_api(api)
    _quiet_driftline_tracebacks()
    try:
        return getattr(flows_module, flow_name)(data=data, **columns, sets=sets, **params)
    except DriftlineError as exc:
        _fail(DriftlineError(f"{exc}{hint}") if hint and hint not in str(exc) else exc)
    raise AssertionError("unreachable")


def _derived_hint(name: str | None, data: str | None) -> str:
    if name or not data:
        return ""
    return f" (the name was derived from --data {data}; pass --name to pick the pipeline)"


@app.command(
    epilog=_examples(
        "driftline score --data new-rows.csv --out scored.parquet",
        "driftline score --name btc --data s3://my-bucket/today/ --out scored.csv --shadow",
        "driftline score --name btc --data prices.csv --since 2024-01-01   (backfill: rows from that date)",
        "driftline score --name btc --data prices.csv --new-only   (what the daily score deployment does)",
        (
            "driftline score --name btc --data prices.csv --out scored.csv --explain 3   "
            "(+ each row's top-3 SHAP contributions)"
        ),
    )
)
@with_column_options
def score(
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Raw rows to score, with the history their features need; the champion's recorded source if omitted.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output file, .csv or .parquet; default under .driftline/scores/<model>/."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help=NAME_HELP + "; scores with driftline-<name>@champion.")
    ] = None,
    shadow: Annotated[bool, typer.Option("--shadow", help="Also score with the challenger, side by side.")] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Score only rows with timestamps >= this (ISO 8601); earlier rows are feature history."
        ),
    ] = None,
    new_only: Annotated[
        bool,
        typer.Option(
            "--new-only",
            help="Score only rows later than the newest already in the prediction log (per symbol); "
            "a series with none logged yet from after the champion's training cutoff.",
        ),
    ] = False,
    explain: Annotated[
        int | None,
        typer.Option(
            "--explain",
            metavar="K",
            help="Add each row's K largest SHAP contributions "
            "(explain_<i>_feature/_value, base, margin; docs/pipeline.md).",
        ),
    ] = None,
    set_: ReadingSets = None,
    *,
    columns: Columns,
) -> None:
    """Score raw rows with the champion: probability, decision and model version per row.

    Each batch is appended to the model's prediction log and logged to MLflow (rows, mean probability,
    champion version).
    """
    from driftline.timeline import parse_time_bound

    _require_data(data)
    sets = _reading_sets(set_, "score")
    try:
        parse_time_bound(since)  # fail fast, before Prefect starts
        if explain is not None and explain < 1:
            raise ConfigError(f"--explain {explain}: K must be at least 1 (and at most the model's number of features)")
    except DriftlineError as exc:
        _fail(exc)
    summary = _run_flow(
        "score_batch",
        name,
        data,
        columns,
        sets,
        out=str(out) if out else None,
        name=_pipeline_name(name, data),
        shadow=shadow,
        since=since,
        new_rows_only=new_only,
        explain=explain,
    )
    from driftline.report import render_scoring

    typer.echo(render_scoring(summary))


@app.command(epilog=_examples("driftline compare --name btc --data rows-with-outcomes.parquet"))
@with_column_options
def compare(
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Raw rows covering the scored period plus the horizon; the champion's recorded source if omitted.",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help=NAME_HELP + ".")] = None,
    set_: ReadingSets = None,
    *,
    columns: Columns,
) -> None:
    """The A/B test: shadow predictions of champion and challenger against realised labels."""
    sets = _reading_sets(set_, "compare")
    result = _run_flow("compare_shadow_flow", name, data, columns, sets, name=_pipeline_name(name, data))
    from driftline.report import render_comparison

    typer.echo(render_comparison(result))


@app.command(
    epilog=_examples(
        "driftline monitor --data prices.csv",
        "driftline monitor --name btc --data s3://my-bucket/ohlcv/ --retrain-on-drift --summary-json out/drift.json",
        "driftline monitor --name prices --data prices.csv --since 2008-01-01 --until 2009-12-31",
    )
)
@with_column_options
def monitor(
    data: Annotated[str | None, typer.Option("--data", help=MONITOR_DATA_HELP)] = None,
    name: Annotated[str | None, typer.Option("--name", help=NAME_HELP + " (model driftline-<name>).")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Judge rows from this timestamp on (ISO 8601); default: after the champion's training cutoff.",
        ),
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Judge rows up to this timestamp (inclusive).")] = None,
    summary_json: Annotated[Path | None, typer.Option("--summary-json", help="Write the drift summary here.")] = None,
    retrain_on_drift: Annotated[
        bool,
        typer.Option(
            "--retrain-on-drift", help="On drift, retrain in this process on the champion's source plus these rows."
        ),
    ] = False,
    set_: ReadingSets = None,
    *,
    columns: Columns,
) -> None:
    """Judge the rows after the champion's training cutoff (or --since/--until) against its training
    reference; emit driftline.drift.detected on drift.

    Without a champion, the newest registered version is monitored (and the output says so). A window
    without rows is not an error: the summary says "no rows to judge" and the exit code is 0.
    """
    _require_data(data)
    sets = _reading_sets(set_, "monitor")
    result = _run_flow(
        "monitor_drift",
        name,
        data,
        columns,
        sets,
        module="flows.monitoring",
        name=name,
        retrain_on_drift=retrain_on_drift,
        since=since,
        until=until,
    )
    from driftline.report import render_monitoring

    typer.echo(render_monitoring(result))
    if summary_json:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        from driftline.summary import json_safe

        summary_json.write_text(json.dumps(json_safe(result), indent=2, allow_nan=False))


@app.command(
    epilog=_examples(
        "DRIFTLINE_WEBHOOK_SECRET=$(openssl rand -hex 32) driftline webhook --host 0.0.0.0 --port 8787",
        "DRIFTLINE_WEBHOOK_SECRET=new,old driftline webhook   (rotation: both verify)",
    )
)
def webhook(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8787,
    outbox: Annotated[
        Path | None,
        typer.Option(
            "--outbox",
            help="The outbox database (default: $DRIFTLINE_HOME/relay/outbox.db); keep it on a persistent disk.",
        ),
    ] = None,
) -> None:
    """Signed-webhook relay: POST /v1/drift from outside monitors becomes a Prefect drift event.

    An accepted call is on disk (the outbox) before the 202 and is delivered to Prefect until the server
    has stored it, across restarts. Environment: DRIFTLINE_WEBHOOK_SECRET (required, 32+ bytes),
    DRIFTLINE_WEBHOOK_RATE_LIMIT (e.g. 60/60 per model; off by default), DRIFTLINE_METRICS_TOKEN (bearer
    token for GET /metrics; open without it).
    """
    from driftline.app.webhook import (
        MAX_AGE_SECONDS,
        METRICS_TOKEN_ENV,
        RATE_LIMIT_ENV,
        READ_TIMEOUT_SECONDS,
        SECRET_ENV,
        create_app,
        parse_rate_limit,
        parse_secrets,
        read_timeout_protocol,
        remember_found,
    )

    try:
        secrets = parse_secrets(os.environ.get(SECRET_ENV))
        rate_limit = parse_rate_limit(os.environ.get(RATE_LIMIT_ENV))
    except ValueError as exc:
        _fail(DriftlineError(str(exc)))
    apply_offline_defaults()
    # The relay logs outside any flow run: Prefect's API log handler would warn about that on every start.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    # A registry lookup must fail fast (the call is answered 503 within 5 s), not after MLflow's default
    # budget of 7 retries with backoff (about 4 minutes) and a 120 s timeout per try.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    import sqlite3

    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    from driftline.adapters import registry
    from driftline.app.events_api import events_api
    from driftline.app.outbox import CONFIRM_SECONDS, MAX_ATTEMPTS, DeliveryLoop, Outbox
    from driftline.config import PipelineConfig, Settings

    settings = Settings.from_env()
    models = registry.MlflowStore.from_settings(settings).models()
    try:
        api = events_api()
        store = Outbox(outbox or settings.home / "relay" / "outbox.db", max_age=MAX_AGE_SECONDS)
    except (RuntimeError, OSError, sqlite3.Error) as exc:
        _fail(DriftlineError(f"the relay cannot start: {exc}"))
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per delivery batch otherwise
    try:  # MLflow's client and store are set up now, not inside the first calls' lookup deadline
        models.exists(PipelineConfig(name="relay-warm-up").model_name)
    except Exception as exc:  # noqa: BLE001 - the registry is down: calls are answered 503 until it is back
        logging.getLogger("driftline.app.webhook").warning(
            "the registry did not answer at start (%s)", type(exc).__name__
        )
    try:  # tuning knobs (the drills shorten them): seconds before an unconfirmed event is sent again, tries
        confirm_seconds = float(os.environ.get("DRIFTLINE_WEBHOOK_CONFIRM_SECONDS") or CONFIRM_SECONDS)
        max_attempts = int(os.environ.get("DRIFTLINE_WEBHOOK_MAX_ATTEMPTS") or MAX_ATTEMPTS)
    except ValueError:
        _fail(DriftlineError("DRIFTLINE_WEBHOOK_CONFIRM_SECONDS / DRIFTLINE_WEBHOOK_MAX_ATTEMPTS: expected numbers"))
    delivery = DeliveryLoop(
        store, api.send, api.confirm, api.probe, max_attempts=max_attempts, confirm_seconds=confirm_seconds
    )
    app_ = create_app(
        secrets,
        store,
        model_exists=remember_found(
            lambda pipeline: models.exists(PipelineConfig(name=pipeline).model_name),
            ttl=60.0,
        ),
        rate_limit=rate_limit,
        metrics_token=os.environ.get(METRICS_TOKEN_ENV) or None,
        events_reachable=lambda: delivery.reachable,
        on_accept=delivery.wake,
    )
    delivery.start()
    try:
        uvicorn.run(
            app_,
            host=host,
            port=port,
            log_level="info",
            timeout_keep_alive=5,
            http=read_timeout_protocol(AutoHTTPProtocol, READ_TIMEOUT_SECONDS),
        )
    finally:
        delivery.stop()
        api.close()
        store.close()


def _store(name: str) -> tuple[MlflowStore, str]:
    """The MLflow store the environment names (one for the command) and the pipeline's model name."""
    apply_offline_defaults()
    from driftline.adapters.registry import MlflowStore
    from driftline.config import PipelineConfig, Settings

    return MlflowStore.from_settings(Settings.from_env()), PipelineConfig(name=name).model_name


@app.command(epilog=_examples("driftline history", "driftline history --name btc"))
def history(
    name: Annotated[str, typer.Option("--name", help="Pipeline name (model driftline-<name>).")] = "demo",
) -> None:
    """Print every alias move of a model: when, what, from which version to which, why, from which run."""
    from driftline.report import render_history

    try:
        store, model_name = _store(name)
        aliases: ModelRegistry = store.models()
        events = aliases.history(model_name)
        current = {a: aliases.alias_version(model_name, a) for a in ("champion", "challenger", "previous-champion")}
    except DriftlineError as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001 - registry unreachable or model unknown: one line, no traceback
        _fail(DriftlineError(f"cannot read the history of driftline-{name}: {type(exc).__name__}: {exc}"))
    typer.echo(render_history(model_name, events, current))


@app.command(
    epilog=_examples(
        "driftline rollback --name btc", "driftline rollback --name btc --to-version 4 --reason 'bad data in v5'"
    )
)
def rollback(
    name: Annotated[str, typer.Option("--name", help="Pipeline name (model driftline-<name>).")] = "demo",
    to_version: Annotated[
        str | None, typer.Option("--to-version", help="Version to restore; default previous-champion.")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Recorded in the history.")] = "manual rollback",
    force: Annotated[
        bool, typer.Option("--force", help="Allow a version its training rejected (the reason is recorded on it).")
    ] = False,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for the model's promotion lock.")] = 30.0,
) -> None:
    """Make a previous version the champion again, recorded in the history like any promotion.

    Takes the same per-model lock as a promotion (with a Prefect server); a version that training did not
    promote (decision reject or keep-champion) needs --force.
    """
    try:
        store, model_name = _store(name)
        current, target, note = _rollback_fenced(store, model_name, to_version, reason, force, wait)
    except DriftlineError as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001
        _fail(DriftlineError(f"rollback of driftline-{name} failed: {type(exc).__name__}: {exc}"))
    typer.echo(f"{model_name}: champion {current or '-'} -> {target} (previous-champion: {current or '-'})")
    if note:
        typer.echo(f"  forced: {note}")
    _announce_rollback(name, model_name, target, current, reason)


def _rollback_fenced(
    store: MlflowStore, model_name: str, to_version: str | None, reason: str, force: bool, wait: float
) -> tuple:
    """Under the promotion lock when a Prefect server is configured; without one there is no shared lock,
    but the fencing generation is still bumped, so a promotion in flight elsewhere stops at its next write."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        # Its steps are Prefect task runs outside a flow (recorded on the server): keep the terminal to one line.
        os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
        logging.getLogger("prefect.task_runs").setLevel(logging.WARNING)
        logging.getLogger("prefect._internal.concurrency").setLevel(logging.CRITICAL)  # a busy lock is reported below
        from flows.promotion import rollback_under_lock

        return rollback_under_lock(model_name, to_version, reason, force, timeout_seconds=wait, store=store)
    typer.echo(
        "no Prefect server (PREFECT_API_URL): no promotion lock to wait for; "
        "a promotion running elsewhere stops at its next write instead",
        err=True,
    )
    aliases: ModelRegistry = store.models()
    aliases.acquire_fence(model_name, f"rollback@{os.getpid()} (no lock server)")
    return aliases.rollback(model_name, to_version, reason, force)


def _announce_rollback(name: str, model_name: str, version: str, previous: str | None, reason: str) -> None:
    """``driftline.model.rolled-back`` for the notification automations, when a Prefect server is configured."""
    from prefect.settings import PREFECT_API_URL

    # From the environment or the active Prefect profile; without a server there is nobody to notify.
    if not PREFECT_API_URL.value():
        typer.echo("no Prefect server (PREFECT_API_URL): no rolled-back event sent to notify anyone")
        return
    from tasks.events import ROLLED_BACK_EVENT, emit_model_event, rollback_payload

    try:
        event_id = emit_model_event(ROLLED_BACK_EVENT, name, rollback_payload(model_name, version, previous, reason))
    except RuntimeError as exc:
        typer.secho(f"warning: the rollback is done, but no event was sent: {exc}", fg=typer.colors.YELLOW, err=True)
        return
    typer.echo(f"emitted {ROLLED_BACK_EVENT} (event {event_id})")


@app.command(
    epilog=_examples(
        "driftline reproduce --name demo --version 3",
        "driftline reproduce --name btc --version 7 --data ./copy-of-the-data.parquet --tolerance 1e-4",
    )
)
def reproduce(
    name: Annotated[str, typer.Option("--name", help="Pipeline name (model driftline-<name>).")] = "demo",
    version: Annotated[str, typer.Option("--version", help="Registered version to reproduce.")] = "1",
    data: Annotated[
        str | None, typer.Option("--data", help="Read the data from here instead of the recorded source.")
    ] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Largest accepted |difference| per metric.")] = 1e-6,
) -> None:
    """Retrain a registered version from its recorded config and data and say whether its metrics match.

    Nothing is registered and no cache is used: the walk-forward runs again from the source.

    The recorded git commit, uv.lock hash, code version, config and data hashes are compared with now.

    Exit code 0 when the metrics match, 1 when they do not.
    """
    from driftline import provenance
    from driftline.config import config_to_yaml, load_config
    from driftline.pipeline import walk_forward_from_source

    _require_data(data)
    try:
        store, model_name = _store(name)
        aliases: ModelRegistry = store.models()
        aliases.require(model_name, version)
        tags = aliases.version_tags(model_name, version)
        run_id = tags.get(tagkeys.RUN_ID)
        if not run_id:
            raise DriftlineError(
                f"{model_name} v{version} has no driftline.run_id tag: it was not registered by a training run"
            )
        metrics, run_tags = store.run_record(run_id)
        family = run_tags[tagkeys.FAMILY]
        recorded_yaml = store.load_run_text(run_id, "config/pipeline.yaml")
    except DriftlineError as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001 - registry unreachable or version unknown: one line, no traceback
        _fail(DriftlineError(f"cannot read driftline-{name} v{version}: {type(exc).__name__}: {exc}"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pipeline.yaml"
        path.write_text(recorded_yaml)
        try:
            config = load_config(path, {"data.path": data} if data else None)
            with _progress(
                f"retraining {model_name} v{version} ({family}, walk-forward from {data or 'the recorded source'})"
            ):
                run = walk_forward_from_source(config)
        except DriftlineError as exc:
            _fail(exc)
    current = provenance.collect(config_to_yaml(config), run.data_sha256, run.source)
    report = provenance.Reproduction(
        recorded={k.split(".", 1)[1]: v for k, v in metrics.items() if k.startswith(f"{family}.")},
        reproduced=run.result.pooled[family],
        tolerance=tolerance,
        environment_changes=provenance.environment_changes(tags, current),
    )
    typer.echo(f"{model_name} v{version}, run {run_id}, family {family}")
    typer.echo("\n".join(report.lines()))
    raise typer.Exit(0 if report.matches else 1)


@app.command(
    epilog=_examples(
        "driftline doctor",
        "MLFLOW_TRACKING_URI=http://mlflow:5000 PREFECT_API_URL=http://prefect:4200/api driftline doctor",
        "driftline doctor --json",
    )
)
def doctor(as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False) -> None:
    """Check the environment (versions, MLflow tracking, Prefect API, S3 credentials, webhook secret, disk) and say
    what to fix.

    Exit code 1 when a check fails; warnings do not fail.
    """
    from driftline.app import doctor as checks
    from driftline.config import Settings
    from driftline.provenance import project_dir

    folder = project_dir()
    results = checks.run_checks(os.environ, Settings.from_env().home, folder / "uv.lock" if folder else None)
    typer.echo(checks.as_json(results) if as_json else "\n".join(c.line() for c in results))
    failed = [c.name for c in results if c.status == checks.FAIL]
    if not as_json:
        typer.echo(f"{len(failed)} problem(s): {', '.join(failed)}" if failed else "ready")
    raise typer.Exit(1 if failed else 0)


@app.command(epilog=_examples("driftline version"))
def version() -> None:
    """Print the Driftline version."""
    from driftline import __version__

    typer.echo(__version__)


def main() -> NoReturn:
    """The console entry point (``driftline``): the command, then Python's own exit without its last step."""
    try:
        app()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    exit_without_teardown(code)


def exit_without_teardown(code: object) -> NoReturn:
    """Exit as the interpreter does, minus tearing down every module: a training run imports Prefect, MLflow,
    Great Expectations, Evidently and the model libraries, and freeing them one by one took 2 s of CPU at the
    end of every command, for nothing (the process is gone an instant later).

    What a normal exit does first still happens, in its order: threading's exit hooks and the join of
    non-daemon threads, then every ``atexit`` callback (Prefect's log and event flushes, the local API's
    release, weakref finalizers such as temporary folders, ``logging.shutdown``); then the standard
    streams are flushed and the process ends with the status ``sys.exit(code)`` would give.
    """
    shutdown = getattr(threading, "_shutdown", None)
    run_exit_callbacks = getattr(atexit, "_run_exitfuncs", None)
    if shutdown is None or run_exit_callbacks is None:  # another interpreter: the normal exit
        sys.exit(code)  # type: ignore[arg-type]
    if isinstance(code, str):  # what sys.exit("message") does: the message on stderr, status 1
        print(code, file=sys.stderr)
    status = code if isinstance(code, int) else (0 if code is None else 1)
    shutdown()
    run_exit_callbacks()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can reach it
            pass
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    main()
