"""Our SeamlessM4T features (the hub settings of facebook/w2v-bert-2.0), in numpy as upstream computes them.

Facts a port must match (transformers 5.17.0 `SeamlessM4TFeatureExtractor`, as infer_v2.py:354-356 calls it):
- the audio as float32, x 32768; 25 ms frames (400 samples) every 10 ms (160), no centring:
  T = 1 + (S - 400) // 160.
- per frame, in float64: minus the frame's mean, pre-emphasis 0.97 (the first sample x (1 - 0.97)), the
  povey window (symmetric Hann ** 0.85), a 512-point real FFT whose spectrum is stored as complex64 before
  |.|^2 is taken in float64 (that rounding is part of upstream's result).
- 80 Kaldi mel triangles (in mel space, mel = 1127 ln(1 + f / 700)) from 20 Hz to 8 kHz, unnormalised,
  floored at float32's epsilon, natural log, cast to float32.
- per mel bin over time, in float32: (x - mean) / sqrt(var(ddof=1) + 1e-7), each bin summed along its own
  contiguous axis (upstream's [T, 80] array is a transposed [80, T]: numpy's pairwise sums run per bin).
- the frame count padded to a multiple of the stride (2) with padding_value 1.0 (the class default is 0.0),
  the mask 1 for real frames and 0 for padding; pairs of frames stacked into 160-wide frames, each keeping
  the mask of its second frame: an odd count ends in a stacked frame [real, padding] that is masked.
"""
from __future__ import annotations

import numpy as np
import torch

from harness.stages.semantic import SemanticConfig
from reimpl.faults import active

FRAME = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
N_FFT = 512
PREEMPHASIS = 0.97
MEL_FLOOR = 1.192092955078125e-07  # float32's epsilon
LOW_HZ = 20.0


def povey_window(length: int = FRAME) -> np.ndarray:
    """Kaldi's default window: a symmetric Hann window raised to 0.85."""
    return np.hanning(length) ** 0.85


def kaldi_mel(hz):
    return 1127.0 * np.log(1.0 + hz / 700.0)


def kaldi_mel_filters(n_mels: int, sampling_rate: int) -> np.ndarray:
    """[N_FFT/2 + 1, n_mels]: triangles with corners equally spaced in Kaldi mel, evaluated at each FFT bin's
    mel value (triangular in mel space, not in Hz), unnormalised."""
    corners = np.linspace(kaldi_mel(LOW_HZ), kaldi_mel(sampling_rate // 2), n_mels + 2)
    bin_mel = kaldi_mel(sampling_rate / N_FFT * np.arange(N_FFT // 2 + 1))[:, None]
    left, centre, right = corners[:-2], corners[1:-1], corners[2:]
    rising = (bin_mel - left) / (centre - left)
    falling = (right - bin_mel) / (right - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def frame_count(samples: int) -> int:
    return 1 + (samples - FRAME) // HOP if samples >= FRAME else 0


def log_mel_fbank(wave: np.ndarray, n_mels: int, sampling_rate: int) -> np.ndarray:
    """One mono recording [S] in [-1, 1] -> log-mel frames [T, n_mels] float32."""
    count = frame_count(wave.shape[0])
    if count < 2:
        # upstream: under 240 samples numpy fails, 240-399 give 0 frames (the model then fails), 400-559 one
        # frame whose unbiased variance is NaN (upstream runs on, every frame masked: silent garbage)
        raise ValueError(f"audio of {wave.shape[0]} samples at {sampling_rate} Hz is too short for the w2v-bert "
                         f"features: at least {FRAME + HOP} samples (two 25 ms frames) are needed")
    scaled = (wave.astype(np.float32) * np.float32(2**15)).astype(np.float64)
    starts = np.arange(count) * HOP
    frames = scaled[starts[:, None] + np.arange(FRAME)[None, :]]  # [T, 400], a copy
    frames = frames - frames.mean(axis=1, keepdims=True)
    emphasised = np.empty_like(frames)
    emphasised[:, 1:] = frames[:, 1:] - PREEMPHASIS * frames[:, :-1]
    emphasised[:, 0] = frames[:, 0] * (1 - PREEMPHASIS)
    spectrum = np.fft.rfft(emphasised * povey_window(), n=N_FFT, axis=1).astype(np.complex64)
    power = np.abs(spectrum, dtype=np.float64) ** 2.0  # [T, 257]
    mel = np.maximum(MEL_FLOOR, np.dot(kaldi_mel_filters(n_mels, sampling_rate).T, power.T))  # [n_mels, T]
    return np.log(mel).T.astype(np.float32)


def normalise_per_bin(fbank: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per mel bin over time, in float32, with the unbiased variance.

    The float32 sums depend on memory layout: summed along each bin's contiguous axis (Fortran order, as
    upstream's array is) they are upstream's; a C-ordered copy lands 4.5e-7 RMSE away."""
    fbank = np.asfortranarray(fbank)
    ddof = 0 if active("semantic.features.ddof0") else 1
    mean = fbank.mean(axis=0)[None]
    var = fbank.var(axis=0, ddof=ddof)[None]
    return (fbank - mean) / np.sqrt(var + 1e-7)


def stack_frames(frames: np.ndarray, stride: int, padding_value: float) -> tuple[np.ndarray, np.ndarray]:
    """[T, 80] -> ([T' / stride, 80 * stride], mask [T' / stride]), T' = T rounded up to the stride."""
    if active("semantic.features.padding_zero"):
        padding_value = 0.0
    count = frames.shape[0]
    mask = np.ones(count, dtype=np.int32)
    extra = -count % stride
    if extra and active("semantic.features.odd_truncate"):
        frames, mask = frames[: count - (stride - extra)], mask[: count - (stride - extra)]
    elif extra:
        frames = np.concatenate([frames, np.full((extra, frames.shape[1]), padding_value, frames.dtype)])
        mask = np.concatenate([mask, np.zeros(extra, np.int32)])
    usable = frames.shape[0]
    stacked = frames.reshape(usable // stride, frames.shape[1] * stride)
    keep = 0 if active("semantic.features.mask_even_index") else stride - 1
    return stacked, mask[np.arange(usable) % stride == keep]


def features(config: SemanticConfig, wav_16k: torch.Tensor, tap, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """wav [1, S] at 16 kHz -> (input_features [1, T, 160] float32, attention_mask [1, T] int32)."""
    wave = wav_16k[0].detach().cpu().numpy()  # a batch of one
    fbank = tap(f"{prefix}/fbank", torch.from_numpy(log_mel_fbank(wave, config.num_mel_bins, config.sampling_rate))[None])
    stacked, mask = stack_frames(normalise_per_bin(fbank[0].numpy()), config.stride, config.padding_value)
    feats = tap(f"{prefix}/features", torch.from_numpy(np.ascontiguousarray(stacked))[None])
    return feats, tap(f"{prefix}/attention_mask", torch.from_numpy(mask)[None])
