"""Audio measures on signals whose answer is known by construction (harness/audio_metrics.py)."""
from __future__ import annotations

import math

import numpy as np

from harness import audio_metrics as A

RATE = 16000


def _speechlike(n: int = 16000, seed: int = 0) -> np.ndarray:
    """Band-limited noise with a slow envelope: a broad spectrum, no periodicity a lag could alias onto."""
    g = np.random.default_rng(seed)
    x = np.convolve(g.standard_normal(n + 64), np.hanning(16), mode="same")[:n]
    return x * (1.2 + np.sin(np.arange(n) * 2 * np.pi * 3 / n))


def test_identical_signals():
    x = _speechlike()
    m = A.compute(x[None], x[None], RATE)
    assert m.delay == 0 and m.snr_db == math.inf and m.gain == 1.0 and m.log_mel_distance == 0.0


def test_a_delay_is_measured_and_aligned_away():
    x = _speechlike()
    late = np.concatenate([np.zeros(37), x[:-37]])  # the candidate is 37 samples late
    m = A.compute(x, late, RATE)
    assert m.delay == 37
    assert m.snr_db < 10 and m.snr_aligned_db == math.inf and m.gain_aligned == 1.0
    early = x[11:]
    assert A.compute(x, early, RATE).delay == -11


def test_a_gain_is_measured_and_is_a_level_change_in_the_log_mel():
    x = _speechlike()
    m = A.compute(x, 0.5 * x, RATE)
    assert m.delay == 0 and abs(m.gain - 0.5) < 1e-12
    assert abs(m.snr_db - 20 * math.log10(1 / 0.5)) < 1e-9  # the difference is half the signal: 6.02 dB
    # a gain a shifts every unclamped log-mel bin by ln a
    assert abs(m.log_mel_distance - math.log(2)) < 1e-3


def test_snr_of_added_noise():
    x = _speechlike()
    noise = np.random.default_rng(1).standard_normal(x.size)
    noise *= np.sqrt(np.sum(x**2) / np.sum(noise**2)) / 100  # 40 dB below the signal exactly
    m = A.compute(x, x + noise, RATE)
    assert abs(m.snr_db - 40.0) < 1e-9 and m.delay == 0


def test_lengths_that_differ_and_silence():
    x = _speechlike()
    m = A.compute(x, np.concatenate([x, np.zeros(100)]), RATE)
    assert (m.ref_samples, m.cand_samples, m.delay, m.snr_db) == (x.size, x.size + 100, 0, math.inf)
    quiet = A.compute(np.zeros(4000), np.zeros(4000), RATE)
    assert quiet.delay == 0 and quiet.snr_db == math.inf and math.isnan(quiet.gain)
    assert A.compute(x, np.full(x.size, np.nan), RATE) is None
    assert A.compute(x, x, 0).log_mel_distance is None  # no sample rate, no mel


def test_json_roundtrip():
    m = A.compute(_speechlike(), 0.9 * _speechlike(), RATE)
    assert A.AudioMetrics.from_json(m.to_json()) == m
    assert "gain 0.9" in m.summary() and "log-mel distance" in m.summary()
