"""The tree stays clean under ruff (configured in pyproject.toml), and no module grows past 400 lines."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is in the test extra (pip install -c constraints.txt '.[test]')"
    proc = subprocess.run([ruff, "check", "--no-cache", "."], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_no_module_over_400_lines():
    long = [f"{f.relative_to(ROOT)} ({n})" for folder in ("harness", "reference_hooks", "reimpl", "ports")
            for f in (ROOT / folder).rglob("*.py") if (n := len(f.read_text().splitlines())) > 400]
    assert not long, long
