"""The hint family of discrete stages (tokens, codes, masks): where they first differ, and by how many.

A codebook lookup that declares its margin as its input (`StageSpec.input`: the reference's distance to the
second-nearest codeword minus the distance to the chosen one) also says how close the reference's choice was
where the candidate chose otherwise: a margin at the float32 noise level is a near-tie, a large one a bug.
"""
from __future__ import annotations

import numpy as np

from harness.hints.base import Case, Hint

#: a margin under this is a near-tie: ~100 float32 ulps of a distance of order 1 (l2-normalised codewords' squared
#: distances lie in [0, 4]), where two correct float32 implementations may choose differently
NEAR_TIE = 1e-5


def exact(case: Case) -> Hint | None:
    if case.ref.shape != case.cand.shape:
        return None
    differ = case.ref != case.cand
    n = int(differ.sum())
    if n == 0:
        return None
    first = tuple(int(i) for i in np.argwhere(differ)[0])
    # a full description of a discrete difference: always shown
    return Hint("exact", f"{n} of {differ.size} values differ; the first at {list(first)}: reference "
                f"{case.ref[first].item()!r}, candidate {case.cand[first].item()!r}{_margin(case, differ, first)}",
                0.0, 1.0)


def _margin(case: Case, differ: np.ndarray, first: tuple[int, ...]) -> str:
    """The reference's codebook margin where the codes differ ("" when the stage declares none)."""
    if case.stage_input is None or not case.stage_input[0].endswith("margin"):
        return ""
    margin = np.asarray(case.stage_input[1], np.float64)
    if margin.shape != differ.shape:
        return ""
    smallest = float(margin[differ].min())
    return (f"; the reference's codebook margin there {margin[first]:.2g} (smallest where they differ {smallest:.2g}, "
            f"median over all {np.median(margin):.2g}): {'near-ties' if smallest < NEAR_TIE else 'not near-ties'}")
