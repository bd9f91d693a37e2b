"""What promotion, rollback, history and the CLI need of a model registry: a small protocol, its lock
fence and its errors. The MLflow adapter (``driftline.adapters.registry.MlflowAliasRegistry``) implements it; this
module imports neither MLflow nor Prefect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from driftline.errors import DriftlineError


class ChampionMoved(DriftlineError):
    """The champion alias moved between evaluation and promotion; the comparison is stale."""


class PromotionPending(DriftlineError):
    """A promotion's intent record is still on the model: one is running or was interrupted."""


class NotRegistered(DriftlineError):
    """The registry has no such model, or no such version of it; the message names what it does hold."""


class FenceLost(DriftlineError):
    """This holder no longer owns the model's promotion lock (its lease ran out, or a newer holder took the
    lock and bumped the fencing generation); it must not write any alias."""


@dataclass(frozen=True)
class Fence:
    """A holder's claim on a model's promotion lock: the generation it bumped the fence tag to on acquiring.

    ``lease_check`` (set by the orchestration layer that holds the lock) raises :class:`FenceLost` when the
    lock's lease is gone; None where there is no lock server (then only the generation fences).
    """

    name: str
    generation: int
    holder: str
    lease_check: Callable[[], None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ChampionMove:
    """One compare-and-set of a model's champion: to ``version``, only if the champion is still ``expected``
    (None: no champion yet). ``reason``, ``run_id`` and ``action`` go into the alias history."""

    name: str
    version: str
    expected: str | None
    reason: str
    run_id: str = ""
    action: str = "promote"


def read_fence(raw: str | None) -> tuple[int, str]:
    """(generation, holder) of a fence tag value; (0, "") when there is none or it is unreadable."""
    try:
        record = json.loads(raw) if raw else {}
        return int(record.get("generation", 0)), str(record.get("holder", ""))
    except (ValueError, TypeError, AttributeError):
        return 0, ""


def _pipeline(model_name: str) -> str:
    return model_name.removeprefix("driftline-")


def unknown_model(name: str, registered: Sequence[str], where: str) -> NotRegistered:
    """``name`` is not in the registry at ``where``: what it holds instead, the nearest name, or how to train."""
    import difflib

    held = sorted(registered)
    message = f"no model {name} in the registry at {where}"
    if not held:
        return NotRegistered(
            f"{message} (it holds none yet); train one first: driftline train --name {_pipeline(name)}"
        )
    shown = ", ".join(held[:8]) + (f" and {len(held) - 8} more" if len(held) > 8 else "")
    near = difflib.get_close_matches(_pipeline(name), [_pipeline(h) for h in held], n=1, cutoff=0.6)
    advice = (
        f"did you mean --name {near[0]}?"
        if near
        else f"pick one with --name, or train one first: driftline train --name {_pipeline(name)}"
    )
    return NotRegistered(f"{message}, which holds {shown}; {advice}")


def unknown_version(name: str, version: str, versions: Sequence[tuple[str, Sequence[str]]]) -> NotRegistered:
    """``name`` has no ``version``: its versions (newest ten) with their aliases."""
    shown = [f"{v} ({', '.join(aliases)})" if aliases else v for v, aliases in versions[-10:]]
    more = f"{len(versions) - 10} older and " if len(versions) > 10 else ""
    return NotRegistered(f"{name} has no version {version}; its versions: {more}{', '.join(shown) or 'none'}")


class ModelRegistry(Protocol):
    """Registered models, their versions' tags and aliases, and the transactional champion move."""

    fence: Fence | None

    def exists(self, name: str) -> bool: ...

    def require(self, name: str, version: str | None = None) -> None: ...

    def alias_version(self, name: str, alias: str) -> str | None: ...

    def aliases(self, name: str, version: str) -> list[str]: ...

    def versions(self, name: str) -> Sequence[Any]: ...

    def version_tags(self, name: str, version: str) -> dict[str, str]: ...

    def tag_version(self, name: str, version: str, tags: dict[str, Any]) -> None: ...

    def model_tag(self, name: str, key: str) -> str | None: ...

    def set_model_tag(self, name: str, key: str, value: str) -> None: ...

    def set_alias(
        self, name: str, alias: str, version: str, reason: str, run_id: str = "", action: str = "set"
    ) -> None: ...

    def lock_key(self, name: str) -> str: ...

    def acquire_fence(self, name: str, holder: str, lease_check: Callable[[], None] | None = None) -> Fence: ...

    def with_fence(self, fence: Fence | None) -> ModelRegistry: ...

    def check_fence(self, name: str, champion: Any = ...) -> None: ...

    def intent(self, name: str) -> dict[str, Any] | None: ...

    def move_champion(self, move: ChampionMove, commit: bool = True) -> str | None: ...

    def commit_promotion(self, name: str, champion: Any = ...) -> None: ...

    def repair_promotion(
        self, name: str, run_id: str = "", action: str = "repair", why: str = ""
    ) -> dict[str, Any] | None: ...

    def restore_champion(self, name: str, previous: str | None, failed: str, reason: str, run_id: str) -> None: ...

    def monitored(self, name: str) -> tuple[str, str | None, dict[str, str]]: ...

    def rollback(
        self, name: str, to_version: str | None, reason: str, force: bool = False
    ) -> tuple[str | None, str, str | None]: ...

    def history(self, name: str) -> list[dict[str, Any]]: ...
