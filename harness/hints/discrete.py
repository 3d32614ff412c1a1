"""The hint family of discrete stages (tokens, codes, masks): where they first differ, and by how many."""
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
                f"{case.ref[first].item()!r}, candidate {case.cand[first].item()!r}", 0.0, 1.0)
