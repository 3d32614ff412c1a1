"""Reading one CFG half of a stage in the reference's layout, whatever arrangement the other trace chose.

A candidate may hold a batched CFG pair (as the reference does) or each half on its own, and may declare
another axis order (a port's `B T C` where we have `B C T`): the permutation is applied and said, never
hidden.
"""
from __future__ import annotations

import numpy as np

from harness import stages
from harness.floors import halves
from harness.trace import StageInfo, Trace

__all__ = ["aligned", "half_index", "halves"]


def half_index(info: StageInfo, half: str) -> tuple:
    for name, index in halves(info):
        if name == half:
            return index
    return ()


def aligned(trace: Trace, ref_info: StageInfo, half: str, want: tuple) -> tuple[np.ndarray | None, str, str]:
    """(data, transform said, problem): one half of a stage of `trace` in the reference's layout."""
    info = trace.info(ref_info.path)
    if info.cfg == ref_info.cfg:
        index = half_index(info, half)
    elif ref_info.cfg == stages.CFG_BOTH and info.cfg in stages.HALVES:
        if info.cfg != half:
            return None, "", f"the candidate holds only the {info.cfg} half"
        index = ()
    else:
        return None, "", f"CFG arrangement {info.cfg!r}, reference has {ref_info.cfg!r}"
    data = trace.read(info.path, index)
    transform = ""
    if info.layout != ref_info.layout:
        axes_c, axes_r = info.layout.split(), ref_info.layout.split()
        if sorted(axes_c) != sorted(axes_r) or len(axes_c) != data.ndim:
            return None, "", f"layout {info.layout!r} cannot be mapped onto the reference's {ref_info.layout!r}"
        data = np.transpose(data, [axes_c.index(a) for a in axes_r])
        transform = f"transposed {info.layout} -> {ref_info.layout}"
    if data.shape != want:
        return None, transform, f"shape {tuple(data.shape)} vs reference {tuple(want)} ({ref_info.layout})"
    return data, transform, ""
