"""Audio measures of a candidate waveform against the reference: what a listener would notice.

Beside the float metrics of every stage, an audio stage (`kind = audio`) gets: the delay (the lag that
maximises the cross-correlation; positive = the candidate is late), the gain (least-squares a in
candidate ~ a x reference) and the SNR (reference energy over difference energy, dB), each both as the
samples stand and after moving the candidate back by the delay, and a log-mel distance (mean |ln mel
difference| in nepers over the aligned frames; insensitive to phase, sensitive to level and spectral
shape). Where the lengths differ, the sample-wise measures use the common part: the delay is the one to
read first then. Pure numpy in float64, on the first row of a [B, S] or [C, S] stage.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from harness.metrics import json_number

N_FFT, HOP, N_MELS, MEL_FLOOR = 1024, 256, 80, 1e-5


@dataclass(frozen=True)
class AudioMetrics:
    sample_rate: int  # 0 where the trace does not say: no log-mel distance then
    ref_samples: int
    cand_samples: int
    delay: int
    snr_db: float
    gain: float
    snr_aligned_db: float
    gain_aligned: float
    log_mel_distance: float | None

    def summary(self) -> str:
        """One line for the console and the report."""
        shift = f"delay {self.delay:+d} samples" + (
            f" (aligned: SNR {_db(self.snr_aligned_db)}, gain {self.gain_aligned:.4g})" if self.delay else "")
        lengths = f", {self.cand_samples} samples vs {self.ref_samples}" if self.cand_samples != self.ref_samples else ""
        mel = "" if self.log_mel_distance is None else f", log-mel distance {self.log_mel_distance:.3g} Np"
        return f"audio: SNR {_db(self.snr_db)}, gain {self.gain:.4g}, {shift}{mel}{lengths}"

    def to_json(self) -> dict:
        return {k: json_number(v) if isinstance(v, float) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> AudioMetrics:
        return cls(**{k: float(v) if isinstance(v, str) else v for k, v in data.items()})


def _db(x: float) -> str:
    return f"{x:.1f} dB" if math.isfinite(x) else ("inf dB (identical)" if x > 0 else f"{x} dB")


def _row(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(-1) if x.ndim < 2 else x.reshape(-1, x.shape[-1])[0]


def snr_db(ref: np.ndarray, cand: np.ndarray) -> float:
    n = min(ref.size, cand.size)
    noise, signal = float(np.sum((cand[:n] - ref[:n]) ** 2)), float(np.sum(ref[:n] ** 2))
    if noise == 0.0:
        return math.inf
    return -math.inf if signal == 0.0 else 10.0 * math.log10(signal / noise)


def gain(ref: np.ndarray, cand: np.ndarray) -> float:
    """argmin_a |cand - a ref|^2 over the common part (nan for a silent reference)."""
    n = min(ref.size, cand.size)
    energy = float(ref[:n] @ ref[:n])
    return float(cand[:n] @ ref[:n]) / energy if energy > 0 else math.nan


def delay(ref: np.ndarray, cand: np.ndarray, max_lag: int | None = None) -> int:
    """The lag L maximising sum_n cand[n] ref[n - L] (FFT cross-correlation), |L| <= max_lag (default a
    quarter of the shorter signal); among equal maxima the smallest |L|. 0 when either side is silent."""
    if not ref.any() or not cand.any():
        return 0
    max_lag = max(1, min(ref.size, cand.size) // 4) if max_lag is None else max_lag
    size = 1 << int(math.ceil(math.log2(ref.size + cand.size)))
    xcorr = np.fft.irfft(np.fft.rfft(cand, size) * np.conj(np.fft.rfft(ref, size)), size)
    k = np.arange(1, max_lag + 1)
    lags = np.concatenate([[0], np.stack([k, -k], axis=1).reshape(-1)])
    return int(lags[int(np.argmax(xcorr[lags % size]))])


def aligned(ref: np.ndarray, cand: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """The overlapping parts once the candidate is moved back by `lag`."""
    cand, ref = (cand[lag:], ref) if lag >= 0 else (cand, ref[-lag:])
    n = min(ref.size, cand.size)
    return ref[:n], cand[:n]


def _slaney_hz(mel: np.ndarray) -> np.ndarray:
    return np.where(mel < 15.0, mel * 200.0 / 3.0, 1000.0 * np.exp((mel - 15.0) * np.log(6.4) / 27.0))


def _slaney_mel(hz: float) -> float:
    return hz * 3.0 / 200.0 if hz < 1000.0 else 15.0 + math.log(hz / 1000.0) * 27.0 / math.log(6.4)


def log_mel(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """ln(max(mel magnitude, 1e-5)) [frames, 80]: Hann STFT (1024 / 256, frames from 0), triangles evenly
    spaced in Slaney mel up to Nyquist, each of unit area (a measuring stick, not upstream's mel)."""
    x = np.pad(x, (0, max(0, N_FFT - x.size)))
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)
    magnitude = np.abs(np.fft.rfft(frames * window, axis=1))
    edges = _slaney_hz(np.linspace(0.0, _slaney_mel(sample_rate / 2.0), N_MELS + 2))
    freqs = np.linspace(0.0, sample_rate / 2.0, N_FFT // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bank = np.maximum(0.0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid))) * 2.0 / (hi - lo)
    return np.log(np.maximum(magnitude @ bank.T, MEL_FLOOR))


def compute(ref: np.ndarray, cand: np.ndarray, sample_rate: int = 0) -> AudioMetrics | None:
    """Every measure of the first row of `cand` against that of `ref`; None when either is not finite."""
    r, c = _row(ref), _row(cand)
    if not (np.isfinite(r).all() and np.isfinite(c).all()) or not r.size or not c.size:
        return None
    lag = delay(r, c)
    ra, ca = aligned(r, c, lag)
    distance = None
    if sample_rate > 0 and ra.size:
        distance = float(np.mean(np.abs(log_mel(ca, sample_rate) - log_mel(ra, sample_rate))))
    return AudioMetrics(sample_rate=int(sample_rate), ref_samples=int(r.size), cand_samples=int(c.size), delay=lag,
                        snr_db=snr_db(r, c), gain=gain(r, c), snr_aligned_db=snr_db(ra, ca), gain_aligned=gain(ra, ca),
                        log_mel_distance=distance)
