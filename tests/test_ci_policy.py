"""Under CI=true a skipped test fails the run: CI installs everything, so a skip hides a gap."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from config import PROJECT_ROOT as ROOT


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_runtest_makereport  # noqa: F401\n"
    )
    (tmp_path / "test_gap.py").write_text(
        "import pytest\n\ndef test_needs_a_tool():\n    pytest.skip('the tool is not installed')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_skip_fails_under_ci(tmp_path: Path) -> None:
    out = _run(tmp_path, "true")
    assert out.returncode == 1
    assert "1 failed" in out.stdout and "the tool is not installed" in out.stdout


def test_a_skip_is_only_a_skip_on_a_developer_machine(tmp_path: Path) -> None:
    out = _run(tmp_path, None)
    assert out.returncode == 0
    assert "1 skipped" in out.stdout
