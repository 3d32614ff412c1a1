"""The speaker mel: s2mel/modules/audio.py's `mel_spectrogram` as infer_v2.py:242-252 and :360 call it.

Reflect pad of (n_fft - hop) / 2 samples each side, STFT with a periodic Hann window and center=False,
magnitude sqrt(re^2 + im^2 + 1e-9), librosa's default mel basis (Slaney scale and area norm) applied by a
matmul, natural log of clamp(x, 1e-5); frames = len // hop. Every constant is computed here.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from reimpl import faults

MEL = "frontend/mel"
_F_SP = 200.0 / 3  # Slaney mel: linear below 1 kHz, 3 mels per 200 Hz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0  # log region: 27 mels per factor 6.4


def _hz_to_slaney(hz) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    high = hz >= _MIN_LOG_HZ
    return np.where(high, _MIN_LOG_MEL + np.log(np.where(high, hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP, hz / _F_SP)


def _slaney_to_hz(mel) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL)), _F_SP * mel)


def _htk_to_hz(mel) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def _hz_to_htk(hz) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _triangles(edges_hz: np.ndarray, bins_hz: np.ndarray) -> np.ndarray:
    """Band i rises from edge i to edge i + 1 and falls to edge i + 2 (in Hz)."""
    width = np.diff(edges_hz)
    dist = edges_hz[:, None] - bins_hz[None, :]
    return np.maximum(0.0, np.minimum(-dist[:-2] / width[:-1, None], dist[2:] / width[1:, None]))


@lru_cache(maxsize=16)
def filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None, dtype: torch.dtype,
               kind: str = "slaney") -> torch.Tensor:
    """[n_mels, n_fft / 2 + 1]: n_mels + 2 edges equally spaced in Slaney mel from fmin to fmax (sr / 2 when
    None), triangles at each FFT bin's frequency k x (1 / (n_fft x (1 / sr))), each scaled by
    2 / (f[i + 2] - f[i]) to equal area. In float32 the triangles are rounded to float32 first and the norm
    is applied in float64 and rounded again: what librosa's float32 basis holds (a float32 array filled,
    then scaled in place)."""
    top = sr / 2 if fmax is None else fmax
    bins = np.arange(n_fft // 2 + 1) * (1.0 / (n_fft * (1.0 / sr)))
    if kind == "htk_no_norm":  # a port's bug: torchaudio melscale_fbanks' defaults
        edges = _htk_to_hz(np.linspace(_hz_to_htk(fmin), _hz_to_htk(top), n_mels + 2))
        return torch.from_numpy(_triangles(edges, bins)).to(dtype)
    edges = _slaney_to_hz(np.linspace(_hz_to_slaney(fmin), _hz_to_slaney(top), n_mels + 2))
    tri = _triangles(edges, bins)
    norm = np.ones(n_mels) if kind == "slaney_no_norm" else 2.0 / (edges[2:] - edges[:-2])
    if dtype == torch.float32:
        return torch.from_numpy((tri.astype(np.float32).astype(np.float64) * norm[:, None]).astype(np.float32))
    return torch.from_numpy(tri * norm[:, None])


def mel_basis(config, dtype: torch.dtype) -> torch.Tensor:
    fmax = None if config.fmax is None else 8000  # infer_v2.py:249
    kind = "slaney"
    if faults.active("frontend.mel.htk_no_norm"):
        kind = "htk_no_norm"
    elif faults.active("frontend.mel.no_slaney_norm"):
        kind = "slaney_no_norm"
    return filterbank(config.sr, config.n_fft, config.n_mels, float(config.fmin), fmax, dtype, kind)


def periodic_hann(n: int, dtype: torch.dtype) -> torch.Tensor:
    """0.5 - 0.5 cos(2 pi k / n), k < n (torch.hann_window's default, periodic)."""
    k = torch.arange(n + 1, dtype=dtype)
    return (torch.cos(k * (2 * math.pi / n)) * -0.5 + 0.5)[:n]


def _reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Mirror `pad` samples at each end without repeating the edge sample."""
    return torch.cat([x[..., 1 : pad + 1].flip(-1), x, x[..., -pad - 1 : -1].flip(-1)], dim=-1)


def log_mel(config, wav: torch.Tensor, tap) -> torch.Tensor:
    """[B, S] at config.sr -> the log mel [B, n_mels, S // hop]."""
    pad = (config.n_fft - config.hop_length) // 2
    padded = tap(MEL + "/padded", _reflect_pad(wav, pad))
    window = periodic_hann(config.win_length, wav.dtype)
    if config.win_length < config.n_fft:  # centred in the FFT frame, as torch.stft does
        left = (config.n_fft - config.win_length) // 2
        window = F.pad(window, (left, config.n_fft - config.win_length - left))
    spec = torch.fft.rfft(padded.unfold(-1, config.n_fft, config.hop_length) * window).transpose(1, 2)  # [B, F, T]
    # contiguous [B, F, T] as upstream's is: BLAS picks its kernel by memory layout, and a transposed view
    # gives last-bit differences in the matmul below for short inputs
    power = (spec.real.square() + spec.imag.square() + config.magnitude_eps).contiguous()
    magnitude = power if faults.active("frontend.mel.power") else torch.sqrt(power)  # the bug: no square root
    magnitude = tap(MEL + "/magnitude", magnitude)
    filtered = tap(MEL + "/filtered", torch.matmul(mel_basis(config, wav.dtype), magnitude))
    clipped = torch.clamp(filtered, min=config.clip)
    out = torch.log10(clipped) if faults.active("frontend.mel.log10") else torch.log(clipped)  # the bug: log10
    return tap(MEL + "/out", out)
