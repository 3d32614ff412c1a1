"""Noise floors: the float32 reference's own error at every stage, stored in the reference trace.

The reference runs once more in float64 (upstream, `.to(float64)`), and our reimplementation runs in
float64 teacher-forced from the float32 reference's recorded inputs (the local oracle). For every stage
and CFG half:
    propagated floor = RMSE(float32 reference, float64 reference)      the error float32 accumulates
    local floor      = RMSE(float32 reference, float64 oracle)         the error of the stage alone
Both are computed once, at capture time, and stored as attributes of the stage's dataset; the float64
traces are not kept. Judging a candidate then needs only the float32 reference (harness/tolerance.py).
The floors are keyed by everything that changes the float32 reference, so they are never applied to
another run.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np

from harness import metrics as M
from harness import stages
from harness.trace import StageInfo, Trace

#: provenance fields that decide the float32 reference's values, and so its floors
KEY_FIELDS = ("config_digest", "seed", "checkpoint_digest", "inputs_digest", "reference_version",
              "torch_version", "threads", "detail")


def key(provenance: dict) -> str:
    picked = {k: provenance.get(k) for k in KEY_FIELDS}
    return hashlib.sha256(json.dumps(picked, sort_keys=True, default=str).encode()).hexdigest()[:16]


def halves(info: StageInfo) -> list[tuple[str, tuple]]:
    """The CFG halves of a stage and their index on axis 0 ("" and () for a stage without halves)."""
    if info.cfg != stages.CFG_BOTH:
        return [("", ())]
    n = info.shape[0] // 2
    return [(stages.CFG_COND, (slice(0, n),)), (stages.CFG_UNCOND, (slice(n, 2 * n),))]


def _floor(other: Trace | None, ref: Trace, info: StageInfo) -> list[tuple[float, float]] | None:
    if other is None or info.path not in other or other.info(info.path).shape != info.shape:
        return None
    out = []
    for _, index in halves(info):
        m = M.compute(other.read(info.path, index), ref.read(info.path, index))
        out.append((m.rmse, m.rel_l2))
    return out


def compute(ref32: Trace, ref64: Trace | None, oracle64: Trace | None) -> dict[str, dict[str, list]]:
    """Per stage: {"prop": [(rmse, rel_l2) per half], "local": [...]} where the float64 runs hold the stage."""
    out: dict[str, dict[str, list]] = {}
    for info in ref32.stages():
        if info.kind == stages.EXACT or info.draw:
            zero = [(0.0, 0.0)] * len(halves(info))
            out[info.path] = {"prop": zero, "local": zero}
            continue
        entry = {}
        for name, other in (("prop", ref64), ("local", oracle64)):
            values = _floor(other, ref32, info)
            if values is not None:
                entry[name] = values
        if entry:
            out[info.path] = entry
    return out


def compute_reduced(ref32: Trace, ref64: Trace, reduced: Trace, dtype: str) -> dict[str, list]:
    """Per float stage, the measured floor of a precision profile: the larger of the reduced-precision run's
    error against float64 (where that run holds the stage) and the error of the float32 reference's own
    values rounded to `dtype` (a port in that type can do no better, even where upstream's run stayed
    float32)."""
    from harness.precision import round_to

    out: dict[str, list] = {}
    for info in ref32.stages():
        if (info.kind == stages.EXACT or info.draw or info.path not in ref64
                or ref64.info(info.path).shape != info.shape):
            continue
        own = []
        for _, index in halves(info):
            m = M.compute(ref64.read(info.path, index), round_to(ref32.read(info.path, index), dtype))
            own.append((m.rmse, m.rel_l2))
        held = info.path in reduced and reduced.info(info.path).shape == info.shape
        run = _floor(ref64, reduced, info) if held else [(0.0, 0.0)] * len(own)
        out[info.path] = [(max(a[0], b[0]), max(a[1], b[1])) for a, b in zip(run, own)]
    return out


def attach(path: Path, floors: dict[str, dict[str, list]], provenance: dict, how: str) -> None:
    """Write the floors into a (not yet published) trace: per-stage attributes and one root record."""
    with h5py.File(path, "r+") as f:
        for stage, entry in floors.items():
            attrs = f[stage].attrs
            for name, values in entry.items():
                attrs[f"floor_{name}_rmse"] = np.array([v[0] for v in values], dtype=np.float64)
                attrs[f"floor_{name}_rel"] = np.array([v[1] for v in values], dtype=np.float64)
        f.attrs["floors"] = json.dumps({"key": key(provenance), "how": how, "stages": len(floors)})


def valid(trace: Trace) -> bool:
    """Does this trace hold floors computed for exactly this run?"""
    return bool(trace.floors) and trace.floors.get("key") == key(trace.provenance)
