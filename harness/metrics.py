"""Error metrics of a candidate tensor against a reference tensor.

All arithmetic is float64 on bounded chunks: a stage of a real-size run can hold millions of values,
and a float64 copy of both sides at once would double the memory a comparison needs. Relative figures
define their value when the reference is all zeros, instead of dividing by it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

CHUNK = 1 << 20  # values per float64 chunk


@dataclass(frozen=True)
class Metrics:
    n: int
    ref_mean: float
    ref_std: float
    cand_mean: float
    cand_std: float
    max_abs: float
    max_abs_index: tuple[int, ...]
    mean_abs: float
    rmse: float
    rel_l2: float
    cosine: float
    snr_db: float
    ref_nonfinite: int
    cand_nonfinite: int

    def to_json(self) -> dict:
        data = asdict(self)
        data["max_abs_index"] = list(self.max_abs_index)
        return {k: json_number(v) if isinstance(v, float) else v for k, v in data.items()}

    @classmethod
    def from_json(cls, data: dict) -> Metrics:
        values = {k: (float(v) if isinstance(v, str) else v) for k, v in data.items()}
        values["max_abs_index"] = tuple(data["max_abs_index"])
        return cls(**values)


def json_number(x: float) -> float | str:
    """JSON has no inf or nan; write them as strings that `float()` reads back."""
    return x if math.isfinite(x) else str(x)


def compute(ref: np.ndarray, cand: np.ndarray) -> Metrics:
    """Metrics of `cand` against `ref`; both must have the same shape."""
    if ref.shape != cand.shape:
        raise ValueError(f"shape {cand.shape} vs {ref.shape}")
    r_flat, c_flat = ref.reshape(-1), cand.reshape(-1)
    # complex stages are compared as complex numbers (|difference|, conjugate products), never cast to real
    wide = np.complex128 if np.iscomplexobj(ref) or np.iscomplexobj(cand) else np.float64
    n = r_flat.size
    s_r = s_rr = s_c = s_cc = s_rc = s_d2 = s_ad = 0.0
    max_abs, max_at = -1.0, 0
    bad_r = bad_c = 0
    for start in range(0, n, CHUNK):
        r = r_flat[start : start + CHUNK].astype(wide)
        c = c_flat[start : start + CHUNK].astype(wide)
        fin_r, fin_c = np.isfinite(r), np.isfinite(c)
        bad_r += int(r.size - fin_r.sum())
        bad_c += int(c.size - fin_c.sum())
        both = fin_r & fin_c
        if not both.all():
            r, c = np.where(both, r, 0.0), np.where(both, c, 0.0)
        d = c - r
        ad = np.abs(d)
        if wide is np.complex128:  # means and spreads of the magnitudes; their RMS is the complex RMS
            s_rc += float((np.conj(r) * c).real.sum())
            r, c, d = np.abs(r), np.abs(c), ad
        else:
            s_rc += float((r * c).sum())
        s_r += float(r.sum())
        s_rr += float((r * r).sum())
        s_c += float(c.sum())
        s_cc += float((c * c).sum())
        s_d2 += float((d * d).sum())
        s_ad += float(ad.sum())
        if ad.size:
            i = int(ad.argmax())
            if ad[i] > max_abs:
                max_abs, max_at = float(ad[i]), start + i
    n_f = max(n, 1)
    ref_mean, cand_mean = s_r / n_f, s_c / n_f
    norm_r, norm_c, norm_d = math.sqrt(s_rr), math.sqrt(s_cc), math.sqrt(s_d2)
    nonfinite = bad_r + bad_c > 0
    return Metrics(
        n=n,
        ref_mean=ref_mean,
        ref_std=math.sqrt(max(s_rr / n_f - ref_mean**2, 0.0)),
        cand_mean=cand_mean,
        cand_std=math.sqrt(max(s_cc / n_f - cand_mean**2, 0.0)),
        max_abs=math.nan if nonfinite else max(max_abs, 0.0),
        max_abs_index=tuple(int(i) for i in np.unravel_index(max_at, ref.shape)) if n else (),
        mean_abs=math.nan if nonfinite else s_ad / n_f,
        rmse=math.nan if nonfinite else math.sqrt(s_d2 / n_f),
        rel_l2=math.nan if nonfinite else _ratio(norm_d, norm_r),
        cosine=math.nan if nonfinite else _cosine(s_rc, norm_r, norm_c),
        snr_db=math.nan if nonfinite else _snr_db(s_rr, s_d2),
        ref_nonfinite=bad_r,
        cand_nonfinite=bad_c,
    )


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return 0.0 if num == 0 else math.inf


def _cosine(dot: float, norm_r: float, norm_c: float) -> float:
    if norm_r > 0 and norm_c > 0:
        return dot / (norm_r * norm_c)
    return 1.0 if norm_r == norm_c else 0.0


def _snr_db(signal: float, noise: float) -> float:
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)
