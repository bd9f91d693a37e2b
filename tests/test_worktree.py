"""The work-tree check the session runs at its end (tests/conftest.py) sees what a test could leave behind."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.worktree import tree_changes, tree_state


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", "-C", str(repo), *args],
        check=True,
        capture_output=True,
    )


def test_new_modified_and_rewritten_files_are_reported_ignored_ones_are_not(tmp_path):
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "tracked.txt").write_text("v1\n")
    (repo / "docs" / "edited.md").write_text("v1\n")
    (repo / ".gitignore").write_text(".driftline/\n*.pyc\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "start")
    (repo / "docs" / "edited.md").write_text("a developer's edit, there before the session\n")
    before = tree_state(repo)
    assert before is not None and set(before) == {"docs/edited.md"}

    # What tests must not do: a database in the working directory, a rewritten tracked file, a second
    # change to a file the developer had already edited. Ignored paths are fine.
    (repo / "mlflow.db").write_bytes(b"SQLite format 3\0")
    (repo / "tracked.txt").write_text("v2\n")
    (repo / "docs" / "edited.md").write_text("overwritten by a test\n")
    (repo / ".driftline").mkdir()
    (repo / ".driftline" / "runs.db").write_bytes(b"ok")
    (repo / "module.pyc").write_bytes(b"ok")
    after = tree_state(repo)

    assert tree_changes(before, after) == [" M docs/edited.md", " M tracked.txt", "?? mlflow.db"]
    assert tree_changes(after, after) == []
    # Checked from a sub-folder (pytest's rootdir inside a larger checkout): the same paths, from the top.
    assert tree_state(repo / "docs") == after


def test_a_developer_edit_reverted_by_the_session_is_reported(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("v1\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "start")
    (tmp_path / "a.txt").write_text("work in progress\n")
    before = tree_state(tmp_path)
    _git(tmp_path, "checkout", "--", "a.txt")
    assert tree_changes(before, tree_state(tmp_path)) == ["restored a.txt"]


def test_outside_a_work_tree_there_is_nothing_to_check(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # wherever the temporary folder is
    (tmp_path / "file.txt").write_text("x")
    assert tree_state(tmp_path) is None
