"""Batch scoring outputs, the prediction log, and the shadow (A/B) comparison on realised labels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from driftline.config import ContractConfig, DecisionSpec
from driftline.contracts import show_row
from driftline.errors import InsufficientDataError, show_time
from driftline.features import GAP_REASON, HISTORY_REASON
from driftline.promotion import Decision, EvaluationSet, Scores, decide_promotion
from driftline.timeline import parse_time_bound

KEY = ["symbol", "timestamp"]


@dataclass(frozen=True)
class ModelRef:
    """A registered version and the run that trained it."""

    name: str
    version: str
    run_id: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def no_champion_to_score(model_name: str, newest: str | None, decision: str | None, reasons: str | None) -> str:
    """Why a model cannot score (no champion), and what to do: train one; or, when its newest version was
    trained and not promoted, the failed checks and the command that makes it the champion anyway."""
    if newest is None:
        return f"{model_name} has no champion to score with; train one first (driftline train)"
    failed = [r for r in (reasons or "").split("; ") if r.startswith("FAIL")]
    why = f" ({'; '.join(failed)})" if failed else ""
    what = "was rejected by its training" if decision == "reject" else f"has the training decision {decision!r}"
    return (
        f"{model_name} has no champion to score with: no version was promoted, and the newest, v{newest}, "
        f"{what}{why}. Train again (more data, other settings), or score with v{newest} anyway by making it the "
        f"champion: driftline rollback --name {model_name} --to-version {newest} --force --reason '<why>'"
    )


def scoring_contract(contract: ContractConfig) -> ContractConfig:
    """The contract as scoring applies it: every row check but two training requirements. No minimum of rows
    per symbol (a row is scored when its features have their history, so a recent listing's rows are not
    set aside as a short symbol's), and a label may be missing: the newest rows of a label series are the
    ones to score, their labels not known yet (the earlier ones feed the lagged-label features)."""
    columns = dict(contract.columns)
    if "target" in columns:
        columns["target"] = columns["target"].model_copy(update={"nullable": True})
    return contract.model_copy(update={"min_rows_per_symbol": 1, "columns": columns})


def assemble_predictions(
    rows: pd.DataFrame,
    champion: ModelRef,
    scores: pd.DataFrame,
    shadow: ModelRef | None = None,
    shadow_scores: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One output row per scored input row: probability, decision (and its ``class``, by the label's own names,
    where the model has them) and the version that made them.

    The shadow's scores (``keyed_scores``: its own rows, built with its own training config and features)
    join on (symbol, timestamp): empty where it could not score a row the champion scored.
    """
    out = rows[KEY].copy()
    out["probability"] = scores["probability"].to_numpy()
    out["decision"] = scores["prediction"].to_numpy().astype(int)
    if "class" in scores.columns:  # the label's own names of the decision (up/down), where it named them
        out["class"] = scores["class"].to_numpy()
    out["model_version"] = champion.version
    if shadow is not None and shadow_scores is not None:
        named = ["class"] if "class" in shadow_scores.columns else []
        theirs = out[KEY].merge(shadow_scores[[*KEY, "probability", "prediction", *named]], on=KEY, how="left")
        out["challenger_probability"] = theirs["probability"].to_numpy()
        out["challenger_decision"] = theirs["prediction"].astype("Int64").array  # empty where it did not score
        if named:
            out["challenger_class"] = theirs["class"].to_numpy()
        out["challenger_version"] = shadow.version
    return out


def keyed_scores(rows: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """A model's ``scores`` (probability, prediction) beside the (symbol, timestamp) of the ``rows`` it
    scored, row for row."""
    return pd.concat([rows[KEY].reset_index(drop=True), scores.reset_index(drop=True)], axis=1)


def with_explanations(predictions: pd.DataFrame, explanations: pd.DataFrame | None) -> pd.DataFrame:
    """The predictions with the explanation columns (driftline.explain.top_contributions) beside them, row for row."""
    if explanations is None:
        return predictions
    if len(explanations) != len(predictions):
        raise ValueError(f"{len(explanations)} explanations for {len(predictions)} predictions")
    return pd.concat([predictions, explanations.set_axis(predictions.index)], axis=1)


def write_table(frame: pd.DataFrame, path: Path, zone: str | None = None) -> None:
    """CSV or Parquet by the file's suffix. With ``zone`` (``data.timezone``: the rows came in its clock
    times), the UTC ``timestamp`` as that zone's time with its offset, as the rows were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if zone is not None and "timestamp" in frame.columns and pd.api.types.is_datetime64_any_dtype(frame["timestamp"]):
        frame = frame.assign(timestamp=pd.to_datetime(frame["timestamp"], utc=True).dt.tz_convert(zone))
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def append_prediction_log(predictions: pd.DataFrame, log_dir: Path, run_id: str) -> Path:
    """Append a batch to the model's prediction log (one Parquet file per batch, never rewritten)."""
    from driftline.sources import private_dir, private_file

    private_dir(log_dir)
    now = datetime.now(UTC)
    batch = predictions.assign(scored_at=pd.Timestamp(now).tz_localize(None), batch=run_id)
    path = log_dir / f"{now.strftime('%Y%m%dT%H%M%S%f')}-{run_id[:8]}.parquet"
    batch.to_parquet(path, index=False)
    private_file(path)
    return path


def read_prediction_log(log_dir: Path) -> pd.DataFrame:
    """Every logged batch of a model, oldest first."""
    files = sorted(log_dir.glob("*.parquet")) if log_dir.is_dir() else []
    if not files:
        raise InsufficientDataError(f"no prediction log under {log_dir}; run `driftline score --shadow` first")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def shadow_rows(log: pd.DataFrame) -> pd.DataFrame:
    """The log's shadow predictions (scored with a challenger beside the champion), the newest per row."""
    shadow = log.dropna(subset=["challenger_probability"]) if "challenger_probability" in log else log.iloc[0:0]
    return shadow.sort_values("scored_at").drop_duplicates(KEY, keep="last")


def newest_pair(log: pd.DataFrame) -> tuple[str, str] | None:
    """(champion, challenger) versions of the newest shadow prediction in the log, or None."""
    shadow = shadow_rows(log)
    if shadow.empty:
        return None
    last = shadow.sort_values("scored_at").iloc[-1]
    return str(last["model_version"]), str(last["challenger_version"])


def compare_shadow(
    log: pd.DataFrame,
    labels: pd.DataFrame,
    spec: DecisionSpec,
    cutoffs: dict[str, pd.Timestamp | None] | None = None,
) -> Decision:
    """The A/B test: champion and challenger predictions logged side by side, judged on realised labels.

    The newest prediction per (symbol, timestamp) counts; rows without a realised label are ignored. Only the
    newest pair of versions is judged (rows an earlier champion or challenger scored are left out), and with
    ``cutoffs`` (version -> its training cutoff) only rows after both versions' cutoffs plus ``spec.gap``, as
    the training run's hold-out comparison does: a row either one learnt from is in-sample for it, and the next
    ``gap`` share its label's horizon with the last training rows. What was left out is in
    ``comparison["left_out"]``.

    Raises:
        InsufficientDataError: no shadow prediction has a realised label yet, or none is out of sample.
    """
    import numpy as np

    shadow = shadow_rows(log)
    joined = shadow.merge(labels.dropna(subset=["y"]), on=KEY, how="inner").sort_values(["timestamp", "symbol"])
    pair = newest_pair(log)
    if pair is None or joined.empty:
        raise InsufficientDataError(
            "no shadow prediction has a realised label yet (score with --shadow, then wait for outcomes)"
        )
    left_out: list[str] = []

    def keep(rows: Any, what: str, none_left: str) -> pd.DataFrame:
        """``joined`` where ``rows``; the rest counted in ``left_out`` as ``what``; none left: ``none_left``."""
        rows = np.asarray(rows, dtype=bool)
        if not rows.all():
            left_out.append(f"{int((~rows).sum())} {what}")
        if not rows.any():
            raise InsufficientDataError(none_left)
        kept: pd.DataFrame = joined.loc[rows]
        return kept

    joined = keep(
        (joined["model_version"].astype(str) == pair[0]) & (joined["challenger_version"].astype(str) == pair[1]),
        "rows scored by earlier versions",
        f"no shadow prediction of v{pair[0]} vs v{pair[1]} (the newest pair) has a realised label yet; those of "
        "earlier versions do: wait for the outcomes of the rows scored since",
    )
    known = [(v, c) for v, c in (cutoffs or {}).items() if v in pair and c is not None]
    if known:
        version, cutoff = max(known, key=lambda vc: vc[1])
        # The first row new to both is ``spec.gap`` timestamps of the data's own timeline after the cutoff.
        timeline = np.unique(labels["timestamp"].to_numpy())
        first = int(np.searchsorted(timeline, np.datetime64(cutoff), side="right")) + spec.gap
        joined = keep(
            joined["timestamp"].to_numpy() >= timeline[first] if first < len(timeline) else np.zeros(len(joined)),
            f"rows up to v{version}'s training cutoff {show_time(cutoff)}"
            + (f" and the {spec.gap} after it" if spec.gap else ""),
            f"every shadow prediction with a realised label is of rows v{version} trained on (up to "
            f"{show_time(cutoff)}): score later rows with --shadow, then wait for their outcomes",
        )
    versions = f"v{pair[0]} vs v{pair[1]}"
    evaluation = EvaluationSet(
        y=joined["y"].to_numpy(dtype=int),
        times=joined["timestamp"].to_numpy(),
        symbols=joined["symbol"].to_numpy(),
        next_return=joined["next_return"].to_numpy() if "next_return" in joined else None,
        name="shadow",
    )
    champion = Scores(
        f"champion v{joined['model_version'].iloc[-1]}", joined["probability"].to_numpy(), joined["decision"].to_numpy()
    )
    challenger = Scores(
        "challenger",
        joined["challenger_probability"].to_numpy(dtype=float),
        joined["challenger_decision"].to_numpy(dtype=int),
    )
    decision = decide_promotion(evaluation, challenger, champion, spec)
    decision.comparison["models"] = versions
    decision.comparison["left_out"] = "; ".join(left_out) or None
    return decision


def last_scored(log_dir: Path) -> pd.Series:
    """Newest timestamp already in a model's prediction log, per symbol (empty without a log)."""
    files = sorted(log_dir.glob("*.parquet")) if log_dir.is_dir() else []
    if not files:
        return pd.Series(dtype="datetime64[ns]")
    logged = pd.concat([pd.read_parquet(f, columns=KEY) for f in files], ignore_index=True)
    return logged.groupby("symbol")["timestamp"].max()


def rows_in_range(
    rows: pd.DataFrame,
    since: pd.Timestamp | None = None,
    after: pd.Series | None = None,
    floor: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The rows to score: timestamps >= ``since``, and later than ``after`` (per symbol) when given; a symbol
    ``after`` lacks (nothing logged yet) from after ``floor`` (the model's training cutoff: the rows it learnt
    from are not new to it), or all its rows without one.

    Earlier rows have already served as feature history; they are not scored again.
    """
    keep = pd.Series(True, index=rows.index)
    if since is not None:
        keep &= rows["timestamp"] >= since
    last = rows["symbol"].map(after) if after is not None and not after.empty else None
    if floor is not None:
        last = pd.Series(floor, index=rows.index) if last is None else last.fillna(floor)
    if last is not None:
        # NaT (a symbol the log has not seen, no floor): the comparison is False, so all its rows stay.
        keep &= ~(rows["timestamp"] <= last)
    return rows.loc[keep].reset_index(drop=True)


def batch_metrics(predictions: pd.DataFrame) -> dict[str, float]:
    """What a scored batch is summarised by in the tracking store."""
    if predictions.empty:
        return {"rows": 0.0}
    return {
        "rows": float(len(predictions)),
        "mean_probability": float(predictions["probability"].mean()),
        "positive_rate": float(predictions["decision"].mean()),
        "symbols": float(predictions["symbol"].nunique()),
    }


def lacking_summary(lacking: pd.DataFrame, limit: int = 5) -> str:
    """A short human note on rows that could not be scored: the rows each series spent as feature history
    (how many earlier rows a row needs, and how to score from a date), rows with a gap in a feature after
    complete ones, and rows the data contract set aside (with their reasons)."""
    if lacking.empty:
        return "no row was skipped"
    reasons = lacking["reason"].astype(str)
    warm = reasons.str.startswith(HISTORY_REASON)
    notes = []
    if warm.any():
        per_symbol = lacking.loc[warm].groupby("symbol", sort=False).size()
        needed = int(per_symbol.max())
        last = reasons[warm].iloc[-1].removeprefix(HISTORY_REASON)  # the features that fill last
        if len(per_symbol) == 1:
            whose = f"the series' first {needed}"
        else:
            up_to = "" if per_symbol.nunique() == 1 else "up to "
            whose = f"{up_to}the first {needed} of each of {len(per_symbol)} series"
        notes.append(
            f"{int(warm.sum())} rows lacked history ({whose}; last to fill: {last}): "
            f"a row needs {needed} earlier rows of its series, so to score from a date, give that many rows "
            "before it and pass --since DATE"
        )
    gap = reasons.str.startswith(GAP_REASON)
    for chosen, what in (
        (gap, "after complete ones had a feature without a value (a missing input)"),
        (~warm & ~gap, "broke the data contract"),
    ):
        if chosen.any():
            first = lacking.loc[chosen].iloc[:limit]
            examples = "; ".join(
                show_row(s, t) + ("" if chosen is gap else f" ({r})")
                for s, t, r in zip(first["symbol"], first["timestamp"], first["reason"], strict=True)
            )
            notes.append(f"{int(chosen.sum())} rows {what}, e.g. {examples}")
    return "; ".join(notes)


__all__ = [
    "ModelRef",
    "append_prediction_log",
    "assemble_predictions",
    "batch_metrics",
    "compare_shadow",
    "keyed_scores",
    "lacking_summary",
    "last_scored",
    "parse_time_bound",
    "read_prediction_log",
    "rows_in_range",
    "with_explanations",
    "write_table",
]
