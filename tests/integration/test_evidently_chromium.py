"""The Evidently report opens offline: headless Chromium (Debian's package) renders the saved HTML with
every network request refused, and the rendered page holds the drift table with each column's verdict."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from driftline.drift import evidently_report

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def chromium():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (.ci/run does)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return CHROMIUM


def render(chromium: str, html: str, profile: str) -> str:
    """The page's DOM after its scripts ran, with the network closed (no DNS, a dead proxy)."""
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=http://127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            f"file://{html}",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def visible_text(dom: str) -> str:
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def test_drift_report_renders_offline_with_its_drift_table(chromium, tmp_path):
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"shifted_feature": rng.normal(size=3000), "stable_feature": rng.normal(size=3000)})
    current = pd.DataFrame(
        {"shifted_feature": rng.normal(1.0, 1.0, size=3000), "stable_feature": rng.normal(size=3000)}
    )
    html, _ = evidently_report(reference, current, 2000, tmp_path / "report")
    source = html.read_text(encoding="utf-8")
    assert "<table" not in source, "the table must come from the page's own scripts, rendered here"

    text = visible_text(render(chromium, str(html), str(tmp_path / "profile")))
    assert "Data Drift" in text and "Stat Test" in text, text[:2000]
    rows = dict(re.findall(r"(shifted_feature|stable_feature) num (Detected|Not Detected)", text))
    assert rows == {"shifted_feature": "Detected", "stable_feature": "Not Detected"}, text[:3000]
