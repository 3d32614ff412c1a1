"""Which other reference stages a failing stage's hints may test against, read from the declarations.

A misplaced value usually comes from close by: the other CFG half of the stage itself, a sibling in the
same block or step, the same stage one step or token earlier or later (an off-by-one), or a boundary stage
of the run (inputs, set-up). A stage that declares itself a mix of siblings (`mix_of`) also gets those
siblings and the rate its config names, so the mix a candidate used can be solved for; one that declares
its input (`input`) gets it, so a normalisation can be looked through; an integration stage (`step_of`)
gets its step size.
"""
from __future__ import annotations

import numpy as np

from harness import stages
from harness.align import half_index
from harness.hints.base import Case
from harness.trace import StageInfo, Trace

ITERATION_FIELDS = ("step", "token")


def _iteration(spec: stages.StageSpec | None, path: str) -> dict[str, int]:
    if spec is None:
        return {}
    return {k: v for k, v in spec.fields(path).items() if k in ITERATION_FIELDS}


def _near(info: StageInfo, other: StageInfo) -> bool:
    """Same parent, a boundary stage of the run, or any stage of the same or a neighbouring iteration."""
    parent = info.path.rsplit("/", 1)[0]
    if other.path.rsplit("/", 1)[0] == parent or other.path.startswith(parent + "/"):
        return True
    mine = _iteration(stages.find_spec(info.path), info.path)
    theirs = _iteration(stages.find_spec(other.path), other.path)
    if not theirs:
        return other.detail == stages.BOUNDARY
    return set(mine) == set(theirs) and all(abs(mine[k] - theirs[k]) <= 1 for k in mine)


def neighbours(ref: Trace, info: StageInfo, half: str, shape: tuple) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if info.cfg == stages.CFG_BOTH:  # the other CFG half of the stage itself comes first
        twin = stages.CFG_UNCOND if half == stages.CFG_COND else stages.CFG_COND
        out[f"{info.path} ({twin})"] = ref.read(info.path, half_index(info, twin))
    for other in ref.stages():
        if other.path == info.path or not _near(info, other):
            continue
        index = half_index(other, half) if other.cfg == stages.CFG_BOTH else ()
        expect = (other.shape[0] // 2, *other.shape[1:]) if index else tuple(other.shape)
        if expect != tuple(shape):
            continue
        out[f"{other.path} ({half})" if index else other.path] = ref.read(other.path, index)
    return out


def _sibling(ref: Trace, info: StageInfo, name: str, half: str) -> tuple[str, np.ndarray] | None:
    """A sibling stage of the same parent (`name` relative to it), in the same CFG half."""
    path = f"{info.path.rsplit('/', 1)[0]}/{name}"
    if path not in ref:
        return None
    other = ref.info(path)
    index = half_index(other, half) if other.cfg == stages.CFG_BOTH else ()
    return (f"{path} ({half})" if index else path), ref.read(path, index)


def _mix_parts(ref: Trace, info: StageInfo, spec) -> tuple | None:
    if spec is None or len(spec.mix_of) != 2:
        return None
    parts = [_sibling(ref, info, name, "") for name in spec.mix_of]
    if any(p is None for p in parts):
        return None
    rate = None
    if spec.mix_rate:
        part, field = spec.mix_rate.split(".")
        rate = ((ref.provenance.get("config_json") or {}).get(part) or {}).get(field)
    return parts[0], parts[1], rate


def _step_size(ref: Trace, info: StageInfo, spec) -> float | None:
    """An integration stage's dt: its schedule's float32 difference at its step (as solve_euler takes it)."""
    if spec is None or not spec.step_of:
        return None
    numbers = spec.fields(info.path)
    schedule = stages.StageSpec(spec.step_of[1], "").path(**numbers)
    if schedule not in ref or "step" not in numbers:
        return None
    t = ref.read(schedule).astype(np.float32)
    k = numbers["step"]
    return float(t[k + 1] - t[k]) if k + 1 < t.size else None


def case_for(ref: Trace, info: StageInfo, half: str, reference: np.ndarray, candidate: np.ndarray,
             label: str = "", twin=None) -> Case:
    """Everything the hint families may read for one failing stage, from the declarations."""
    spec = stages.find_spec(info.path)
    stage_input = _sibling(ref, info, spec.input, half) if spec is not None and spec.input else None
    input_layout = ref.info(f"{info.path.rsplit('/', 1)[0]}/{spec.input}").layout if stage_input else ""
    return Case(ref=reference, cand=candidate, layout=info.layout, label=label, kind=info.kind,
                sample_rate=info.sample_rate, others=lambda: neighbours(ref, info, half, reference.shape),
                stage_input=stage_input, input_layout=input_layout, mix=_mix_parts(ref, info, spec),
                step_size=_step_size(ref, info, spec), twin=twin)
