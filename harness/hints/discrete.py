"""The hint family of discrete stages (tokens, codes, masks): where they first differ, and by how many.

A sampled code that differs is a near tie or a bug; which one, its logits tell. A discrete stage that
declares its logits as its input (`input=` in its declaration: a [B, V] stage beside it) gets the logit
margin at the first differing index: the reference's logit of the reference's code minus that of the
candidate's, and the rank of the candidate's code among the reference's logits.
A codebook lookup that declares its margin as its input (a stage whose name ends in `margin`: the
reference's distance to the second-nearest codeword minus the distance to the chosen one) also says how close
the reference's choice was where the candidate chose otherwise: a margin at the float32 noise level is a
near-tie, a large one a bug.
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
                f"{case.ref[first].item()!r}, candidate {case.cand[first].item()!r}{logit_margin(case, first)}"
                f"{_margin(case, differ, first)}", 0.0, 1.0)


def logit_margin(case: Case, first: tuple[int, ...]) -> str:
    """"; the reference's logits there: ..." for a code chosen from a declared [B, V] logits stage, else ""."""
    if (case.stage_input is None or case.stage_input[0].endswith("margin") or case.ref.dtype.kind not in "iu"
            or case.cand.dtype.kind not in "iu"):
        return ""
    name, logits = case.stage_input
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or not first or first[0] >= logits.shape[0]:
        return ""
    row, ref_code, cand_code = logits[first[0]], int(case.ref[first]), int(case.cand[first])
    if not (0 <= ref_code < row.size and 0 <= cand_code < row.size):
        return ""
    margin = row[ref_code] - row[cand_code]
    rank = 1 + int(np.sum(row > row[cand_code]))
    return (f"; the reference's logits there ({name}): {row[ref_code]:.4g} for the reference's code, "
            f"{row[cand_code]:.4g} for the candidate's (margin {margin:.3g}; the candidate's code ranks {rank} of "
            f"{row.size})")


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
