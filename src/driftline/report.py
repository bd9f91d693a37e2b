"""The training summary: one plain dict (the CLI's ``--summary-json`` contract) and its text form."""

from __future__ import annotations

import re
from typing import Any

from driftline.promotion import Decision
from driftline.training import WalkForwardResult, fold_table

STRATEGY_KEYS = ("sharpe", "max_drawdown", "hit_rate", "turnover", "exposure")
FOLD_COLUMNS = ("fold", "test_start", "test_end", "n_train", "n_test", "auc", "brier", "log_loss", "ece", "brier_skill")


def training_summary(
    *,
    run_id: str,
    model_name: str,
    model_version: str | None,
    aliases: list[str],
    decision: Decision,
    data_hash: str,
    source: str,
    rows_in: int,
    rows_clean: int,
    rows_quarantined: int,
    result: WalkForwardResult,
    target: str,
) -> dict[str, Any]:
    """Everything a caller needs to know about a training run, JSON-serialisable."""
    return {
        "run_id": run_id,
        "model_name": model_name,
        "model_version": model_version,
        "aliases": aliases,
        "decision": decision.action,
        "reasons": [str(r) for r in decision.reasons],
        "data_hash": data_hash,
        "source": source,
        "target": target,
        "rows_in": rows_in,
        "rows_clean": rows_clean,
        "rows_quarantined": rows_quarantined,
        "selected_family": result.selected,
        "selection": result.selection_reason(),
        "metrics": result.summary_metrics(),
        "strategy": {k: result.pooled[result.selected][k] for k in STRATEGY_KEYS if k in result.pooled[result.selected]},
        "families": {family: {k: metrics[k] for k in ("auc", "brier", "log_loss", "ece", "brier_skill")} for family, metrics in result.pooled.items()},
        "folds": fold_table(result),
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, str) and len(value) >= 10 and value[4] == "-":
        return value[:10]
    return str(value)


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    cells = [[_cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.rjust(w) for v, w in zip(values, widths))  # noqa: E731
    return "\n".join([line(list(columns)), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def render_summary(summary: dict[str, Any]) -> str:
    """Human-readable summary for the terminal."""
    families = [{"family": f, **m} for f, m in summary["families"].items()]
    metrics = summary["metrics"]
    version = summary["model_version"] or "-"
    return "\n".join(
        [
            f"Driftline training: {summary['model_name']}  (target: {summary['target']})",
            f"data   {summary['source']}",
            f"       sha256 {summary['data_hash'][:16]}…  rows in {summary['rows_in']}, clean {summary['rows_clean']}, "
            f"quarantined {summary['rows_quarantined']}",
            "",
            f"Walk-forward folds of the challenger ({summary['selected_family']}), calibrated, out of sample:",
            _table(summary["folds"], FOLD_COLUMNS),
            "",
            "Pooled out-of-sample, every family:",
            _table(families, ("family", "auc", "brier", "log_loss", "ece", "brier_skill")),
            f"challenger: {summary['selected_family']} ({summary['selection']})",
            "",
            "Pooled (challenger): " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
            *(
                ["Long/flat strategy on the calibrated probability: " + ", ".join(f"{k} {v:.3f}" for k, v in summary["strategy"].items())]
                if summary.get("strategy")
                else []
            ),
            f"Registered {summary['model_name']} version {version}, aliases: {', '.join(summary['aliases']) or '-'}",
            f"Decision: {summary['decision']}",
            *(f"  {r}" for r in summary["reasons"]),
            f"MLflow run {summary['run_id']}",
        ]
    )


def summary_markdown(summary: dict[str, Any]) -> str:
    """The same summary as a Prefect markdown artifact."""
    rows = "\n".join(
        "| " + " | ".join(_cell(f.get(c, "")) for c in FOLD_COLUMNS) + " |" for f in summary["folds"]
    )
    return (
        f"## {summary['model_name']} v{summary['model_version']} — {summary['decision']}\n\n"
        f"Challenger **{summary['selected_family']}**: {summary['selection']}\n\n"
        "| " + " | ".join(FOLD_COLUMNS) + " |\n|" + "---|" * len(FOLD_COLUMNS) + "\n" + rows + "\n\n"
        + "\n".join(f"- {r}" for r in summary["reasons"])
        + f"\n\nMLflow run `{summary['run_id']}`, aliases {summary['aliases']}\n"
    )


def artifact_key(prefix: str, name: str) -> str:
    """Prefect artifact keys allow only lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{prefix}-{name}".lower()).strip("-")
