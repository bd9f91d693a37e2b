"""The README's demo, measured: ``make demo``'s command in a fresh folder, and the direction flag it mentions.

* ``demo_summary``: the summary JSON of ``driftline train --config configs/default.yaml`` (what ``make
  demo`` runs) on fresh local stores (``DRIFTLINE_HOME``, MLflow on SQLite, Prefect's temporary API);
  ``demo_seconds``: its wall time, imports and the temporary API included (bytecode already compiled), and
  ``demo_load_average``: the machine's load when the runs ended.
* ``demo_direction``: the README's next command, ``--target direction --name demo-direction``, on the
  stores the first run left (a model answers one question, so the direction model gets its own name),
  reduced to the figures the README quotes; ``demo_direction_seconds``.

The README's demo output and the sentences around it are rendered from these by ``make docs``
(``benchmarks/docs.py``), so they cannot drift from a run. ``--quick`` does not run this part: it is two
full trainings on the real panel (about 90 s), and what it runs is covered by ``quality``'s ``equities_vol``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.processes import run_child
from benchmarks.startup import _clean_env

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DIRECTION_KEYS = (
    "decision",
    "selected_family",
    "metrics",
    "champion_version_before",
    "champion_version_after",
    "model_version",
    "edge",  # calibration.require_edge: asked of a direction target by default
)


def _train(extra: list[str], home: Path, cwd: Path) -> tuple[dict[str, Any], float]:
    out = home / f"summary-{len(list(home.glob('summary-*.json')))}.json"
    args = [
        str(BIN / "driftline"),
        "train",
        "--config",
        str(ROOT / "configs" / "default.yaml"),
        *extra,
        "--summary-json",
        str(out),
    ]
    started = time.perf_counter()
    done = run_child(args, _clean_env(home), timeout=900, cwd=cwd)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[1:])} exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(out.read_text(encoding="utf-8")), seconds


def measure(quick: bool = False) -> dict[str, Any]:
    if quick:
        return {"demo_skipped": "two full trainings on the real panel: not run at --quick"}
    with tempfile.TemporaryDirectory(prefix="driftline-bench-demo-") as tmp:
        root = Path(tmp)
        summary, seconds = _train([], root / "home", root)
        direction, direction_seconds = _train(
            ["--target", "direction", "--name", "demo-direction"], root / "home", root
        )
    return {
        "demo_summary": summary,
        "demo_seconds": round(seconds, 1),
        "demo_direction": {key: direction.get(key) for key in DIRECTION_KEYS},
        "demo_direction_seconds": round(direction_seconds, 1),
        # The machine's 1-minute load average when the runs ended: the wall time means little without it.
        "demo_load_average": round(os.getloadavg()[0], 1),
    }
