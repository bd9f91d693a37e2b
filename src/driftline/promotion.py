"""Promotion decisions as plain objects: flows branch on ``Decision.promote``, never on a metric."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Action = Literal["promote", "keep-champion", "reject"]


@dataclass(frozen=True)
class Reason:
    """One check behind a decision, with its numbers."""

    check: str
    passed: bool
    detail: str
    value: float | None = None
    threshold: float | None = None

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.check}: {self.detail}"


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: list[Reason] = field(default_factory=list)

    @property
    def promote(self) -> bool:
        return self.action == "promote"

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "promote": self.promote, "reasons": [asdict(r) for r in self.reasons]}


def decide_first_promotion(champion_version: str | None, brier: float, base_brier: float) -> Decision:
    """The rule until champion/challenger comparison exists: promote only the first model, and only
    when its pooled out-of-sample Brier beats the base-rate predictor's.
    """
    if champion_version is not None:
        return Decision(
            "keep-champion",
            [Reason("champion-exists", False, f"champion is version {champion_version}; the new version stays challenger")],
        )
    beats = brier < base_brier
    reason = Reason(
        "beats-base-rate",
        beats,
        f"pooled out-of-sample Brier {brier:.5f} {'<' if beats else '>='} base-rate Brier {base_brier:.5f}",
        value=brier,
        threshold=base_brier,
    )
    return Decision("promote" if beats else "reject", [reason])
