"""Recomputed (derived) stages are checked against upstream at capture time.

What upstream computes inline (the CFG mix and the Euler update) is recomputed by our hooks. Without a
check, a wrong formula in a hook and the same wrong formula in `reimpl/` would agree. The reference here is
a real modification: a clone of upstream whose solve_euler mixes CFG another way, as a user's fork might.
"""
from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)


def _modified_clone(tmp_path: Path) -> Path:
    installed = Path(importlib.metadata.distribution("indextts2-inference").locate_file("indextts"))
    clone = tmp_path / "fork"
    shutil.copytree(installed, clone / "indextts", ignore=shutil.ignore_patterns("__pycache__"))
    fm = clone / "indextts" / "s2mel" / "modules" / "flow_matching.py"
    text = fm.read_text()
    old = "dphi_dt = (1.0 + inference_cfg_rate) * dphi_dt - inference_cfg_rate * cfg_dphi_dt"
    assert old in text
    fm.write_text(text.replace(old, "dphi_dt = cfg_dphi_dt + inference_cfg_rate * (dphi_dt - cfg_dphi_dt)"))
    return clone


def test_unmodified_upstream_verifies_every_derived_stage(tiny_short_run):
    from harness.trace import Trace

    with Trace(tiny_short_run.reference) as ref:
        checks = ref.provenance["derived_checks"]
        segments = sorted({s.path.split("/")[1] for s in ref.stages() if s.path.startswith("cfm/seg_")})
    # every Euler update of every segment, besides the other parts' derived stages (the GPT's positions, ...)
    x_next = {f"cfm/{seg}/step_{k:02d}/x_next" for seg in segments for k in range(3)}
    assert len(segments) == 2 and x_next <= set(checks)
    assert all(checks[p].startswith("ok: equals cfm/seg_") for p in x_next)
    assert all(v.startswith("ok") for v in checks.values()), {p: v for p, v in checks.items() if not v.startswith("ok")}


def test_a_modified_reference_is_marked_unverified_and_refused_with_strict(tmp_path):
    clone = _modified_clone(tmp_path)
    out = tmp_path / "fork.h5"
    proc = _harness("capture", "--reference-src", str(clone), "--steps", "2", "--seed", "2", "--max-tokens", "2", "--no-floors",
                    "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "recomputed stage(s) do not match upstream" in proc.stderr and "unverified" in proc.stderr
    report = tmp_path / "self.json"
    cmp = _harness("compare", str(out), str(out), "--json", str(report), "--no-html")
    data = json.loads(report.read_text())
    assert any("do not match the upstream values" in w for w in data["warnings"])
    x_next = next(s for s in data["stages"] if s["path"] == "cfm/seg_00/step_00/x_next")
    assert x_next["problem"].startswith("unverified: MISMATCH") and cmp.returncode == 0
    strict = _harness("capture", "--reference-src", str(clone), "--steps", "2", "--seed", "2", "--max-tokens", "2", "--no-floors",
                      "--strict", "-o", str(tmp_path / "strict.h5"))
    assert strict.returncode == 2 and "--strict" in strict.stderr and "Traceback" not in strict.stderr
    assert not (tmp_path / "strict.h5").exists()
