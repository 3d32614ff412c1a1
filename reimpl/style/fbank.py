"""Kaldi filterbank features as torchaudio.compliance.kaldi.fbank computes them with the arguments infer_v2
passes (num_mel_bins=80, dither=0, sample_frequency=16000) and its defaults otherwise.

Channel 0 of the [1, S] audio; frames of 400 samples (25 ms) every 160 (10 ms), only frames that fit
(snip_edges: 1 + (S - 400) // 160); per frame: subtract its mean (DC), pre-emphasis x[i] - 0.97 x[i - 1]
with x[-1] = x[0], povey window = symmetric Hann(400) ** 0.85 in the audio's dtype, zero pad to 512,
|rfft|^2 (257 bins); 80 triangles equally spaced in Kaldi mel (1127 ln(1 + f / 700)) from 20 Hz to Nyquist,
computed in float32 whatever the audio's dtype (torchaudio builds them with torch's default dtype), plus a
zero column for the Nyquist bin; ln(max(x, float32 eps)). infer_v2.py:365 then subtracts the mean over time.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from reimpl import faults

FLOAT32_EPS = float(torch.finfo(torch.float32).eps)


def _kaldi_mel(hz):
    return 1127.0 * (1.0 + hz / 700.0).log() if isinstance(hz, torch.Tensor) else 1127.0 * math.log(1.0 + hz / 700.0)


@lru_cache(maxsize=4)
def mel_banks(n_bins: int, fft_size: int, sample_rate: float, low_hz: float, high_hz: float) -> torch.Tensor:
    """[n_bins, fft_size / 2 + 1] triangular weights on the power spectrum, in float32."""
    nyquist = 0.5 * sample_rate
    if high_hz <= 0.0:
        high_hz += nyquist
    mel_low, mel_high = _kaldi_mel(low_hz), _kaldi_mel(high_hz)
    step = (mel_high - mel_low) / (n_bins + 1)
    band = torch.arange(n_bins, dtype=torch.float32)[:, None]
    left, centre, right = band * step + mel_low, (band + 1.0) * step + mel_low, (band + 2.0) * step + mel_low
    bin_mel = _kaldi_mel(torch.arange(fft_size // 2, dtype=torch.float32) * (sample_rate / fft_size))[None, :]
    weights = torch.clamp(torch.minimum((bin_mel - left) / (centre - left), (right - bin_mel) / (right - centre)), min=0.0)
    return F.pad(weights, (0, 1))


def povey_window(n: int, power: float, dtype: torch.dtype) -> torch.Tensor:
    """Symmetric Hann (0.5 - 0.5 cos(2 pi k / (n - 1))) to the power 0.85."""
    hann = torch.cos(torch.arange(n, dtype=dtype) * (2 * math.pi / (n - 1))) * -0.5 + 0.5
    return hann if faults.active("style.fbank.hann_window") else hann.pow(power)  # the bug: plain Hann


def fbank(config, wav_16k: torch.Tensor, tap) -> torch.Tensor:
    """[1, S] at 16 kHz -> log mel energies [1, T, 80]."""
    x = wav_16k[0]
    frame, shift = config.frame, config.shift
    fft_size = 1 << (frame - 1).bit_length() if config.round_to_power_of_two else frame
    if not 2 <= frame <= x.shape[-1]:
        raise ValueError(f"the Kaldi fbank needs at least {frame} samples (one 25 ms frame), got {x.shape[-1]}")
    frames = tap("style/fbank/strided", x.unfold(0, frame, shift)[None])[0]  # [T, 400]
    if config.remove_dc_offset and not faults.active("style.fbank.no_dc_removal"):
        frames = frames - frames.mean(dim=1, keepdim=True)
    if config.preemphasis != 0.0 and not faults.active("style.fbank.no_preemphasis"):
        frames = frames - config.preemphasis * torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = F.pad(frames * povey_window(frame, config.povey_power, frames.dtype)[None, :], (0, fft_size - frame))
    frames = tap("style/fbank/windowed", frames[None])[0]
    power = tap("style/fbank/power", torch.fft.rfft(frames).abs().pow(2.0)[None])[0]
    banks = mel_banks(config.num_mel_bins, fft_size, float(config.sample_frequency), config.low_freq, config.high_freq)
    mel = tap("style/fbank/mel", torch.mm(power, banks.to(power.dtype).T)[None])[0]
    return tap("style/fbank/log", torch.maximum(mel, torch.tensor(FLOAT32_EPS, dtype=mel.dtype)).log()[None])


def centred(config, wav_16k: torch.Tensor, tap) -> torch.Tensor:
    """infer_v2.py:365: the fbank minus its mean over time (a port's bug: leaving it out)."""
    feat = fbank(config, wav_16k, tap)
    if not faults.active("style.fbank.no_mean_removal"):
        feat = feat - feat.mean(dim=1, keepdim=True)
    return tap("style/fbank/centered", feat)
