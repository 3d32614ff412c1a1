"""A candidate whose shape differs from the reference's is a divergence: say how, and measure the overlap.

A port that produces 10 frames where upstream produces 12, drops the batch axis, or adds one has a bug at
that stage, and the comparison must say so there (exit 1), not refuse the run. This module lines the two
up as far as their axis names allow (a size-1 axis one side lacks is added or dropped; the rest is
transposed to the reference's order), describes every difference in words, and cuts both to their common
extent so the metrics cover the overlap.
"""
from __future__ import annotations

import numpy as np

from harness import stages
from harness.align import half_index
from harness.trace import StageInfo, Trace


def read_half(trace: Trace, ref_info: StageInfo, half: str) -> np.ndarray | None:
    """The candidate's values for one CFG half, in its own arrangement (None: it has no such half)."""
    info = trace.info(ref_info.path)
    if info.cfg == ref_info.cfg:
        return trace.read(info.path, half_index(info, half))
    if ref_info.cfg == stages.CFG_BOTH and info.cfg == half:
        return trace.read(info.path)
    return None


def overlap(cand: np.ndarray, cand_layout: str, ref: np.ndarray, ref_layout: str
            ) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """(reference overlap, candidate overlap, how the shapes differ); the overlaps are None where none exists."""
    r_axes = ref_layout.split()
    c_axes = cand_layout.split()
    said = f"shape {tuple(cand.shape)} ({cand_layout or '?'}) vs the reference's {tuple(ref.shape)} ({ref_layout})"
    if len(c_axes) != cand.ndim or len(set(c_axes)) != len(c_axes) or len(r_axes) != ref.ndim:
        return None, None, f"{said}: the candidate's layout does not name its axes"
    diffs: list[str] = []
    usable = True
    for axis in [a for a in c_axes if a not in r_axes]:  # extra axes: dropped when of size 1
        size = cand.shape[c_axes.index(axis)]
        diffs.append(f"extra axis {axis} of size {size}")
        if size == 1:
            cand = np.squeeze(cand, axis=c_axes.index(axis))
            c_axes.remove(axis)
        else:
            usable = False
    for axis in [a for a in r_axes if a not in c_axes]:  # missing axes: added when the reference's is size 1
        size = ref.shape[r_axes.index(axis)]
        diffs.append(f"axis {axis} missing (the reference's has size {size})")
        if size == 1 and usable:
            cand = cand[..., None]
            c_axes.append(axis)
        else:
            usable = False
    if not usable:
        return None, None, f"{said}: {', '.join(diffs)}; no overlap to measure"
    cand = np.transpose(cand, [c_axes.index(a) for a in r_axes])
    cut = []
    for axis, n_c, n_r in zip(r_axes, cand.shape, ref.shape):
        if n_c != n_r:
            diffs.append(f"{axis} {n_c} vs {n_r} ({abs(n_c - n_r)} {'short' if n_c < n_r else 'over'})")
        cut.append(min(n_c, n_r))
    if 0 in cut:
        return None, None, f"{said}: {', '.join(diffs)}; no overlap to measure"
    index = tuple(slice(0, n) for n in cut)
    where = ", ".join(":" if n == m else f":{n}" for n, m in zip(cut, ref.shape))
    return ref[index], cand[index], f"{said}: {', '.join(diffs)}; metrics on the overlap [{where}]"
