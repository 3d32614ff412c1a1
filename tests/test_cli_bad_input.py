"""Bad input gets one line on stderr and exit code 2, never a traceback, and never clobbers results."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.trace import TraceWriter

ROOT = Path(__file__).resolve().parent.parent


def harness(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, cwd=cwd)


def assert_one_line_exit_2(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0]


@pytest.fixture
def small_trace(tmp_path) -> Path:
    out = tmp_path / "ref.h5"
    with TraceWriter(out, {"config": "tiny"}) as w:
        w.write("frontend/mel/out", np.ones((1, 80, 8), np.float32))
    return out


def test_missing_trace(tmp_path, small_trace):
    assert_one_line_exit_2(harness("compare", str(small_trace), str(tmp_path / "nope.h5")), "not found")


def test_corrupt_trace(tmp_path, small_trace):
    bad = tmp_path / "bad.h5"
    bad.write_text("garbage")
    assert_one_line_exit_2(harness("compare", str(small_trace), str(bad)), "not a readable HDF5")


def test_truncated_trace(tmp_path, small_trace):
    cut = tmp_path / "cut.h5"
    data = small_trace.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    assert_one_line_exit_2(harness("compare", str(small_trace), str(cut)))


def test_unknown_stage(small_trace):
    assert_one_line_exit_2(harness("compare", str(small_trace), str(small_trace), "--stage", "dit/blok"), "unknown stage")


def test_unknown_config():
    assert_one_line_exit_2(harness("compare", "--config", "huge"), "unknown config")


def test_one_trace_only(small_trace):
    assert_one_line_exit_2(harness("compare", str(small_trace)), "both REF and CAND")


def test_bad_input_keeps_earlier_report(tmp_path, small_trace):
    report = tmp_path / "summary.json"
    ok = harness("compare", str(small_trace), str(small_trace), "--json", str(report))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    before = report.read_text()
    bad = harness("compare", str(small_trace), str(tmp_path / "gone.h5"), "--json", str(report))
    assert bad.returncode == 2
    assert report.read_text() == before


def test_stages_lists_a_trace(small_trace):
    proc = harness("stages", str(small_trace))
    assert proc.returncode == 0 and "frontend/mel/out" in proc.stdout
