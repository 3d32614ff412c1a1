"""Hint families that relate the candidate to other reference stages: it equals one (a value read from the
wrong place, a neighbouring step or token: an off-by-one), its error is a multiple of one (a missing `1 +`,
a missing term), it is a mix of two (a CFG formula, a sum where a merge belongs), or, for an integration
stage, the update it took was reversed or rescaled.
"""
from __future__ import annotations

import itertools

import numpy as np

from harness.hints.base import Case, Hint, explained, hint

MAX_PAIRS_FROM = 8  # the stages most correlated with the candidate that a two-stage mix is sought among


def _keep(case: Case) -> np.ndarray:
    """Positions that say something about a relation: not those both sides zero (masks, prompt frames)."""
    return ~((case.cand == 0) & (case.ref == 0))


def equals_stage(case: Case) -> Hint | None:
    keep = _keep(case)
    best = None
    for name, other in case.neighbours().items():
        if other.shape != case.cand.shape:
            continue
        share = explained(case, other.astype(np.float64), keep)
        if share > 0.999 and (best is None or share > best.explained):
            best = Hint("equals_stage", f"candidate equals the reference's {name}", 1 - share, share)
    return best


def _difference(case: Case) -> tuple[float, str, float] | None:
    """The other stage whose multiple best explains cand - ref: (multiple, its name, share explained)."""
    keep = _keep(case)
    d = case.error()[1][keep]
    best = None
    for name, other in case.neighbours().items():
        if other.shape != case.cand.shape:
            continue
        o = other.astype(np.float64)[keep]
        oo = float(o @ o)
        a = float(o @ d) / oo if oo else 0.0
        if a == 0:
            continue
        share = explained(case, case.ref + a * other, keep)
        if share >= 0.5 and (best is None or share > best[2]):
            best = (a, name, share)
    return best


def difference_is_stage(case: Case) -> Hint | None:
    """cand - ref = a x another stage: a missing or extra term (e.g. -1 x the norm: a missing `1 +`)."""
    found = _difference(case)
    if found is None:
        return None
    a, name, share = found
    return Hint("difference_is_stage", f"candidate - reference = {a:.4g} x the reference's {name} "
                f"(explains {100 * share:.1f}% of the error)", 1 - share, share)


def integration_step(case: Case) -> Hint | None:
    """For an integration stage (x_next = x + dt v): the update the candidate took, named in words."""
    found = _difference(case) if case.step_size not in (None, 0) else None
    if found is None:
        return None
    a, name, share = found
    k = 1 + a / case.step_size  # the candidate took x + k dt v
    if abs(k + 1) < 0.02:
        words = "the update went backwards: x - dt v where upstream takes x + dt v"
    elif abs(k) < 0.02:
        words = "no update was taken: x where upstream takes x + dt v"
    else:
        words = f"the update was scaled: x + {k:.3g} dt v where upstream takes x + dt v"
    return Hint("integration_step", f"{words} (v = the reference's {name}, dt = {case.step_size:.4g}; explains "
                f"{100 * share:.1f}% of the error)", 1 - share, share)


def _solve(cand: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, np.ndarray]:
    basis = np.stack([a.reshape(-1), b.reshape(-1)], axis=1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(basis, cand.reshape(-1).astype(np.float64), rcond=None)
    return float(coef[0]), float(coef[1]), (basis @ coef).reshape(cand.shape)


def declared_mix(case: Case) -> Hint | None:
    """A stage declared as a mix of two others (the CFG mix): which mix the candidate used."""
    if case.mix is None:
        return None
    (name_a, a), (name_b, b), rate = case.mix
    ca, cb, pred = _solve(case.cand, a, b)
    want = f"{1 + rate:.3g} {name_a} - {rate:.3g} {name_b}" if rate is not None else "the reference's mix"
    return hint(case, "mix", f"candidate = {ca:.4g} {name_a} {cb:+.4g} {name_b}; upstream uses {want} "
                "(a mixing formula error)", pred)


def stage_mix(case: Case) -> Hint | None:
    """cand = a X + b Y for two other reference stages: e.g. a sum where a concatenation and merge belongs."""
    others = {n: o for n, o in case.neighbours().items() if o.shape == case.cand.shape and np.any(o)}
    if len(others) < 2:
        return None
    c = case.error()[0].reshape(-1)
    cn = np.linalg.norm(c) or 1.0

    def corr(o):
        o = o.reshape(-1).astype(np.float64)
        return abs(float(o @ c)) / ((np.linalg.norm(o) or 1.0) * cn)

    top = sorted(others, key=lambda n: corr(others[n]), reverse=True)[:MAX_PAIRS_FROM]
    best = None
    for na, nb in itertools.combinations(top, 2):
        ca, cb, pred = _solve(case.cand, others[na], others[nb])
        h = hint(case, "mix", f"candidate = {ca:.4g} x the reference's {na} {cb:+.4g} x its {nb}", pred)
        if h is not None and (best is None or h.explained > best.explained):
            best = h
    return best
