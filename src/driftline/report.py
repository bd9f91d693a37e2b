"""The training summary: one typed record (``TrainingSummary``; as strict JSON, the CLI's ``--summary-json``
contract) and its text forms."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftline.errors import in_zone, show_span, show_time
from driftline.promotion import Decision
from driftline.summary import TrainingSummary, json_safe
from driftline.training import baseline_fold_table, fold_table

if TYPE_CHECKING:
    from driftline.pipeline import Trained

# A log record with this attribute set is a flow's outcome (tasks.outcome.publish): the Prefect API keeps it
# for the run's log, the ``driftline`` command's console leaves it out (the command prints the outcome itself).
OUTCOME_RECORD = "driftline_outcome"
STRATEGY_KEYS = ("sharpe", "max_drawdown", "hit_rate", "turnover", "exposure")
TIMELINE_KEYS = ("data_start", "data_end", "training_cutoff")
FOLD_COLUMNS = (
    "fold",
    "test_start",
    "test_end",
    "n_train",
    "n_test",
    "accuracy",
    "auc",
    "brier",
    "log_loss",
    "ece",
    "brier_skill",
    "calibration",
)
POOLED_KEYS = ("accuracy", "auc", "brier", "log_loss", "ece", "brier_skill")
BASELINE_FOLD_COLUMNS = ("fold", "baseline", "accuracy", "auc", "log_loss")


def training_summary(
    trained: Trained,
    *,
    run_id: str,
    version: Any,
    aliases: dict[str, Any],
    decision: Decision,
    champion_before: str | None,
    loaded: Any,
    ingest: Any = None,
    data_seconds: float | None = None,
    data_path: dict[str, str] | None = None,
) -> TrainingSummary:
    """Everything a caller needs to know about a training run: what was ``trained`` (its contract report,
    quarantine, walk-forward, timeline and the sizes fitted to short data), registered and decided."""
    comparison = decision.comparison
    result, report = trained.result, trained.report
    selected = result.pooled[result.selected]
    return TrainingSummary.model_validate(
        json_safe(
            {
                **{k: trained.timeline.get(k) for k in TIMELINE_KEYS},
                "timezone": trained.config.data.timezone or getattr(loaded, "zone", None),  # LoadedData.shown_zone
                "run_id": run_id,
                "model_name": version.name,
                "model_version": None if version.version is None else str(version.version),
                "aliases": aliases["held"],
                "decision": decision.action,
                "reasons": [str(r) for r in decision.reasons],
                "champion_version_before": champion_before,
                "champion_version_after": aliases["champion"],
                "links": aliases.get("links", {}),
                "comparison": {
                    k: comparison.get(k) for k in ("baseline", "metric", "diff", "ci_low", "ci_high", "rows")
                },
                "evaluation": decision.scores,
                "data_hash": loaded.content_hash,
                "source": loaded.source,
                "columns": loaded.columns.describe() if getattr(loaded, "columns", None) else {},
                "target": trained.config.target.kind,
                "rows_in": report.rows_in,
                "rows_clean": report.rows_clean,
                "rows_quarantined": report.rows_quarantined,
                "quarantine_path": trained.quarantine_path,
                "contract_warnings": list(getattr(report, "warnings", [])),
                "data_warnings": list(getattr(loaded, "warnings", ())),
                "adjusted": dict(trained.sized.adjusted),
                "ingest": (ingest or loaded.stats).as_dict() if (ingest or getattr(loaded, "stats", None)) else None,
                "timings": {"data_seconds": data_seconds},
                "data_path": dict(data_path or {}),
                "selected_family": result.selected,
                "selection": result.selection_reason(),
                "metrics": result.summary_metrics(),
                "strategy": {k: selected[k] for k in STRATEGY_KEYS if k in selected},
                "families": {family: {k: metrics[k] for k in POOLED_KEYS} for family, metrics in result.pooled.items()},
                "folds": fold_table(result),
                # The naive baselines on the same folds (pooled walk-forward metrics); never the challenger.
                "baselines": {name: {k: metrics[k] for k in POOLED_KEYS} for name, metrics in result.baselines.items()},
                "best_baseline": result.best_baseline,
                "baseline_folds": baseline_fold_table(result),
                "edge": result.edge.as_dict() if result.edge is not None else None,
            }
        )
    )


def _summary(summary: TrainingSummary | dict[str, Any]) -> TrainingSummary:
    return summary if isinstance(summary, TrainingSummary) else TrainingSummary.model_validate(summary)


def _number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return _number(value)
    if value is None:
        return "n/a"
    if isinstance(value, str) and value.endswith("T00:00:00"):
        return value[:10]
    return str(value)


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    cells = [[_cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) for v, w in zip(values, widths, strict=True))

    return "\n".join([line(list(columns)), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def rerun_summary(previous: dict[str, Any], run_id: str | None, ingest: Any, seconds: float) -> TrainingSummary:
    """A rerun on the same data, config and code: the earlier run's results, said to be that.

    ``previous`` is that run's summary plus ``rerun_of`` (its run id); ``run_id`` is this run's, None when
    the CLI found the earlier run before opening one (``driftline train`` without ``--force``).
    """
    return TrainingSummary.model_validate(
        json_safe(
            {
                **previous,
                "status": "finished",
                "run_id": run_id,
                "rerun_of": previous["rerun_of"],
                "ingest": ingest.as_dict() if ingest is not None else None,
                "timings": {"data_seconds": seconds},
            }
        )
    )


def _comparison_line(summary: TrainingSummary) -> str:
    c = summary.comparison
    if c.get("diff") is None:
        return "Hold-out comparison: not run"
    return (
        f"Hold-out comparison vs {c['baseline']} on {c['rows']} rows: {c['metric']} difference {c['diff']:+.5f}, "
        f"CI [{c['ci_low']:+.5f}, {c['ci_high']:+.5f}] (negative = challenger better)"
    )


def _columns_line(columns: dict[str, Any]) -> list[str]:
    """``columns time 'year' + 'quarter', symbol 'country', close 'life_expectancy'``: what detection chose."""
    if not columns:
        return []
    parts = [f"time {' + '.join(repr(c) for c in columns['time'])}"]
    if columns.get("symbol"):
        parts.append(f"symbol {columns['symbol']!r}")
    if columns.get("symbol_from"):
        parts.append(f"symbol {columns['symbol_from']}")
    if columns.get("symbols_by_column"):
        tickers = columns["symbols_by_column"]
        shown = ", ".join(tickers[:5]) + (f" and {len(tickers) - 5} more" if len(tickers) > 5 else "")
        parts.append(f"a close per symbol's column ({shown})")
    parts += [f"{canonical} {source!r}" for canonical, source in columns.get("prices", {}).items()]
    if columns.get("target"):
        classes = columns.get("classes")
        named = f" ({classes['1']!r} is 1, {classes['0']!r} 0)" if classes else ""
        parts.append(f"target {columns['target']!r}{named}")
    if columns.get("features"):
        parts.append(f"{len(columns['features'])} feature columns")
    return [f"       columns {', '.join(parts)}"]


def _data_lines(summary: TrainingSummary) -> list[str]:
    lines = _columns_line(summary.columns)
    ingest = summary.ingest
    if ingest:
        lines.append(
            f"       read {ingest['read']} new or changed file(s) of {ingest['objects']}, "
            f"{ingest['unchanged']} unchanged from the stage"
            + (f", {len(ingest['removed'])} removed" if ingest["removed"] else "")
        )
    if summary.quarantine_path:
        lines.append(f"       quarantined rows and reasons: {summary.quarantine_path}")
    lines += [f"       warning: {w}" for w in summary.data_warnings]
    lines += [f"       warning: {w}" for w in summary.contract_warnings]
    # Settings changed for one reason (the feature windows, scaled together) share one line: lowered for short
    # data (a warning), the hold-out grown for long data (a note).
    by_reason: dict[tuple[str, bool], list[str]] = {}
    for key, change in summary.adjusted.items():
        grown = isinstance(change["to"], int) and isinstance(change["from"], int) and change["to"] > change["from"]
        by_reason.setdefault((change["reason"], grown), []).append(f"{key} {change['from']} -> {change['to']}")
    lines += [
        f"       {'note: long data' if grown else 'warning: short data'}: {', '.join(changes)} ({reason})"
        for (reason, grown), changes in by_reason.items()
    ]
    return lines


def _when(value: str | None, zone: str | None) -> str:
    """A time of the summary (UTC, ISO 8601) as the tables show it: on ``zone``'s clock with its offset."""
    if not value or not zone:
        return _cell(value)
    stamp: pd.Timestamp = in_zone(value, zone)
    shown: str = stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()
    return shown


def _timeline_lines(summary: TrainingSummary) -> list[str]:
    if not summary.data_start:
        return []
    zone = summary.timezone
    return [
        (
            f"       rows {_when(summary.data_start, zone)} .. {_when(summary.data_end, zone)}, "
            f"trained up to {_when(summary.training_cutoff, zone)} (training cutoff)"
            + (f", times in {zone}" if zone else "")
        )
    ]


def _fold_rows(summary: TrainingSummary) -> list[dict[str, Any]]:
    """The challenger's fold table, its test windows on the data's clock (``summary.timezone``)."""
    zone = summary.timezone
    return [
        {**row, **{k: _when(row.get(k), zone) for k in ("test_start", "test_end") if zone}} for row in summary.folds
    ]


def render_summary(summary: TrainingSummary | dict[str, Any]) -> str:
    """Human-readable summary for the terminal."""
    summary = _summary(summary)
    if summary.rerun_of:
        return "\n".join(
            [
                f"Driftline training: {summary.model_name}  (target: {summary.target})",
                f"data   {summary.source}",
                *_data_lines(summary),
                "",
                f"Same data, config and code as run {summary.rerun_of}: nothing retrained, nothing registered.",
                (
                    f"Its model: {summary.model_name} version {summary.model_version} (decision: {summary.decision}); "
                    "pass --force to train again."
                ),
            ]
        )
    families = [{"family": f, **m} for f, m in summary.families.items()]
    baselines = [
        {"baseline": b + (" (best)" if b == summary.best_baseline else ""), **m} for b, m in (summary.baselines).items()
    ]
    metrics = summary.metrics
    version = summary.model_version or "-"
    return "\n".join(
        [
            f"Driftline training: {summary.model_name}  (target: {summary.target})",
            f"data   {summary.source}",
            *_timeline_lines(summary),
            (
                f"       sha256 {(summary.data_hash or '')[:16]}…  rows in {summary.rows_in}, "
                f"clean {summary.rows_clean}, quarantined {summary.rows_quarantined}"
            ),
            *_data_lines(summary),
            "",
            f"Walk-forward folds of the challenger ({summary.selected_family}), calibrated, out of sample:",
            _table(_fold_rows(summary), FOLD_COLUMNS),
            "",
            *(
                [
                    "Naive baselines on the same folds (not models; never the challenger):",
                    _table(summary.baseline_folds, BASELINE_FOLD_COLUMNS),
                    "",
                ]
                if summary.baseline_folds
                else []
            ),
            "Pooled out-of-sample, every family:",
            _table(families, ("family", *POOLED_KEYS)),
            *(
                [
                    "Pooled out-of-sample, naive baselines (never the challenger):",
                    _table(baselines, ("baseline", *POOLED_KEYS)),
                ]
                if baselines
                else []
            ),
            f"challenger: {summary.selected_family} ({summary.selection})",
            "",
            "Pooled (challenger): " + ", ".join(f"{k} {_number(v)}" for k, v in metrics.items()),
            *(
                [
                    "Long/flat strategy on the calibrated probability: "
                    + ", ".join(f"{k} {_number(v, 3)}" for k, v in summary.strategy.items())
                ]
                if summary.strategy
                else []
            ),
            f"Registered {summary.model_name} version {version}, aliases: {', '.join(summary.aliases) or '-'}",
            _comparison_line(summary),
            (
                f"Decision: {summary.decision}  (champion before: {summary.champion_version_before or '-'}, "
                f"after: {summary.champion_version_after or '-'})"
            ),
            *(f"  {r}" for r in summary.reasons),
            f"MLflow run {summary.run_id}",
        ]
    )


def summary_markdown(summary: TrainingSummary | dict[str, Any]) -> str:
    """The same summary as a Prefect markdown artifact."""
    summary = _summary(summary)
    rows = "\n".join("| " + " | ".join(_cell(f.get(c, "")) for c in FOLD_COLUMNS) + " |" for f in summary.folds)
    return (
        f"## {summary.model_name} v{summary.model_version} — {summary.decision}\n\n"
        f"Challenger **{summary.selected_family}**: {summary.selection}\n\n"
        "| "
        + " | ".join(FOLD_COLUMNS)
        + " |\n|"
        + "---|" * len(FOLD_COLUMNS)
        + "\n"
        + rows
        + "\n\n"
        + _baselines_markdown(summary)
        + "\n".join(f"- {r}" for r in summary.reasons)
        + f"\n\nMLflow run `{summary.run_id}`, aliases {summary.aliases}\n"
        + _links_markdown(summary.links)
    )


def _baselines_markdown(summary: TrainingSummary) -> str:
    baselines = summary.baselines
    if not baselines:
        return ""
    scores = ", ".join(
        f"{name} {_number(m['log_loss'])}" + (" (best)" if name == summary.best_baseline else "")
        for name, m in baselines.items()
    )
    return f"Naive baselines, pooled walk-forward log loss (never the challenger): {scores}\n\n"


def _links_markdown(links: dict[str, str]) -> str:
    if not links:
        return (
            "\nOpen it with `make ui-mlflow` (local store): plots under the "
            "run's `plots/`, the Evidently report under `evidently/`.\n"
        )
    return (
        f"\n[MLflow run]({links['mlflow_run']}) (plots under `plots/`, Evidently report under `evidently/`)"
        f" · [model version]({links['mlflow_model']})\n"
    )


def artifact_key(prefix: str, name: str) -> str:
    """Prefect artifact keys allow only lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{prefix}-{name}".lower()).strip("-")


_CHECK = re.compile(r"^(PASS|FAIL) ([\w-]+): ")


def history_reason(reason: str, width: int = 90) -> str:
    """A history row's reason in ``width`` characters: a promotion's checks by name (the failed ones first),
    anything else cut at the width with an ellipsis."""
    checks = [_CHECK.match(part.strip()) for part in reason.split("; ")]
    if reason and all(checks):
        names = [m.group(2) for m in checks if m]
        failed = [m.group(2) for m in checks if m and m.group(1) == "FAIL"]
        reason = (
            f"failed {', '.join(failed)}; passed {len(names) - len(failed)} of {len(names)}"
            if failed
            else f"passed {len(names)} checks: {', '.join(names)}"
        )
    return reason if len(reason) <= width else reason[: width - 1].rstrip() + "…"


def render_history(model_name: str, events: list[dict[str, Any]], current: dict[str, str | None]) -> str:
    """The alias timeline of a model, oldest first, and where each alias points now."""
    rows = [
        {
            "at": e["at"][:19].replace("T", " ") + "Z",
            "action": e["action"],
            "alias": e["alias"],
            "from": e.get("previous") or "-",
            "to": e.get("version") or "-",
            "run": (e.get("run_id") or "-")[:12],
            "reason": history_reason(e.get("reason") or ""),
        }
        for e in events
    ]
    now = ", ".join(f"{alias}={version or '-'}" for alias, version in current.items())
    body = (
        _table(rows, ("at", "action", "alias", "from", "to", "run", "reason")) if rows else "(no alias moves recorded)"
    )
    return f"{model_name}: {now}\n{body}"


def data_timeline(development_times: Any, holdout_times: Any) -> dict[str, str | None]:
    """The rows a training run used: first and last timestamp trained or held out, and its cutoff."""

    def iso(values: Any, pick: Any) -> str | None:
        values = np.asarray(values)
        return pd.Timestamp(pick(values)).isoformat() if len(values) else None

    both = np.concatenate([np.asarray(development_times), np.asarray(holdout_times)])
    return {
        "data_start": iso(both, np.min),
        "data_end": iso(both, np.max),
        "training_cutoff": iso(development_times, np.max),
    }


def render_monitoring(result: dict[str, Any]) -> str:
    """A monitoring run's result as the terminal and the run's log show it: the verdict on which rows, the
    criteria, the report, the event and (``--retrain-on-drift``) what the retrain did."""
    head = f"{result['model_name']} v{result['model_version']}"
    zone = result.get("timezone")
    if result["rows"] == 0:
        lines = [f"{head}: no rows to judge"]
    else:
        verdict = "DETECTED" if result["drift_detected"] else "not detected"
        span = show_span(result["window_start"], result["window_end"], zone)
        lines = [f"{head}: drift {verdict} on {result['rows']} rows ({span})"]
    if result["monitored"] != "champion":
        lines.append(f"  note: {result['monitored']}")
    lines += [f"  {reason}" for reason in result["reasons"]]
    if result["drifted_features"]:
        lines.append(f"  drifted: {', '.join(result['drifted_features'][:15])}")
    if result["report_html"]:
        lines.append(f"report: {result['report_html']}")
    if result["event_id"]:
        lines.append(f"emitted driftline.drift.detected (event {result['event_id']})")
    if "retrain" in result:
        lines += _retrain_lines(result["retrain"])
    return "\n".join(lines)


def _retrain_lines(retrained: dict[str, Any]) -> list[str]:
    if retrained["skipped"]:
        return [f"retrain: skipped, {retrained['why']}"]
    zone = retrained.get("timezone")
    used = retrained["data_used"]
    head = (
        f"retrain: {retrained['model_name']} v{retrained['model_version']} {retrained['decision']}, trained on "
        f"{show_span(retrained['data_start'], retrained['training_cutoff'], zone)} "
        f"(held out to {show_time(retrained['data_end'], zone)})"
    )
    lines = [head]
    rows = used["rows"]
    if used.get("combined"):
        counts = ", ".join(f"{key.replace('_', ' ')} {count}" for key, count in rows.items())
        lines.append(f"  data: {used['path']} = {' + '.join(used['sources'])}; rows: {counts}")
    else:
        lines.append(f"  data: {used['path'] or 'the recorded source'}, the model's own source: {rows['total']} rows")
    return lines


def render_scoring(summary: dict[str, Any]) -> str:
    """A scoring batch as the terminal and the run's log show it: rows, versions, where they went."""
    versions = f"v{summary['model_version']}" + (
        f" and challenger v{summary['challenger_version']}" if summary["challenger_version"] else ""
    )
    zone = summary.get("timezone")
    window = (
        f" from {show_time(summary['since'], zone)}"
        if summary["since"]
        else (" (new rows only)" if summary["new_rows_only"] else "")
    )
    head = (
        f"scored {summary['rows_scored']} of {summary['rows_in']} rows{window} "
        f"with {summary['model_name']} {versions} -> {summary['out']}"
    )
    lines = [head]
    if summary.get("explain"):
        lines.append(
            f"with each row's top {summary['explain']} SHAP contributions "
            "to the base model's margin (explain_* columns)"
        )
    if summary.get("from_cutoff"):
        fresh = summary["from_cutoff"]
        lines.append(
            f"{len(fresh['series'])} series had nothing in the prediction log yet: scored from after "
            f"v{summary['model_version']}'s training cutoff, {show_time(fresh['cutoff'], zone)} "
            "(the rows it learnt from are not new to it; --since DATE scores earlier ones)"
        )
    if summary["mean_probability"] is not None:
        lines.append(f"mean probability {summary['mean_probability']:.4f} (MLflow run {summary['tracking_run_id']})")
    if summary["rows_skipped"]:
        lines.append(f"{summary['skipped']} (listed in {summary['skipped_file']})")
    lines.append(
        f"appended to the prediction log: {summary['log_file']}"
        if summary["log_file"]
        else "nothing new to append to the prediction log"
    )
    return "\n".join(lines)


def render_comparison(result: dict[str, Any]) -> str:
    """An A/B test on the shadow rows as the terminal and the run's log show it: the difference, the verdict
    and its checks."""
    c = result["comparison"]
    head = (
        f"{result['model_name']} {c.get('models', '')}: {c['metric']} difference {c['diff']:+.5f} "
        f"(challenger - champion), CI [{c['ci_low']:+.5f}, {c['ci_high']:+.5f}] on {c['rows']} rows"
    )
    lines = [head]
    if c.get("left_out"):
        lines.append(f"  left out: {c['left_out']}")
    lines.append(f"verdict: {result['action']}")
    lines += [f"  {'PASS' if r['passed'] else 'FAIL'} {r['check']}: {r['detail']}" for r in result["reasons"]]
    return "\n".join(lines)
