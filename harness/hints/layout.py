"""Hint families about where values went: transposes and reshapes, swapped halves, sign flips, time shifts,
and lengths that differ.

These relations are exact when they hold (a layout mix-up moves values, it does not change them), so each
one is a prediction of the candidate from the reference alone.
"""
from __future__ import annotations

import itertools

import numpy as np

from harness.hints.base import Case, Hint, hint, rel

MAX_SHIFT = 16  # frames a time shift is searched over


def transposed(case: Case) -> Hint | None:
    """The candidate holds the reference's values with axes exchanged, or reinterpreted by a reshape."""
    ref, cand, names = case.ref, case.cand, case.axes
    if ref.size != cand.size or ref.ndim < 2:
        return None
    best = None
    for perm in itertools.permutations(range(ref.ndim)):
        moved_axes = [p for p in perm if ref.shape[p] > 1]
        if moved_axes == sorted(moved_axes):
            continue  # moving only axes of size 1 changes nothing
        moved = np.transpose(ref, perm)
        target = " ".join(names[p] for p in perm)
        if moved.shape == cand.shape:
            h = _exact_hint(case, "transposed", moved, f"candidate is the reference with axes {' '.join(names)} -> "
                            f"{target} (a layout mix-up, e.g. B C T vs B T C)")
        elif cand.shape == ref.shape:
            h = _exact_hint(case, "transposed", moved.reshape(ref.shape), f"candidate is the reference laid out "
                            f"as {target} and read back as {' '.join(names)} (a reshape/view where a transpose belongs)")
        else:
            h = None
        if h is not None and (best is None or h.residual < best.residual):
            best = h
    return best


def _exact_hint(case: Case, kind: str, prediction: np.ndarray, message: str) -> Hint | None:
    """A relation between tensors of possibly different shapes: it must predict the candidate to 1e-3."""
    if prediction.shape != case.cand.shape:
        return None
    r = rel(case.cand, prediction)
    if r >= 1e-3:
        return None
    if case.cand.shape == case.ref.shape:
        return hint(case, kind, message, prediction)
    return Hint(kind, message, r, 1.0)


def sign_flip(case: Case) -> Hint | None:
    return hint(case, "sign_flip", "candidate = minus the reference (a sign or direction error)", -case.ref)


def swapped_halves(case: Case) -> Hint | None:
    """The two halves (or the chunks) of the channel axis come in another order: a chunk/split read wrongly."""
    ax = case.axis("C")
    if ax is None or case.ref.shape[ax] < 2:
        return None
    best = None
    n = case.ref.shape[ax]
    for chunks in (2, 3, 4):
        if n % chunks:
            continue
        parts = np.split(case.ref, chunks, axis=ax)
        for order in itertools.permutations(range(chunks)):
            if order == tuple(range(chunks)):
                continue
            pred = np.concatenate([parts[i] for i in order], axis=ax)
            what = "the two halves of the channel axis are swapped" if chunks == 2 else \
                f"the {chunks} chunks of the channel axis come in the order {order}"
            h = hint(case, "swapped_halves", f"{what} (chunk order, e.g. scale/shift)", pred)
            if h is not None and (best is None or h.explained > best.explained):
                best = h
    return best


def _shifted(x: np.ndarray, k: int, ax: int) -> np.ndarray:
    """x moved k positions later along `ax` (k < 0: earlier), the vacated positions filled with the edge."""
    idx = np.clip(np.arange(x.shape[ax]) - k, 0, x.shape[ax] - 1)
    return np.take(x, idx, axis=ax)


def _defined(shape: tuple[int, ...], k: int, ax: int) -> np.ndarray:
    """The positions a shift by k says anything of: all but the k it vacates (a port fills those with zeros, the
    edge or its padding, whatever it does)."""
    source = np.arange(shape[ax]) - k
    keep = (source >= 0) & (source < shape[ax])
    return np.broadcast_to(np.expand_dims(keep, tuple(i for i in range(len(shape)) if i != ax)), shape)


def time_shift(case: Case) -> Hint | None:
    """The candidate is the reference moved along time by k frames (or samples): a lag, a padding offset."""
    ax = case.axis("T") if case.axis("T") is not None else case.axis("S")
    if ax is None:
        return None
    n = case.ref.shape[ax]
    best = None
    for k in [s for m in range(1, MAX_SHIFT + 1) for s in (m, -m)]:
        if abs(k) >= n // 2:
            break
        h = hint(case, "time_shift", f"candidate is the reference shifted by {k:+d} position(s) along "
                 f"{case.axes[ax]} (the {abs(k)} it vacates aside)", _shifted(case.ref, k, ax),
                 _defined(case.ref.shape, k, ax))
        if h is not None and (best is None or h.explained > best.explained):
            best = h
    return best


def length(ref: np.ndarray, cand: np.ndarray, layout: str) -> Hint | None:
    """Shapes differ on one axis: how, and where the overlap agrees: extra or missing positions at the end,
    at the start, or as one block inside (frames, samples, steps, tokens added or dropped)."""
    if ref.ndim != cand.ndim:
        return Hint("length", f"candidate has {cand.ndim} axes {tuple(cand.shape)}, the reference {ref.ndim} "
                    f"{tuple(ref.shape)} (an extra or a missing axis)", 1.0, 0.0)
    differ = [i for i in range(ref.ndim) if ref.shape[i] != cand.shape[i]]
    if len(differ) != 1:
        return None
    ax = differ[0]
    axes = layout.split()
    name = axes[ax] if len(axes) == ref.ndim else f"axis {ax}"
    short, long_ = (ref, cand) if ref.shape[ax] < cand.shape[ax] else (cand, ref)
    extra = long_.shape[ax] - short.shape[ax]
    head = _length_head(ref, cand, ax, name)
    best_off, best_r = 0, float("inf")
    for off in sorted({*range(0, min(extra, 64) + 1), extra}):
        window = np.take(long_, range(off, off + short.shape[ax]), axis=ax)
        r = rel(window, short) if long_ is cand else rel(short, window)
        if r < best_r:
            best_off, best_r = off, r
    if best_r >= 1e-3:
        block = _inner_block(short, long_, ax)
        if block is not None:
            where, r = block
            side = "the candidate holds them" if long_ is cand else "the reference holds them"
            return Hint("length", f"{head}: a block of {extra} inside, at {name} = {where} ({side}); before and "
                        f"after it the two agree (relative L2 {r:.2g})", r, 1.0)
    where = "at the end" if best_off == 0 else ("at the start" if best_off == extra else f"{best_off} at the start")
    agree = "agrees" if best_r < 1e-3 else "does not agree either"
    return Hint("length", f"{head}; aligned with the difference {where}, the overlap {agree} "
                f"(relative L2 {best_r:.2g})", best_r, 1.0 if best_r < 1e-3 else 0.0)


def _length_head(ref: np.ndarray, cand: np.ndarray, ax: int, name: str) -> str:
    extra = abs(cand.shape[ax] - ref.shape[ax])
    more = "more" if cand.shape[ax] > ref.shape[ax] else "fewer"
    return f"candidate has {extra} {more} position(s) along {name} ({cand.shape[ax]} vs {ref.shape[ax]})"


def _inner_block(short: np.ndarray, long_: np.ndarray, ax: int) -> tuple[int, float] | None:
    """(index, relative L2) where `long_` holds one contiguous block more than `short` (everything before the
    index and everything after the block agreeing), or None."""
    n, extra = short.shape[ax], long_.shape[ax] - short.shape[ax]
    s = np.moveaxis(short.astype(np.float64), ax, 0).reshape(n, -1)
    g = np.moveaxis(long_.astype(np.float64), ax, 0).reshape(n + extra, -1)
    scale = np.sqrt(np.mean(s * s)) or 1.0
    tol = 1e-3 * scale
    head_ok = np.sqrt(np.mean((s - g[:n]) ** 2, axis=1)) <= tol  # positions agreeing with no shift
    tail_ok = np.sqrt(np.mean((s - g[extra:]) ** 2, axis=1)) <= tol  # agreeing shifted by the block
    prefix = int(np.argmin(head_ok)) if not head_ok.all() else n
    suffix_from = n - int(np.argmin(tail_ok[::-1])) if not tail_ok.all() else 0
    if prefix == 0 or suffix_from > prefix or suffix_from == n:
        return None
    joined = np.concatenate([g[:prefix], g[prefix + extra:]])
    return prefix, rel(joined, s)


def length_against_input(case: Case, found: Hint | None) -> Hint | None:
    """Lengths that differ, read against the stage's declared input (`StageSpec.input`) along the same axis:
    a stage that makes its length from its input's (a rate or a factor: codes to frames, frames to samples)
    and gets it wrong either keeps the input's length (the factor not applied) or lands one position off
    the same fractional product (rounded where the other truncates). Both are exact relations of lengths,
    whatever the values; `found` (the plain length hint) is extended, not replaced."""
    if case.stage_input is None or case.ref.ndim != case.cand.ndim:
        return found
    differ = [i for i in range(case.ref.ndim) if case.ref.shape[i] != case.cand.shape[i]]
    names, in_names = case.layout.split(), case.input_layout.split()
    if len(differ) != 1 or len(names) != case.ref.ndim or names[differ[0]] not in in_names:
        return found
    label, value = case.stage_input
    ax = differ[0]
    name = names[ax]
    if len(in_names) != value.ndim:
        return found
    n_in, n_ref, n_cand = value.shape[in_names.index(name)], case.ref.shape[ax], case.cand.shape[ax]
    relation = _length_relation(n_in, n_ref, n_cand)
    if relation is None:
        return found
    # where the overlap agrees the plain hint's alignment is evidence too; where it does not (the values were
    # made at another length, e.g. interpolated), only its head is
    said = found.message if found is not None and found.explained >= 1.0 else _length_head(case.ref, case.cand, ax, name)
    return Hint("length", f"{said}; its input {label} has {n_in} along {name}: {relation}", 0.0, 1.0)


def _length_relation(n_in: int, n_ref: int, n_cand: int) -> str | None:
    if n_in == 0:
        return None
    ratio = f"{n_ref} = {n_ref / n_in:.4g} x {n_in}"
    if n_cand == n_in:
        return f"the candidate keeps its input's length where the reference makes {ratio} (a factor not applied)"
    if abs(n_cand - n_ref) != 1:
        return None
    low, high = n_ref / n_in, (n_ref + 1) / n_in
    if n_cand == n_ref + 1:
        return (f"one more than the reference's {ratio}: {n_in} x a factor in [{low:.4g}, {high:.4g}) truncated gives "
                f"{n_ref}, rounded up {n_cand} (the candidate rounds where the reference truncates)")
    low, high = (n_ref - 1) / n_in, n_ref / n_in
    return (f"one fewer than the reference's {ratio}: {n_in} x a factor in ({low:.4g}, {high:.4g}] rounded up gives "
            f"{n_ref}, truncated {n_cand} (the candidate truncates where the reference rounds)")
