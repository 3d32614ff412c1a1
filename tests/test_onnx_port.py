"""The third-party indextts-onnx port (PyPI 0.3.0), compared end to end on the `tiny-onnx` config.

It runs in a subprocess: the port's export patches upstream's SConv1d globally, which must not leak
into the captures of other tests. 7 ODE steps: the smallest count where float32 linspace rounds differently in
numpy (the port) and torch (upstream) at two steps (3 and 4; at 25 steps, 5, 9, 10 and 21: `make onnx` runs
those at real size); the reference holds every internal of the CFM (`--detail full:cfm`, the runner's default)
and the default detail elsewhere; 4 generated codes per segment keep its mel short.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STEPS = 7

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("indextts_onnx") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="the [onnx] extra and indextts-onnx are not installed (make setup installs them)")


def test_indextts_onnx_against_upstream_step_by_step(tmp_path):
    runner = ROOT / "ports" / "run_indextts_onnx.py"
    proc = subprocess.run([sys.executable, str(runner), "--config", "tiny-onnx", "--steps", str(STEPS), "--max-tokens",
                           "4"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900)  # reports go to tmp_path/reports
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.startswith("PASS: all ") and "compared stages" in proc.stdout.splitlines()[0]
    data = json.loads((tmp_path / "reports" / "compare-indextts_onnx-tiny-onnx-4tokens.json").read_text())
    assert data["rule"] == "floors"
    by = {s["label"]: s for s in data["stages"]}
    f = float
    # the final mel, with the same injected noise, on upstream's float32 noise level
    mel = by["vocoder/seg_00/bigvgan_in"]
    assert f(mel["propagated"]["rel_l2"]) < 1e-5 and f(mel["propagated"]["rmse"]) <= f(mel["propagated_allowed"])
    # the port feeds the DiT the scheduled t where upstream accumulates t + dt: visible per step...
    t_diff = {k: f(by[f"cfm/seg_00/step_{k:02d}/dit/in/t (cond)"]["propagated"]["max_abs"]) for k in range(STEPS)}
    assert any(d > 0 for d in t_diff.values())
    # ...and weighed against upstream's own float32 schedule error, which the float64 floor shows
    for k in range(STEPS):
        v = by[f"cfm/seg_00/step_{k:02d}/dit/velocity (cond)"]
        assert v["status"] == "pass", (k, v["propagated"]["rel_l2"], v["propagated_floor"]["rel_l2"])
    # the port provides the DiT's inputs and output, not its internals: those are listed, not errors
    assert any(s["status"] == "missing" for s in data["stages"])


def test_the_ports_vocoder_and_int16_output(tmp_path, tiny_short_run):
    """Its ONNX BigVGAN, its join and its save_wav's int16 on the shared 3-step reference (whose capture the
    runner finds in the cache): its waves on upstream's float32 noise; its int16 conversion exact where it is fed
    the reference's wave (teacher-forced), and off by one unit at a few samples free-running, fewer than upstream's
    own float64 run flips (the floor), so no failure."""
    runner = ROOT / "ports" / "run_indextts_onnx.py"
    proc = subprocess.run([sys.executable, str(runner), "--part", "vocoder", "--steps", "3", "--seed", "1"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads((tmp_path / "reports" / "compare-indextts_onnx_vocoder-tiny.json").read_text())
    by = {s["label"]: s for s in data["stages"]}
    f = float
    for seg in ("00", "01"):
        wav = by[f"vocoder/seg_{seg}/wav"]
        assert wav["status"] == "pass" and f(wav["audio"]["snr_db"]) > 100
    out = by["vocoder/int16"]
    assert out["status"] == "pass" and f(out["local"]["max_abs"]) == 0  # the conversion itself: exact
    flips = f(out["propagated"]["max_abs"])
    assert flips == 1 and 0 < f(out["propagated"]["rel_l2"]) <= f(out["propagated_floor"]["rel_l2"])
