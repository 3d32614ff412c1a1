"""Hint families about values scaled or bent: a gain or an offset (global, per channel, per position), a simple
elementwise function of the reference (square, root, exp, log, tanh, abs), and a normalisation over the wrong
axes or span.

A darker or brighter mel is an offset; log10 where ln belongs is a gain of 0.434; power where magnitude
belongs is a square; a missing `1 +` is a per-channel gain; LayerNorm where GroupNorm belongs is a
standardisation over channels alone.
"""
from __future__ import annotations

import numpy as np

from harness.hints.base import Case, Hint, explained, group_affine, hint, line_fit, rel, unmove

MIN_GROUP = 8  # values per group a per-channel or per-position fit needs


def affine(case: Case) -> Hint | None:
    """cand = a x ref + b for one scalar pair: a gain, an offset, a scale error."""
    x, y = case.ref.reshape(-1).astype(np.float64), case.cand.reshape(-1).astype(np.float64)
    if x.size < 2 or np.std(x) == 0:
        return None
    a, b = line_fit(x, y)
    if abs(a - 1) < 1e-3:
        what = f"candidate = reference {b:+.4g} everywhere (a constant offset: darker/brighter by {abs(b):.3g})"
    elif abs(b) <= 1e-3 * max(np.std(x), 1e-12):
        what = f"candidate = {a:.4g} x reference (a gain{_named_gain(a)})"
    else:
        what = f"candidate = {a:.4g} x reference {b:+.4g} (a scale and offset error)"
    return hint(case, "affine", what, (a * x + b).reshape(case.ref.shape))


def _named_gain(a: float) -> str:
    for value, name in ((1 / np.log(10), "log10 where ln belongs"), (np.log(10), "ln where log10 belongs"),
                        (2.0, "power where magnitude belongs, in log"), (0.5, "magnitude where power belongs, in log"),
                        (32768 / 32767, "32768 where 32767 belongs"), (-1.0, "a sign")):
        if abs(a - value) < 2e-3 * abs(value):
            return f": {name}?"
    return ""


def _per_group(case: Case, axis_name: str, kind: str, what: str) -> Hint | None:
    ax = case.axis(axis_name)
    if ax is None or case.ref.shape[ax] < 2 or case.ref.size // case.ref.shape[ax] < MIN_GROUP:
        return None
    a, b, pred = group_affine(case.ref, case.cand, ax)
    pred = unmove(pred, case.ref.shape, ax)
    gain_only = np.all(np.abs(b) <= 1e-3 * (np.std(case.ref) + 1e-12))
    offset_only = np.all(np.abs(a - 1) < 1e-3)
    if offset_only:
        detail = f"an offset per {what} (mean {b.mean():+.4g}, range {b.min():+.3g}..{b.max():+.3g})"
    elif gain_only:
        detail = f"a gain per {what} (range {a.min():.3g}..{a.max():.3g})"
    else:
        detail = f"a gain and an offset per {what} (gain {a.min():.3g}..{a.max():.3g}, offset {b.min():+.3g}..{b.max():+.3g})"
    return hint(case, kind, f"candidate = reference with {detail}", pred)


def channel_affine(case: Case) -> Hint | None:
    """A gain and/or offset per channel, or per position along any other axis that is neither batch nor time
    (a window's samples `W`, a head, a band): the wrong window, a per-band scale."""
    best = None
    for name in case.axes:
        if name in ("B", "T", "S", "N"):
            continue
        h = _per_group(case, name, "channel_affine", "channel" if name == "C" else f"position along {name}")
        if h is not None and (best is None or h.explained > best.explained):
            best = h
    return best


def position_affine(case: Case) -> Hint | None:
    return _per_group(case, "T", "position_affine", "frame")


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to 1.5e-7 (Abramowitz and Stegun 7.1.26): numpy has none, and a hint needs no more."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


FUNCTIONS = {
    "square": lambda x: x * x, "square root of |.|": lambda x: np.sqrt(np.abs(x)), "exp": np.exp,
    "log of |.|": lambda x: np.log(np.maximum(np.abs(x), 1e-30)), "tanh": np.tanh, "abs": np.abs,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "relu": lambda x: np.maximum(x, 0),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "gelu (exact, erf)": lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))),
    "gelu (tanh approximation)": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
}


def _linear(fx: np.ndarray, x: np.ndarray) -> bool:
    """f is affine on these values (abs of all-negative numbers, relu of all-positive ones): the affine family,
    not this one, names such a relation."""
    if np.std(x) == 0:
        return True
    return abs(float(np.corrcoef(fx.reshape(-1), x.reshape(-1))[0, 1])) > 1 - 1e-9


def elementwise(case: Case) -> Hint | None:
    """cand = a f(ref) + b for a simple elementwise f: power for magnitude, a missing or extra activation.

    Where the stage declares the input it is computed from, cand = a f(input) + b is tried too: the wrong
    activation or limiter (e.g. tanh where the reference clamps) is a function of the input, not of the
    reference's output, wherever the reference's own function saturates."""
    sources = [("the reference", case.ref.astype(np.float64))]
    if case.stage_input is not None and case.stage_input[1].size == case.ref.size:
        name, x = case.stage_input
        sources.append((f"its input {name}", x.astype(np.float64).reshape(case.ref.shape)))
    best = None
    y = case.error()[0].reshape(-1)
    ref = sources[0][1].reshape(-1)
    a0, b0 = line_fit(ref, y)
    plain = rel(case.cand, (a0 * ref + b0).reshape(case.ref.shape))  # what a global affine map leaves
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for source, x in sources:
            for name, f in FUNCTIONS.items():
                fx = f(x)
                if not np.all(np.isfinite(fx)) or np.std(fx) == 0 or _linear(fx, x):
                    continue
                a, b = line_fit(fx, y)
                scale = "" if abs(a - 1) < 1e-3 and abs(b) < 1e-6 else f" ({a:.4g} x that {b:+.3g})"
                h = hint(case, "elementwise", f"candidate = {name} of {source}{scale}", a * fx + b)
                if h is not None and h.residual >= plain:
                    continue  # no better than a gain and an offset: the affine family's relation, not this one
                if h is not None and (best is None or h.explained > best.explained):
                    best = h
    return best


def _standardise(x: np.ndarray, axes: tuple[int, ...], centred: bool) -> np.ndarray:
    mean = x.mean(axis=axes, keepdims=True) if centred else 0.0
    scale = np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + 1e-5)
    return (x - mean) / scale


def normalisation(case: Case) -> Hint | None:
    """The candidate is the stage's input normalised another way (then given the stage's per-channel affine).

    Tried: standardised or RMS-scaled (not mean-centred) over each axis set (channels, time, both). The stage
    must declare its input (`StageSpec.input`); the reference's own normalisation is named from the best fit.
    """
    if case.stage_input is None or case.axis("C") is None:
        return None
    name, x = case.stage_input
    if x.shape != case.ref.shape:
        return None
    x = x.astype(np.float64)
    axes = case.axes
    c = axes.index("C")
    spans = {" and ".join(axes[i] for i in s): s for s in _axis_sets(axes)}
    fits = {}
    for span, s in spans.items():
        for centred in (True, False):
            normed = _standardise(x, s, centred)
            _, _, pred = group_affine(normed, case.cand, c)
            _, _, pred_ref = group_affine(normed, case.ref, c)
            label = f"{'standardised' if centred else 'RMS-scaled'} over {span}"
            fits[label] = (unmove(pred, x.shape, c), unmove(pred_ref, x.shape, c))
    # a per-channel affine can absorb per-channel statistics, so several spans may fit exactly: name the most
    # restrictive one (the most axes, mean-centred first) among those within a hair of the best fit
    ref_err = {k: float(np.sum((fits[k][1] - case.ref) ** 2)) for k in fits}
    cand_share = {k: explained(case, fits[k][0]) for k in fits}
    floor = min(ref_err.values())
    ref_best = next(k for k in fits if ref_err[k] <= floor + 1e-9 * float(np.sum(case.ref.astype(np.float64) ** 2)))
    top = max(cand_share.values())
    cand_best = next(k for k in fits if cand_share[k] >= top - 1e-6)
    if cand_best == ref_best:
        return None
    return hint(case, "normalisation", f"candidate = its input {name} {cand_best} (then a per-channel affine); "
                f"the reference is {ref_best}", fits[cand_best][0])


def _axis_sets(axes: list[str]) -> list[tuple[int, ...]]:
    """Every span a normalisation may take (batch excluded), the widest first."""
    keep = [i for i, a in enumerate(axes) if a != "B"]
    return ([tuple(keep)] if len(keep) > 1 else []) + [(i,) for i in keep]
