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
