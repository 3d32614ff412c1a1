"""torchaudio's windowed-sinc resampler (`transforms.Resample`, sinc_interp_hann), reimplemented.

For rates reduced by their gcd to o -> n, output sample j of each period reads input taps
k = -width .. width + o - 1 at time t = (k / o - j / n) x base, base = min(o, n) x rolloff (in cycles of
the lower Nyquist), width = ceil(lowpass_width x o / base): weight = sinc(pi t) x cos(pi t / (2 lowpass_width))^2
x base / o, t clamped to +-lowpass_width zero crossings. The kernel [n, 1, 2 width + o] is applied as a conv1d
of stride o over the signal zero-padded by width on the left and width + o on the right; the output keeps
ceil(n x S / o) samples. Float32 runs follow torchaudio's transform bit for bit: j / n is an integer
division in torch's default dtype (float32) before it meets the float64 tap grid, and the float64 kernel is
rounded to float32. Float64 runs (torchaudio's `dtype=torch.float64`) keep everything in float64. Equal
rates return the input itself.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from reimpl import faults
from reimpl.frontend.load import soxr_resample


@lru_cache(maxsize=8)
def sinc_kernel(orig: int, new: int, lowpass_width: int, rolloff: float, dtype: torch.dtype) -> tuple[torch.Tensor, int]:
    g = math.gcd(orig, new)
    o, n = orig // g, new // g
    base = min(o, n) * rolloff
    width = math.ceil(lowpass_width * o / base)
    taps = torch.arange(-width, width + o, dtype=torch.float64) / o
    phases = -torch.arange(n, dtype=torch.float64 if dtype == torch.float64 else torch.float32) / n
    t = ((phases[:, None] + taps[None, :]) * base).clamp(-lowpass_width, lowpass_width)
    window = torch.cos(t * math.pi / lowpass_width / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t)
    return (sinc * (window * (base / o))).to(dtype)[:, None, :], width


def sinc_resample(wav: torch.Tensor, orig: int, new: int, lowpass_width: int, rolloff: float) -> torch.Tensor:
    """[B, S] at orig -> [B, ceil(S new / orig)] at new."""
    if orig == new:
        return wav
    kernel, width = sinc_kernel(orig, new, lowpass_width, rolloff, wav.dtype)
    g = math.gcd(orig, new)
    o, n = orig // g, new // g
    b, length = wav.shape
    phases = F.conv1d(F.pad(wav, (width, width + o))[:, None, :], kernel, stride=o)  # [B, n, periods]
    return phases.transpose(1, 2).reshape(b, -1)[:, : math.ceil(n * length / o)]  # sample = period x n + j


def resample_16k(wav: torch.Tensor, sr: int, config) -> torch.Tensor:
    """infer_v2.py:352: the speaker's 16 kHz audio (a port's usual substitutes are the faults here)."""
    if faults.active("frontend.resample.poly"):
        # the port's bug: scipy's polyphase resampler (a Kaiser-window FIR)
        from scipy.signal import resample_poly

        g = math.gcd(sr, config.sr_16k)
        y = resample_poly(wav.numpy(), config.sr_16k // g, sr // g, axis=-1)
        return torch.from_numpy(np.ascontiguousarray(y)).to(wav.dtype)
    if faults.active("frontend.resample.soxr"):
        # the port's bug: the librosa/soxr resampler, as the emotion path loads
        return soxr_resample(wav[0], sr, config.sr_16k, config.soxr_quality)[None]
    return sinc_resample(wav, sr, config.sr_16k, config.resample_lowpass_width, config.resample_rolloff)
