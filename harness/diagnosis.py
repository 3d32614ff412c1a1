"""Cheap tests of the usual porting bugs, run on a failing stage to say what kind of bug it looks like.

Each test takes the reference and candidate tensors of one stage (and, where it needs them, other
reference stages) and returns a `Hint` with its evidence, or nothing. A test fires only when the
relation it names explains the candidate to within `EXPLAINED` relative L2: a hint is a claim that
can be checked, not a guess.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

EXPLAINED = 1e-3  # relative L2 residual under which a relation counts as explaining the candidate


@dataclass(frozen=True)
class Hint:
    kind: str  # transposed, sign_flip, swapped_halves, affine, offset, channel_offset, time_shift,
    #            equals_stage, difference_is_stage, cfg_mix, masked_region
    message: str
    residual: float  # relative L2 of what the relation leaves unexplained

    def to_json(self) -> dict:
        return {"kind": self.kind, "message": self.message, "residual": self.residual}


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """Relative L2 of a against b, in float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = np.linalg.norm(b)
    num = np.linalg.norm(a - b)
    return float(num / den) if den > 0 else (0.0 if num == 0 else float("inf"))


def transposed(ref: np.ndarray, cand: np.ndarray, layout: str) -> Hint | None:
    """The candidate holds the reference's values with two axes exchanged, or reinterpreted by a reshape."""
    if ref.size != cand.size or ref.ndim < 2:
        return None
    names = layout.split() if len(layout.split()) == ref.ndim else [f"ax{i}" for i in range(ref.ndim)]
    for perm in itertools.permutations(range(ref.ndim)):
        moved_axes = [p for p in perm if ref.shape[p] > 1]
        if moved_axes == sorted(moved_axes):
            continue  # moving only axes of size 1 changes nothing
        moved = np.transpose(ref, perm)
        if moved.shape == cand.shape:
            r = _rel(cand, moved)
            if r < EXPLAINED:
                return Hint("transposed", f"candidate is the reference with axes {' '.join(names)} -> "
                            f"{' '.join(names[p] for p in perm)} (a layout mix-up, e.g. B C T vs B T C)", r)
        if cand.shape == ref.shape:
            r = _rel(cand, moved.reshape(ref.shape))
            if r < EXPLAINED:
                return Hint("transposed", f"candidate is the reference laid out as {' '.join(names[p] for p in perm)} "
                            f"and read back as {' '.join(names)} (a reshape/view where a transpose belongs)", r)
    return None


def sign_flip(ref: np.ndarray, cand: np.ndarray) -> Hint | None:
    r = _rel(-cand, ref)
    return Hint("sign_flip", "candidate is minus the reference (a sign or direction error)", r) if r < EXPLAINED else None


def swapped_halves(ref: np.ndarray, cand: np.ndarray, layout: str) -> Hint | None:
    """The two halves of the channel axis come in the other order (a chunk/split read in the wrong order)."""
    axes = layout.split()
    if "C" not in axes or len(axes) != ref.ndim or ref.shape[axes.index("C")] % 2:
        return None
    ax = axes.index("C")
    a, b = np.split(cand, 2, axis=ax)
    r = _rel(np.concatenate([b, a], axis=ax), ref)
    if r < EXPLAINED:
        return Hint("swapped_halves", "the two halves of the channel axis are swapped (chunk order, e.g. scale/shift)", r)
    return None


def affine(ref: np.ndarray, cand: np.ndarray) -> Hint | None:
    """cand = a * ref + b for one scalar pair: a scale error, a missing `1 +`, a constant offset."""
    x = ref.reshape(-1).astype(np.float64)
    y = cand.reshape(-1).astype(np.float64)
    if x.size < 2 or np.std(x) == 0:
        return None
    a, b = np.polyfit(x, y, 1)
    r = _rel(y, a * x + b) if np.linalg.norm(y) > 0 else 1.0
    if r >= EXPLAINED:
        return None
    if abs(a - 1) < 1e-3:
        return Hint("offset", f"candidate = reference {b:+.4g} everywhere (a constant offset)", r)
    return Hint("affine", f"candidate = {a:.4g} x reference {b:+.4g} (a scale/offset error)", r)


def channel_offset(ref: np.ndarray, cand: np.ndarray, layout: str) -> Hint | None:
    """The difference is constant along time but differs per channel (a per-channel bias or mean)."""
    axes = layout.split()
    if "T" not in axes or "C" not in axes or len(axes) != ref.ndim:
        return None
    d = cand.astype(np.float64) - ref
    per_channel = d.mean(axis=axes.index("T"), keepdims=True)
    if np.linalg.norm(per_channel) == 0:
        return None
    r = _rel(cand, ref + per_channel)
    if r < EXPLAINED:
        mean = float(per_channel.mean())
        return Hint("channel_offset", f"candidate = reference + a per-channel offset constant in time "
                    f"(mean {mean:+.4g}, range {per_channel.min():+.3g}..{per_channel.max():+.3g})", r)
    return None


def time_shift(ref: np.ndarray, cand: np.ndarray, layout: str, max_shift: int = 8) -> Hint | None:
    axes = layout.split()
    if "T" not in axes or len(axes) != ref.ndim:
        return None
    ax = axes.index("T")
    n = ref.shape[ax]
    for k in [s for m in range(1, max_shift + 1) for s in (m, -m)]:
        if abs(k) >= n // 2:
            break
        a = np.take(cand, range(max(k, 0), n + min(k, 0)), axis=ax)
        b = np.take(ref, range(max(-k, 0), n + min(-k, 0)), axis=ax)
        r = _rel(a, b)
        if r < EXPLAINED:
            return Hint("time_shift", f"candidate is the reference shifted by {k:+d} frame(s) in time", r)
    return None


def masked_region(ref: np.ndarray, cand: np.ndarray, layout: str) -> Hint | None:
    """The reference is exactly zero over a span of frames where the candidate is not (a missing mask),
    and the two agree elsewhere."""
    axes = layout.split()
    if "T" not in axes or len(axes) != ref.ndim:
        return None
    ax = axes.index("T")
    other = tuple(i for i in range(ref.ndim) if i != ax)
    ref_zero = ~np.any(ref != 0, axis=other)
    cand_zero = ~np.any(cand != 0, axis=other)
    spot = ref_zero & ~cand_zero
    if not spot.any() or spot.all():
        return None
    keep = ~spot
    r = _rel(np.compress(keep, cand, axis=ax), np.compress(keep, ref, axis=ax))
    if r < EXPLAINED:
        idx = np.flatnonzero(spot)
        return Hint("masked_region", f"candidate matches the reference except on frames {idx[0]}..{idx[-1]}, "
                    "where the reference is zero and the candidate is not (zeros expected there: a mask, "
                    "padding, or a prompt built from too much of the input)", r)
    return None


def relation_to_stages(ref: np.ndarray, cand: np.ndarray, others: dict[str, np.ndarray]) -> Hint | None:
    """The candidate equals another reference stage, or its error is a multiple of one.

    Catches values read from the wrong place (shift where scale belongs, the cond half's style in the
    uncond half) and updates with a wrong sign or a missing term (the error is -1 x another stage).
    """
    best: Hint | None = None
    # frames that both sides zero (masks, the prompt region) say nothing about the relation
    keep = ~((cand == 0) & (ref == 0)).reshape(-1)
    c, d = cand.reshape(-1)[keep].astype(np.float64), (cand.astype(np.float64) - ref).reshape(-1)[keep]
    for name, other in others.items():
        if other.shape != cand.shape:
            continue
        o = other.reshape(-1)[keep].astype(np.float64)
        r = _rel(c, o)
        if r < EXPLAINED:
            return Hint("equals_stage", f"candidate equals the reference's {name}", r)
        oo = float(o @ o)
        if oo == 0:
            continue
        a = float(o @ d) / oo
        r = _rel(d, a * o)
        if r < EXPLAINED and a != 0 and (best is None or r < best.residual):
            best = Hint("difference_is_stage", f"candidate - reference = {a:.4g} x the reference's {name}", r)
    return best


def cfg_mix(ref: np.ndarray, cand: np.ndarray, v_cond: np.ndarray, v_uncond: np.ndarray, rate: float | None) -> Hint | None:
    """For the CFG-mixed velocity: which mix of the two halves did the candidate use?"""
    basis = np.stack([v_cond.reshape(-1), v_uncond.reshape(-1)], axis=1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(basis, cand.reshape(-1).astype(np.float64), rcond=None)
    r = _rel(cand.reshape(-1), basis @ coef)
    if r >= EXPLAINED:
        return None
    want = f"{1 + rate:.3g} v_cond - {rate:.3g} v_uncond" if rate is not None else "the reference's mix"
    return Hint("cfg_mix", f"candidate = {coef[0]:.4g} v_cond {coef[1]:+.4g} v_uncond; upstream uses {want} "
                "(a CFG formula error)", r)


def diagnose(ref: np.ndarray | None, cand: np.ndarray, layout: str,
             others: Callable[[], dict[str, np.ndarray]] | None = None,
             cfg_parts: tuple[np.ndarray, np.ndarray, float | None] | None = None) -> list[Hint]:
    """Every hint that explains a failing stage, most specific first."""
    if ref is None:
        return []
    if ref.shape != cand.shape:
        h = transposed(ref, cand, layout)
        return [h] if h else []
    if not np.all(np.isfinite(cand)):
        return []
    tests = [
        lambda: transposed(ref, cand, layout),
        lambda: sign_flip(ref, cand),
        lambda: swapped_halves(ref, cand, layout),
        lambda: masked_region(ref, cand, layout),
        lambda: time_shift(ref, cand, layout),
        lambda: cfg_mix(ref, cand, *cfg_parts) if cfg_parts else None,
        lambda: relation_to_stages(ref, cand, others()) if others else None,
        lambda: affine(ref, cand),
        lambda: channel_offset(ref, cand, layout),
    ]
    # a relation counts only if it explains most of the error: near-identical tensors match anything
    base = _rel(cand, ref)
    return [h for h in (t() for t in tests) if h is not None and h.residual < 0.1 * base]
