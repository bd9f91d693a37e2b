"""The measured figures in README.md and docs/performance.md are rendered from benchmarks/results/latest.json."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from benchmarks import docs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def latest() -> dict:
    return json.loads(docs.LATEST.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", docs.FILES, ids=lambda p: p.name)
def test_every_generated_block_agrees_with_latest_json(path: Path, latest: dict) -> None:
    assert docs.stale(path, latest) == [], f"run `make docs`: {path.name} disagrees with latest.json"


def test_every_block_the_files_use_is_rendered_and_every_renderer_is_used() -> None:
    used = {m["name"] for path in docs.FILES for m in docs.BLOCK.finditer(path.read_text(encoding="utf-8"))}
    assert used == set(docs.BLOCKS)


def test_a_changed_result_makes_its_block_stale(latest: dict) -> None:
    changed = copy.deepcopy(latest)
    changed["drift_real_false_alarm_rate"] = latest["drift_real_false_alarm_rate"] + 0.1
    assert docs.stale(ROOT / "README.md", changed) == ["drift-real"]


def test_each_block_names_the_run_that_measured_it(latest: dict) -> None:
    runs = latest["runs"]
    last_quality = [r for r in runs if "quality" in (r.get("part_seconds") or {})][-1]
    assert docs.produced_by(latest, "quality") == f"`{last_quality['command']}`, {last_quality['generated_at'][:10]}"
    assert docs.produced_by(latest, "quality") in docs.readme_quality(latest)
    with pytest.raises(docs.MissingResult, match="--only nothing --update"):
        docs.produced_by({"runs": runs}, "nothing")


def test_a_timing_several_runs_recorded_is_quoted_with_its_range_over_them(latest: dict) -> None:
    changed = copy.deepcopy(latest)
    changed["cli_help_seconds"] = 0.31
    one = {"command": "python -m benchmarks.run", "generated_at": "2026-12-04", "part_seconds": {"startup": 1}}
    changed["runs"] = [{**one, "figures": {"cli_help_seconds": 0.31}}]
    assert "runs in latest.json" not in docs.readme_help(changed)  # one run: no range to quote
    changed["runs"] += [{**one, "figures": {"cli_help_seconds": s}} for s in (0.22, 0.47)] + [{**one, "figures": {}}]
    assert "took 0.31 s (median of 3, `python -m benchmarks.run`, 2026-12-04; 0.22-0.47 s in the 3 runs" in (
        " ".join(docs.readme_help(changed).split())
    )


def test_the_demo_excerpt_is_the_cli_output_from_the_fold_table_to_the_checks(latest: dict) -> None:
    from driftline.report import render_summary
    from driftline.summary import TrainingSummary

    summary = latest["demo_summary"]
    full = render_summary(TrainingSummary.model_validate(summary)).splitlines()
    shown = docs._demo_output(summary)
    assert shown[0].startswith("Walk-forward folds of the challenger")
    assert shown[-1] == full[full.index(next(line for line in full if line.startswith("MLflow run"))) - 1]
    assert [line for line in shown if line.startswith("Decision:")] == [f for f in full if f.startswith("Decision:")]
    assert not any(summary["run_id"] in line or line.startswith("Registered ") for line in shown)
    assert all(line in full for line in shown)


def _prose(text: str) -> str:
    """``text`` without generated blocks, fenced code and inline code."""
    text = docs.BLOCK.sub("", text)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.sub(r"`[^`]*`", "", text)


def test_the_readme_prose_carries_no_measured_number() -> None:
    """Decimals and percentages are measurements; outside the generated blocks only versions may have a dot."""
    prose = _prose((ROOT / "README.md").read_text(encoding="utf-8"))
    numbers = re.findall(r"(?<![\w.])\d+\.\d+(?:\.\d+)?%?|\d+(?:\.\d+)?\s?%", prose)
    allowed = {"3.11", "95%"}  # the Python version; the confidence level of an interval
    assert [n for n in numbers if n not in allowed] == []


def _layout_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Developing") :]
    return section[section.index("```\n") + 4 : section.index("```", section.index("```\n") + 4)]


def test_the_readme_layout_names_every_directory_core_module_and_doc() -> None:
    block = _layout_block()
    words = set(re.findall(r"[\w-]+", block))
    starts = {line.split()[0] for line in block.splitlines() if line and not line.startswith(" ")}
    top = {p.name + "/" for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".") and _tracked(p)}
    assert {t for t in top if not any(start.startswith(t) for start in starts)} == set(), (
        "top-level folders missing from the README's layout"
    )
    modules = {p.stem for p in (ROOT / "src" / "driftline").glob("*.py") if p.stem != "__init__"}
    assert modules - words == set(), "core modules missing from the README's layout"
    pages = {p.stem for p in (ROOT / "docs").glob("*.md")}
    assert pages - words == set(), "docs/ pages missing from the README's layout"
    tests = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert tests - words == set(), "test folders missing from the README's layout"


def test_every_file_the_readme_layout_names_exists() -> None:
    block = _layout_block()
    folders = ("flows", "deployments", "benchmarks", "configs", "docker", "src/driftline", ".")
    for name in set(re.findall(r"[\w-]+\.(?:py|yaml)|Dockerfile", block)):
        assert any((ROOT / folder / name).exists() for folder in folders), (
            f"the README's layout names {name}: not found"
        )
    named_modules = set(re.findall(r"^  \w+\s+(.*)$", block, flags=re.M))
    for line in named_modules:
        for module in re.findall(r"(?:^|, )(\w+)", re.sub(r"\([^)]*\)", "", line)):
            assert (ROOT / "src" / "driftline" / f"{module}.py").exists(), (
                f"the README's layout names {module}: not found"
            )


def test_the_readme_layout_lists_the_shell_and_the_adapters_module_by_module() -> None:
    """``src/driftline/app/`` and ``src/driftline/adapters/`` each on a line naming exactly their modules."""
    block = _layout_block()
    for sub in ("app", "adapters"):
        line = next(line for line in block.splitlines() if line.startswith(f"src/driftline/{sub}/"))
        listed = re.sub(r"\([^)]*\)", "", line.split(None, 1)[1]).rsplit(":", 1)[-1]
        named = {part.split()[0] for part in re.split(r"[,;]", listed) if part.strip()}
        modules = {p.stem for p in (ROOT / "src" / "driftline" / sub).glob("*.py") if p.stem != "__init__"}
        assert named == modules, f"the README's layout line for src/driftline/{sub}/ and the folder disagree"


def _tracked(path: Path) -> bool:
    """A top-level folder holding something git tracks (not a venv, cache or run output)."""
    import subprocess

    listed = subprocess.run(["git", "ls-files", "--", path.name], cwd=ROOT, capture_output=True, text=True)
    return listed.returncode == 0 and bool(listed.stdout.strip())


def test_the_readme_stays_short() -> None:
    """Issue 18: what it is, the two commands, your own data, the loop, deploy, pointers; diaries go to docs/."""
    assert len((ROOT / "README.md").read_bytes()) <= 15_000
