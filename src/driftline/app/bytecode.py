"""Bytecode for the modules Driftline uses, written by using them once (``make install`` runs this).

Compiling every module of every installed package (``uv sync --compile-bytecode``, as ``pip install`` does)
wrote ~420 MB of bytecode, most of it for modules no Driftline process imports: plotly's ~13,600 one-class
validator modules (Evidently's reports draw with a few hundred of them), the packages' own tests. But with
``PYTHONDONTWRITEBYTECODE`` set (as on CI machines) a module without bytecode is compiled again by every
process that imports it, so what Driftline imports must be compiled once.

This runs the demo's commands (train on the bundled panel, score it with explanations, monitor it), then
imports what other settings need (tuning, the Dask runner, S3, workbooks), in a throw-away home, with
bytecode writing on: Python writes the bytecode of exactly the modules they import, in every process they
start (the local Prefect API among them); Driftline's own packages are compiled whole. A module used nowhere
here is compiled the first time it is imported where Python may write bytecode. If a command fails, every
module is compiled as before (``compileall``), so an install never depends on the demo.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

MODEL = "driftline-bytecode"
# What the commands below must not inherit: a configured server, store or home would be used (and written to).
FOREIGN = ("PREFECT_", "MLFLOW_", "DRIFTLINE_")
KEEP = ("DRIFTLINE_DB_TEMPLATES",)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN) or k in KEEP}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        DRIFTLINE_HOME=str(home / "driftline"),
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DRIFTLINE_LOCAL_API_IDLE_SECONDS="0",  # the local API stops with each command
    )
    return env


# What a setting, a source or the deployed loop needs that the demo does not use (~6 s, ~7 MB of bytecode): the
# hyperparameter search, the Dask runner, S3, workbooks, the PostgreSQL driver, the webhook relay, the Prefect
# CLI, server and process worker (make serve, make worker), the MLflow server (make ui-mlflow, the stack).
OPTIONAL = (
    "optuna",
    "prefect_dask",
    "distributed",
    "boto3",
    "openpyxl",
    "xlrd",
    "python_calamine",
    "psycopg2",
    "driftline.app.webhook",
    "deployments.server",
    "prefect.cli",
    "prefect.server.api.server",
    "prefect.workers.process",
    "mlflow.server.handlers",
)


def commands(home: Path, data: Path) -> list[list[str]]:
    """The demo's commands, as a user runs them: train, score with explanations, monitor; then the imports of
    what other settings use (:data:`OPTIONAL`)."""
    driftline = str(Path(sys.executable).parent / "driftline")
    return [
        [driftline, "train", "--name", MODEL, "--summary-json", str(home / "train.json")],
        [driftline, "score", "--name", MODEL, "--data", str(data), "--out", str(home / "scores.csv"), "--explain", "2"],
        [driftline, "monitor", "--name", MODEL, "--data", str(data), "--summary-json", str(home / "drift.json")],
        [sys.executable, "-c", f"import {', '.join(OPTIONAL)}"],
    ]


# Driftline's own packages: compiled whole (a few hundred KB), as the commands leave out the modules of settings
# they do not use (the hyperparameter search, streaming...).
PROJECT = ("driftline", "flows", "tasks", "deployments")


def compile_project(packages: tuple[str, ...] = PROJECT) -> None:
    for name in packages:
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec is not None else []:
            compileall.compile_dir(folder, quiet=1)


def _name(args: list[str]) -> str:
    return f"driftline {args[1]}" if Path(args[0]).name == "driftline" else "the other imports"


def use_once(timeout: float = 900) -> str | None:
    """Run :func:`commands` in a throw-away home; returns None, or what failed (the command and its output)."""
    from driftline.ingest import demo_data_path

    with tempfile.TemporaryDirectory(prefix="driftline-bytecode-") as tmp:
        home = Path(tmp)
        for args in commands(home, demo_data_path()):
            started = time.perf_counter()
            try:
                done = subprocess.run(args, env=_env(home), cwd=home, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                return f"`{_name(args)}` did not finish within {timeout:g} s"
            if done.returncode != 0:
                return f"`{_name(args)}` exited with {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}"
            print(f"  {_name(args)}: {time.perf_counter() - started:.1f} s", flush=True)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m driftline.app.bytecode", description=__doc__.split("\n")[0])
    parser.parse_args(argv)
    print("bytecode: compiling what the demo's train, score and monitor import, by running them once", flush=True)
    started = time.perf_counter()
    failed = use_once()
    compile_project()
    if failed is None:
        print(f"bytecode: done in {time.perf_counter() - started:.1f} s", flush=True)
        return 0
    site = sysconfig.get_paths()["purelib"]
    print(f"bytecode: {failed}\nbytecode: compiling every module in {site} instead", file=sys.stderr, flush=True)
    compileall.compile_dir(site, quiet=1, workers=0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
