"""Public names do not change by accident.

The golden files pin what a porter's map and scripts depend on: the schema as `harness stages --schema`
prints it, and every stage path (with its shape, layout, CFG arrangement and derived flag) of a one-step
capture of the embedded `tiny` default. A deliberate change rewrites the golden file in the same commit
and says why in its message.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GOLDEN = Path(__file__).with_name("golden")
ROOT = Path(__file__).resolve().parent.parent


def _harness(*args: str) -> str:
    env = dict(os.environ, COLUMNS="250")
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]


def test_schema_listing_is_unchanged():
    assert _lines(_harness("stages", "--schema")) == _lines((GOLDEN / "schema.txt").read_text())


def test_stage_paths_of_a_one_step_capture_are_unchanged(tmp_path):
    from harness.trace import Trace

    out = tmp_path / "one-step.h5"
    # without noise floors: they add numbers to the stages, never a stage (the paths are what is pinned)
    _harness("capture", "--config", "tiny", "--steps", "1", "--no-floors", "-o", str(out))
    with Trace(out) as t:
        got = [f"{s.path}\t{'x'.join(map(str, s.shape))}\t{s.layout}\t{s.cfg}\t{int(s.derived)}" for s in t.stages()]
    assert got == _lines((GOLDEN / "tiny-1step-stages.tsv").read_text())
