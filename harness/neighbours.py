"""Which other reference stages a failing stage's hints may test against, read from the declarations.

A misplaced value usually comes from close by: the other CFG half of the stage itself, a sibling in the
same block or step, the same stage one step or token earlier or later (an off-by-one), or a boundary stage
of the run (inputs, set-up). A stage that declares itself a mix of siblings (`mix_of`) also gets those
siblings and the rate its config names, so the mix a candidate used can be solved for.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness import stages
from harness.align import half_index
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


def _mix_parts(ref: Trace, info: StageInfo) -> tuple[np.ndarray, np.ndarray, float | None] | None:
    spec = stages.find_spec(info.path)
    if spec is None or len(spec.mix_of) != 2:
        return None
    parent = info.path.rsplit("/", 1)[0]
    paths = [f"{parent}/{name}" for name in spec.mix_of]
    if not all(p in ref for p in paths):
        return None
    rate = None
    if spec.mix_rate:
        part, field = spec.mix_rate.split(".")
        rate = ((ref.provenance.get("config_json") or {}).get(part) or {}).get(field)
    return ref.read(paths[0]), ref.read(paths[1]), rate


def hint_context(ref: Trace, info: StageInfo, half: str, shape: tuple) -> tuple[Callable[[], dict], tuple | None]:
    """(a lazy reader of the neighbours, the mix parts or None) for the hints of one failing stage."""
    return (lambda: neighbours(ref, info, half, shape)), _mix_parts(ref, info)
