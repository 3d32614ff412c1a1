"""BigVGAN's anti-aliased SnakeBeta: the activation runs at twice the signal rate, between a band-limited 2x
upsampler and a low-pass 2x downsampler, so the harmonics it creates above the signal's Nyquist are filtered
instead of folded back.

Facts a port must match:
- SnakeBeta(x) = x + 1 / (beta + 1e-9) * sin(alpha x)^2 per channel, with alpha = exp(stored alpha) and
  beta = exp(stored beta): the checkpoint stores both as logs (`snake_logscale: true`).
- Both resamplers use one 12-tap low-pass: a Kaiser-windowed sinc with cutoff 0.25 and half width 0.3 (in
  cycles per sample at the doubled rate), normalised to unit DC gain. The checkpoint carries it as a buffer
  (`...upsample.filter`, `...downsample.lowpass.filter`); `kaiser_sinc_lowpass` rebuilds it bit for bit.
- Upsampling: replicate-pad 5 samples each side, a grouped transposed conv with stride 2, times 2 (zero
  stuffing halves the mean), then crop 15 samples each side: exactly 2 T samples.
- Downsampling: replicate-pad 5 left and 6 right, a grouped conv with stride 2: exactly T samples.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from reimpl import faults
from reimpl.params import Params

RATIO, TAPS = 2, 12
NO_DIV_BY_ZERO = 1e-9


def kaiser_window(size: int, beta: float) -> torch.Tensor:
    """Symmetric Kaiser window I0(beta sqrt(1 - ((n - c) / c)^2)) / I0(beta), c = (size - 1) / 2, in float32.

    The square root is numpy's (correctly rounded), as torch's own kaiser_window computes it per element;
    torch.sqrt on a float32 CPU tensor is not correctly rounded on every build (one ulp off on ~20% of
    inputs here), which would move two of the twelve taps.
    """
    centre = np.float32((size - 1) / 2.0)
    ramp = (np.arange(size, dtype=np.float32) - centre) / centre
    arg = np.float32(beta) * np.sqrt(np.abs(np.float32(1) - ramp * ramp))
    return torch.i0(torch.from_numpy(arg)) / torch.i0(torch.tensor(beta, dtype=torch.float32))


def kaiser_sinc_lowpass(cutoff: float = 0.5 / RATIO, half_width: float = 0.6 / RATIO, size: int = TAPS
                        ) -> torch.Tensor:
    """The anti-aliasing low-pass [1, 1, size], unit DC gain.

    Kaiser's design rule: the attenuation A that a transition band of 4 x half_width allows with half the
    taps, and the window's beta from A. An even size samples the sinc between the taps (t = k + 1/2).
    """
    half = size // 2
    attenuation = 2.285 * (half - 1) * math.pi * (4 * half_width) + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    t = torch.arange(-half, half) + 0.5 if size % 2 == 0 else (torch.arange(size) - half).to(torch.float32)
    taps = 2 * cutoff * kaiser_window(size, beta) * torch.sinc(2 * cutoff * t)
    return (taps / taps.sum()).view(1, 1, size)


def _lowpass(p: Params, name: str, like: torch.Tensor) -> torch.Tensor:
    """The checkpoint's filter buffer (upstream loads its buffers from the checkpoint), else ours."""
    f = p.get(name)
    return (kaiser_sinc_lowpass() if f is None else f).to(like.dtype)


def upsample_2x(filt: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    pad = TAPS // RATIO - 1
    crop_left = pad * RATIO + (TAPS - RATIO) // 2
    crop_right = pad * RATIO + (TAPS - RATIO + 1) // 2
    channels = x.shape[1]
    y = RATIO * F.conv_transpose1d(F.pad(x, (pad, pad), mode="replicate"), filt.expand(channels, -1, -1),
                                   stride=RATIO, groups=channels)
    return y[..., crop_left: y.shape[-1] - crop_right]


def downsample_2x(filt: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    channels = x.shape[1]
    x = F.pad(x, (TAPS // 2 - 1, TAPS // 2), mode="replicate")
    return F.conv1d(x, filt.expand(channels, -1, -1), stride=RATIO, groups=channels)


def snake_beta(p: Params, prefix: str, x: torch.Tensor) -> torch.Tensor:
    log_alpha = p[prefix + ".alpha"][None, :, None]
    log_beta = p[prefix + ".beta"][None, :, None]
    if faults.active("vocoder.activations.snake_alpha_beta_swapped"):
        log_alpha, log_beta = log_beta, log_alpha  # the port's bug: frequency and magnitude exchanged
    if faults.active("vocoder.activations.snake_no_exp"):
        alpha, beta = log_alpha, log_beta  # the port's bug: the logs used as the parameters
    else:
        alpha, beta = torch.exp(log_alpha), torch.exp(log_beta)
    return x + (1.0 / (beta + NO_DIV_BY_ZERO)) * torch.pow(torch.sin(x * alpha), 2)


def anti_aliased_snake(p: Params, prefix: str, x: torch.Tensor, tap, at: str | None) -> torch.Tensor:
    """`prefix` names the activation's parameters (`...activations.0`); `at` its stages (None: not recorded)."""
    x = upsample_2x(_lowpass(p, prefix + ".upsample.filter", x), x)
    if at is not None:
        x = tap(at + "/up", x)
    x = snake_beta(p, prefix + ".act", x)
    if at is not None:
        x = tap(at + "/snake", x)
    x = downsample_2x(_lowpass(p, prefix + ".downsample.lowpass.filter", x), x)
    return tap(at + "/down", x) if at is not None else x
