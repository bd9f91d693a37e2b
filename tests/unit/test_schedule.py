"""The order `make test` hands test files to its workers (tests/schedule.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests import schedule


@dataclass
class FakeItem:
    nodeid: str
    slow: bool = False

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "slow" and self.slow else None


def test_files_go_longest_first_and_keep_their_own_order():
    items = [
        FakeItem("tests/unit/test_a.py::one"),
        FakeItem("tests/unit/test_a.py::two"),
        FakeItem("tests/drills/test_b.py::drill", slow=True),
        FakeItem("tests/unit/test_c.py::three"),
        FakeItem("tests/unit/test_a.py::four"),
    ]
    durations = {"tests/unit/test_a.py": 5.0, "tests/unit/test_c.py": 30.0}
    ordered = [i.nodeid for i in schedule.longest_first(items, durations)]
    # test_b is not recorded: a slow file is guessed at a minute per test, so it goes first.
    assert ordered == [
        "tests/drills/test_b.py::drill",
        "tests/unit/test_c.py::three",
        "tests/unit/test_a.py::one",
        "tests/unit/test_a.py::two",
        "tests/unit/test_a.py::four",
    ]


def test_durations_are_summed_per_file_from_junit(tmp_path: Path):
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.unit.test_schedule" name="a" time="1.5"/>'
        '<testcase classname="tests.unit.test_schedule" name="b" time="2.0"/>'
        '<testcase classname="tests.unit.test_schedule.SomeClass" name="c" time="0.5"/>'
        '<testcase classname="tests.integration.test_cli" name="d" time="60"/>'
        "</testsuite></testsuites>"
    )
    assert schedule.from_junit([report]) == {
        "tests/integration/test_cli.py": 60.0,
        "tests/unit/test_schedule.py": 4.0,
    }


def test_the_recorded_durations_name_existing_test_files_only():
    durations = schedule.load()
    assert durations, f"{schedule.DURATIONS} is missing: make test would start the slowest files last"
    stale = [file for file in durations if not (schedule.ROOT / file).is_file()]
    assert not stale, f"regenerate {schedule.DURATIONS} (python -m tests.schedule JUNIT.xml): gone: {stale}"
