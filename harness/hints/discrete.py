"""The hint family of discrete stages (tokens, codes, masks): where they first differ, and by how many.

A sampled code that differs is a near tie or a bug; which one, its logits tell. A discrete stage that
declares its logits as its input (`input=` in its declaration: a [B, V] stage beside it) gets the logit
margin at the first differing index: the reference's logit of the reference's code minus that of the
candidate's, and the rank of the candidate's code among the reference's logits.
"""
from __future__ import annotations

import numpy as np

from harness.hints.base import Case, Hint


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
                f"{case.ref[first].item()!r}, candidate {case.cand[first].item()!r}{logit_margin(case, first)}", 0.0, 1.0)


def logit_margin(case: Case, first: tuple[int, ...]) -> str:
    """"; the reference's logits there: ..." for a code chosen from a declared [B, V] logits stage, else ""."""
    if case.stage_input is None or case.ref.dtype.kind not in "iu" or case.cand.dtype.kind not in "iu":
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
