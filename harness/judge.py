"""Judging one candidate tensor against its reference, whatever the two hold.

Float stages are judged by error against the noise floor (harness/tolerance.py). Everything else is
judged without a cast that could hide a difference:
- exact stages (declared `kind = exact`, or integers, bools and byte strings on both sides) compare value
  for value: the count of differing values and the first one, with both values; integers that round floats
  (int16 audio) are exact when teacher-forced, and against their floor free-running where the reference's own
  float64 run does not reproduce them;
- complex stages compare as complex numbers (harness/metrics.py); complex against real is a divergence;
- NaN and Inf in the reference (a mask of -inf, say) must be matched by the candidate at the same places;
  the metrics then cover the finite values, and the note says how many were set aside.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness import metrics as M
from harness.tolerance import Rule
from harness.trace import Floor

_TEXT, _WHOLE = "SU", "biu"


@dataclass(frozen=True)
class Judged:
    """One side's verdict (local or propagated) on one stage half."""

    ok: bool
    metrics: M.Metrics | None
    allowed: float | None
    note: str = ""


def incompatible(ref: np.ndarray, cand: np.ndarray) -> str:
    """Why two arrays' kinds of value cannot be compared at all ("" where they can)."""
    rk, ck = ref.dtype.kind, cand.dtype.kind
    if (rk in _TEXT) != (ck in _TEXT):
        return f"the candidate holds {_kind(cand)} where the reference holds {_kind(ref)}"
    if (rk == "c") != (ck == "c"):
        return (f"the candidate is {_kind(cand)} where the reference is {_kind(ref)}: complex and real values are "
                "not compared by a cast")
    return ""


def judge(ref: np.ndarray, cand: np.ndarray, rule: Rule, floor: Floor | None, exact: bool = False,
          free_running: bool = False) -> Judged:
    """`exact`: the stage is declared exact (codes, ids). Integers of a stage that is not (int16 audio: floats
    rounded) are judged free-running against the floor as numbers where the reference's own float64 run does
    not reproduce them (a floor above zero: float noise moves some values across a rounding boundary, one
    unit); teacher-forced, or with a zero floor, exactly."""
    ref, cand = np.asarray(ref), np.asarray(cand)
    rk, ck = ref.dtype.kind, cand.dtype.kind
    clash = incompatible(ref, cand)
    if clash:
        return Judged(False, None, None, clash)
    if rk in _TEXT:
        return _exact(ref, cand, with_metrics=False)
    rounded = free_running and not exact and rk in "iu" and ck in "iu" and floor is not None and (floor.rel_l2 or 0) > 0
    if not rounded and (exact or (rk in _WHOLE + "b" and ck in _WHOLE + "b")):
        return _exact(ref, cand, with_metrics=True)
    ref, cand, note, matched = _set_aside_nonfinite(ref, cand)
    m = M.compute(ref, cand)
    ok = matched and rule.passes(m, floor)
    if rk != ck:
        note = "; ".join(x for x in (note, f"{_kind(cand)} compared with the reference's {_kind(ref)} as numbers") if x)
    return Judged(ok, m, rule.allowed(m, floor), note)


def _kind(a: np.ndarray) -> str:
    names = {"S": "byte strings", "U": "text", "c": f"complex ({a.dtype})", "b": "bools"}
    return names.get(a.dtype.kind, str(a.dtype))


def _exact(ref: np.ndarray, cand: np.ndarray, with_metrics: bool) -> Judged:
    """Value for value: the count of differing values and the first of them."""
    differ = ref != cand
    if ref.dtype.kind in "fc" or cand.dtype.kind in "fc":
        differ &= ~(_nan(ref) & _nan(cand))  # NaN where NaN is the same value here
    count = int(np.count_nonzero(differ))
    m = None
    if with_metrics:  # for the table and plots only; the verdict is the count above
        m = M.compute(*(a.astype(np.uint8) if a.dtype.kind == "b" else a for a in (ref, cand)))
    if not count:
        return Judged(True, m, 0.0 if m else None, "")
    at = tuple(int(i) for i in np.unravel_index(int(np.argmax(differ)), ref.shape))
    note = (f"exact stage: {count} of {ref.size} values differ, the first at {list(at)} "
            f"(reference {_show(ref[at])}, candidate {_show(cand[at])})")
    return Judged(False, m, 0.0 if m else None, note)


def _nan(a: np.ndarray) -> np.ndarray:
    return np.isnan(a) if a.dtype.kind in "fc" else np.zeros(a.shape, bool)


def _show(x) -> str:
    text = repr(x.item() if hasattr(x, "item") else x)
    return text if len(text) <= 40 else text[:37] + "..."


def _set_aside_nonfinite(ref: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray, str, bool]:
    """NaN/Inf of the reference matched by the candidate are set to 0 on both sides; unmatched ones fail."""
    if ref.dtype.kind not in "fc" or np.isfinite(ref).all():
        return ref, cand, "", True
    bad = ~np.isfinite(ref)
    same = bad & ((ref == cand) | (_nan(ref) & _nan(cand)))
    count, matched = int(bad.sum()), int(same.sum())
    ref, cand = np.where(same, 0, ref), np.where(same, 0, cand)
    if matched == count:
        return ref, cand, f"the reference holds {count} NaN/Inf value(s), matched by the candidate; set aside", True
    first = tuple(int(i) for i in np.argwhere(bad & ~same)[0])
    return ref, cand, (f"the reference holds {count} NaN/Inf value(s); the candidate differs at {count - matched} of "
                       f"them, the first at {list(first)}"), False
