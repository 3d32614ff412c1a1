"""Hint families of audio stages: a delay or a gain, and an error confined to a frequency band."""
from __future__ import annotations

import numpy as np

from harness.hints.base import Case, Hint, hint

MAX_LAG = 2048  # samples a delay is searched over
BANDS = 8  # equal-width frequency bands the error is split into


def _signals(case: Case) -> tuple[np.ndarray, np.ndarray] | None:
    ax = case.axis("S")
    if ax is None:
        return None
    ref = np.moveaxis(case.ref.astype(np.float64), ax, -1).reshape(-1, case.ref.shape[ax])
    cand = np.moveaxis(case.cand.astype(np.float64), ax, -1).reshape(-1, case.cand.shape[ax])
    return ref, cand


def lag(ref: np.ndarray, cand: np.ndarray, max_lag: int = MAX_LAG) -> int:
    """The delay (samples) of cand against ref that maximises their cross-correlation (FFT, both rows summed)."""
    n = ref.shape[-1] + cand.shape[-1]
    size = 1 << (n - 1).bit_length()
    spec = np.fft.rfft(cand, size) * np.conj(np.fft.rfft(ref, size))
    xc = np.fft.irfft(spec.sum(axis=0), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = np.concatenate([xc[: max_lag + 1], xc[-max_lag:]])
    return int(lags[int(np.argmax(values))])


def delay_gain(case: Case) -> Hint | None:
    sig = _signals(case)
    if sig is None:
        return None
    ref, cand = sig
    k = lag(ref, cand)
    moved = np.roll(ref, k, axis=-1)
    g = float((moved * cand).sum() / max((moved * moved).sum(), 1e-30))
    if k == 0 and abs(g - 1) < 1e-3:
        return None
    parts = ([f"delayed by {k:+d} samples"] if k else []) + ([f"a gain of {g:.4g}"] if abs(g - 1) >= 1e-3 else [])
    pred = np.moveaxis((g * moved).reshape(np.moveaxis(case.ref, case.axis("S"), -1).shape), -1, case.axis("S"))
    rate = f" ({1000 * k / case.sample_rate:.2f} ms)" if case.sample_rate and k else ""
    return hint(case, "delay_gain", f"candidate = the reference {' with '.join(parts)}{rate}", pred)


def band(case: Case) -> Hint | None:
    """Most of the error's energy sits in one part of the spectrum (a missing anti-alias filter, a low-pass)."""
    sig = _signals(case)
    if sig is None or sig[0].shape[-1] < 64:
        return None
    ref, cand = sig
    spec = np.abs(np.fft.rfft(cand - ref, axis=-1)) ** 2
    energy = spec.sum(axis=0)
    edges = np.linspace(0, energy.size, BANDS + 1).astype(int)
    per_band = np.array([energy[a:b].sum() for a, b in zip(edges[:-1], edges[1:])])
    total = per_band.sum()
    if total == 0:
        return None
    order = np.argsort(per_band)[::-1]
    k = int(np.searchsorted(np.cumsum(per_band[order]) / total, 0.8)) + 1
    if k > BANDS // 4:
        return None
    chosen = sorted(order[:k])
    nyquist = case.sample_rate / 2 if case.sample_rate else None
    lo, hi = edges[chosen[0]] / energy.size, edges[chosen[-1] + 1] / energy.size
    where = f"{lo * nyquist / 1000:.1f}-{hi * nyquist / 1000:.1f} kHz" if nyquist else f"{lo:.2f}-{hi:.2f} of Nyquist"
    share = float(per_band[chosen].sum() / total)
    return Hint("band", f"{100 * share:.0f}% of the error's energy is in {where} (a filter, an anti-alias or a "
                "resampler difference?)", float(np.sqrt(1 - share)), share)
