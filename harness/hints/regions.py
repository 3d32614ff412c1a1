"""Hint families about where the error is: confined to some frames, channels or the edges (padding, masks,
prompt regions), or to one CFG half only.
"""
from __future__ import annotations

import numpy as np

from harness.hints.base import Case, Hint

CONFINED = 0.9  # share of the error energy that must sit in the region named
AT_MOST = 0.2  # ... while the region holds at most this share of the positions (more is no confinement)


def _spans(idx: np.ndarray) -> str:
    """Consecutive runs of indices as 'a..b' text, at most four runs named."""
    runs, start = [], idx[0]
    for prev, cur in zip(idx[:-1], idx[1:]):
        if cur != prev + 1:
            runs.append((start, prev))
            start = cur
    runs.append((start, idx[-1]))
    text = ", ".join(f"{a}..{b}" if a != b else f"{a}" for a, b in runs[:4])
    return text + (f" and {len(runs) - 4} more runs" if len(runs) > 4 else "")


def _confined_along(case: Case, name: str) -> Hint | None:
    ax = case.axis(name)
    if ax is None or case.ref.shape[ax] < 4:
        return None
    other = tuple(i for i in range(case.ref.ndim) if i != ax)
    d = case.error()[1]
    energy = (d * d).sum(axis=other)
    total = energy.sum()
    if total == 0:
        return None
    n = case.ref.shape[ax]
    ref_zero_at = ~np.any(case.ref != 0, axis=other)
    if ref_zero_at.any() and not ref_zero_at.all() and energy[ref_zero_at].sum() >= CONFINED * total:
        idx = np.flatnonzero(ref_zero_at)  # where the reference is zero: a mask, padding, a prompt region
    else:
        order = np.argsort(energy)[::-1]
        k = int(np.searchsorted(np.cumsum(energy[order]) / total, CONFINED)) + 1
        if k > AT_MOST * n:
            return None
        idx = np.sort(order[:k])
    share = float(energy[idx].sum() / total)
    word = {"T": "frames", "S": "samples", "C": "channels", "V": "vocabulary ids"}.get(name, f"{name} positions")
    edge = ""
    if idx[0] == 0 and idx[-1] == len(idx) - 1:
        edge = " (the start: padding, a prompt region?)"
    elif idx[-1] == n - 1 and idx[0] == n - len(idx):
        edge = " (the end: padding?)"
    ref_zero = ~np.any(np.take(case.ref, idx, axis=ax) != 0)
    zeros = "; the reference is zero there and the candidate is not (a mask, padding, or a prompt built from " \
            "too much of the input)" if ref_zero else ""
    message = (f"the error is confined to {word} {_spans(idx)} ({len(idx)} of {n}){edge}: "
               f"{100 * share:.1f}% of the error energy{zeros}")
    return Hint("confined", message, float(np.sqrt(max(0.0, 1 - share))), share)


def confined(case: Case) -> Hint | None:
    best = None
    for name in ("T", "S", "C", "V"):
        h = _confined_along(case, name)
        if h is not None and (best is None or h.explained > best.explained):
            best = h
    return best


def half_only(case: Case) -> Hint | None:
    """Only one CFG half diverges: the other, fed the same x and t, is within tolerance."""
    if case.twin is None:
        return None
    twin_label, twin_err, twin_allowed = case.twin
    if twin_err > twin_allowed:
        return None
    half = "unconditional" if twin_label.endswith("(cond)") else "conditional"
    return Hint("half_only", f"only the {half} half diverges; {twin_label} is within tolerance (the halves share "
                "x and t, so look at what differs between them: zeroed prompt, style and content in the "
                "unconditional half)", 0.0, 1.0)
