"""The column flags: every command that reads raw rows takes the same four, and hands them on as one
``columns`` argument keyed like the flows' parameters."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from driftline.app import cli


def test_every_command_that_reads_rows_takes_the_four_column_flags():
    runner = CliRunner()
    for command in ("train", "score", "compare", "monitor"):
        shown = runner.invoke(cli.app, [command, "--help"], terminal_width=200).output
        for flag in ("--time-col", "--price-col", "--symbol-col", "--target-col"):
            assert flag in shown, (command, flag)


def test_help_shows_a_list_value_as_it_is_typed():
    # rich read `[logreg,lightgbm]` as markup and dropped it: the example said `--set models.families=`.
    output = CliRunner().invoke(cli.app, ["train", "--help"], env={"COLUMNS": "200"}).output
    shown = " ".join(output.replace("│", " ").split())
    assert "--set splits.n_splits=3 --set models.families=[logreg,lightgbm]" in shown
    assert "e.g. splits.gap=3, models.families=[logreg,lightgbm])." in shown


def test_the_flags_reach_the_command_as_one_columns_argument():
    seen: list[tuple[str, dict[str, str | None]]] = []
    toy = typer.Typer()

    @toy.command()
    @cli.with_column_options
    def read(data: str = typer.Option("x.csv", "--data"), *, columns: cli.Columns) -> None:
        seen.append((data, columns))

    result = CliRunner().invoke(toy, ["--data", "p.csv", "--time-col", "ts", "--target-col", "y"])
    assert result.exit_code == 0, result.output
    assert seen == [("p.csv", {"time_col": "ts", "price_col": None, "symbol_col": None, "target_col": "y"})]
    assert list(seen[0][1]) == list(cli.COLUMN_OPTIONS)  # one flag a key, none forgotten
    refused = CliRunner().invoke(toy, ["--columns", "x"])
    assert refused.exit_code != 0  # the bundle itself is no flag


def test_a_prefect_home_under_folders_not_made_yet_is_made_before_prefect_reads_it(tmp_path):
    # Before: "UserWarning: Failed to create the Prefect home directory" on every command (Prefect makes its
    # home on import, not the folders above it).
    import os
    import subprocess
    import sys

    home = tmp_path / "not" / "yet" / "prefect"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {"PREFECT_HOME": str(home)}
    probe = "from driftline.app.cli import apply_offline_defaults; apply_offline_defaults(); import prefect.context"
    done = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert home.is_dir()


def test_horizon_on_a_label_target_asks_for_the_label_that_many_rows_on(tmp_path):
    # Before: --horizon set target.horizon, which a label target never reads: silently a model of the label as
    # written. Now it is target.ahead, validated with the rest before anything starts (a delay shorter than it
    # is refused).
    args = ["train", "--data", str(tmp_path / "none.csv"), "--target", "label", "--target-col", "y", "--horizon", "6"]
    refused = CliRunner().invoke(cli.app, [*args, "--set", "target.label_delay=3"])
    assert refused.exit_code == 2
    assert "label_delay (3) must be >= ahead (6)" in refused.output
    accepted = CliRunner().invoke(cli.app, args)  # then the missing file is the first error
    assert accepted.exit_code == 2 and "none.csv" in accepted.output and "ahead" not in accepted.output
