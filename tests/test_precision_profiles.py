"""Precision profiles: a port that runs in bfloat16 is judged against the noise bfloat16 implies, told so, and
still caught when it has a real bug.

The bfloat16 candidates are our reimplementation's real float32 run with every stage rounded to bfloat16, as
a bfloat16 port dumps its values (upcast to float32 before writing, so only the values tell). That is a
precision, not a bug; the bug in the last test is a real fault switched on in reimpl/.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from harness.trace import Trace, TraceWriter

ROOT = Path(__file__).resolve().parent.parent


def to_bfloat16(values: np.ndarray) -> np.ndarray:
    """float32 -> the nearest bfloat16 (ties to even), kept as float32."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


def rounded_copy(trace: Path, out: Path) -> Path:
    with Trace(trace) as t, TraceWriter(out, t.provenance) as w:
        for s in t.stages():
            v = t.read(s.path)
            w.write(s.path, to_bfloat16(v) if v.dtype.kind == "f" else v, cfg=s.cfg)
    return out


def harness(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def test_bfloat16_port_is_detected_then_passes_under_its_profile(tmp_path, tiny_short_run):
    cand = rounded_copy(tiny_short_run.free, tmp_path / "bf16.h5")
    plain = harness("compare", tiny_short_run.reference, cand, "--stage", "dit", "--json", tmp_path / "a.json",
                    "--no-html")
    assert plain.returncode == 1, plain.stderr  # bfloat16 rounding is far above float32's floors
    first = plain.stdout.splitlines()[0]
    assert "note: the candidate looks bfloat16" in first and "--candidate-dtype bfloat16" in first, first
    judged = harness("compare", tiny_short_run.reference, cand, "--stage", "dit", "--candidate-dtype", "bfloat16",
                     "--json", tmp_path / "b.json", "--no-html")
    assert judged.returncode == 0, judged.stdout[:3000]
    first = judged.stdout.splitlines()[0]
    assert first.startswith("PASS: all ") and "[precision profile bfloat16 (floors derived from its rounding" in first


def test_bfloat16_profile_does_not_hide_a_real_bug(tmp_path, tiny_short_fault_run):
    cand = rounded_copy(tiny_short_fault_run.free, tmp_path / "bf16-fault.h5")
    proc = harness("compare", tiny_short_fault_run.reference, cand, "--stage", "dit", "--candidate-dtype", "bfloat16",
                   "--json", tmp_path / "c.json", "--no-html")
    assert proc.returncode == 1, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("first divergence: cfm/seg_00/step_00/dit/final_layer/silu (cond)"), first
    assert "precision profile bfloat16" in first


def test_measured_bfloat16_floors_from_an_autocast_capture(tmp_path):
    """`capture --precision-floors bfloat16` runs upstream under CPU autocast and stores that run's error against
    float64; a compare with --candidate-dtype bfloat16 then says the floors were measured. Measured on tiny,
    2 steps, seed 1: mel_out rel-L2 floors 3.0e-6 (float32), 2.0e-2 (bfloat16, measured) against 0.2 derived by
    scaling (x 65536): the first-order scaling is the looser, so measuring is worth its run."""
    ref = tmp_path / "ref.h5"
    proc = harness("capture", "--steps", "1", "--seed", "1", "--max-tokens", "2", "--precision-floors", "bfloat16",
                   "-o", ref)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with Trace(ref) as t:
        mel = t.info("cfm/seg_00/mel_out")
        measured, f32 = mel.precision_floors["bfloat16"][""], mel.propagated_floor[""]
    assert 0 < measured.rel_l2 < f32.rel_l2 * 65536
    cand = rounded_copy(ref, tmp_path / "bf16.h5")
    judged = harness("compare", ref, cand, "--candidate-dtype", "bfloat16", "--json", tmp_path / "m.json", "--no-html")
    assert judged.returncode == 0, judged.stdout[:3000]
    assert "[precision profile bfloat16 (propagated floors measured: upstream under bfloat16 autocast" in \
        judged.stdout.splitlines()[0]
