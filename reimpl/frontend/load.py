"""Loading as upstream loads: what `librosa.load(path, sr=...)` and infer_v2's 15 s cut leave of a recording.

The inputs part hands the decoded file ([channels, samples] at its own rate). `librosa.load` then averages
the channels and, when the file's rate is not the one asked for, resamples with libsoxr at 'soxr_hq',
fixing the length to ceil(n x new / old) (zero-padded or cut). libsoxr is not reimplemented, on purpose:
its HQ resampler is a multi-stage FFT polyphase design whose exact output only libsoxr reproduces, so a
port that must match upstream links libsoxr too. It is called directly (the `soxr` package, the library
librosa calls), never through librosa. For a 22050 Hz recording (the fixture) the speaker path never
reaches it; the emotion path's 16 kHz load always does.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def to_mono(recording: torch.Tensor) -> torch.Tensor:
    """[C, S] -> [S]: the channels' mean, summed in channel order as numpy's mean over the first axis."""
    total = recording[0]
    for channel in recording[1:]:
        total = total + channel
    return total / recording.shape[0] if recording.shape[0] > 1 else total


def soxr_resample(samples: torch.Tensor, orig_sr: int, new_sr: int, quality: str) -> torch.Tensor:
    """libsoxr on a 1-D signal, then cut or zero-padded to ceil(len x new / orig), in the input's dtype."""
    import soxr

    if orig_sr == new_sr:
        return samples
    x = samples.numpy()
    out = soxr.resample(x, orig_sr, new_sr, quality=quality)
    n = int(math.ceil(x.shape[-1] * float(new_sr) / orig_sr))
    out = out[:n] if out.shape[-1] >= n else np.pad(out, (0, n - out.shape[-1]))
    return torch.from_numpy(np.asarray(out, dtype=x.dtype))


def load_and_cut(recording: torch.Tensor, native_sr: int, sr: int, max_seconds: float, quality: str) -> torch.Tensor:
    """[C, S] at native_sr -> [1, S'] at sr, at most int(max_seconds x sr) samples."""
    mono = soxr_resample(to_mono(recording), native_sr, sr, quality)
    return mono[None, : int(max_seconds * sr)]
