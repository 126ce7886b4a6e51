"""README.md and .ci/run agree: CI runs exactly the test command the README gives a newcomer."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_block(marker: str) -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(rf"<!-- {marker} -->\s*```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert m, f"README.md has no fenced block after <!-- {marker} -->"
    return m.group(1).strip()


def test_ci_runs_the_readme_test_command():
    readme_cmd = readme_block("test-command")
    ci = (REPO / ".ci" / "run").read_text()
    m = re.search(r"^TEST_CMD='(.*)'$", ci, re.M)
    assert m, ".ci/run must define TEST_CMD='...'"
    ci_cmd = m.group(1)
    # the README block may install first; its last line is the test command itself
    assert readme_cmd.splitlines()[-1].strip() == ci_cmd


def test_ci_installs_from_scratch_and_rejects_empty_runs():
    ci = (REPO / ".ci" / "run").read_text()
    assert "python3 -m venv" in ci
    assert "torch==2.14.1 torchvision==0.29.1" in ci
    assert '-e ".[dev]"' in ci
    assert '"$rc" -eq 5' in ci  # pytest's "no tests collected" is a failure


def test_readme_main_job_uses_shipped_samples():
    cmd = readme_block("main-command")
    assert "pip install" in cmd
    assert "mcmt run" in cmd
    for path in re.findall(r"samples/\S+\.mp4", cmd):
        assert (REPO / path).is_file(), f"README's main command uses {path}, which is not in the repository"
