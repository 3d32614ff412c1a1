"""Our vocoder part, as infer_v2 runs it: per segment the CFM output minus the prompt frames through BigVGAN,
then the segment waves joined with 200 ms of zeros, then 16-bit samples. Declared in `harness/stages/vocoder.py`.

Facts a port must match (infer_v2.py): BigVGAN gets `vc_target[:, :, prompt_frames:]` as [B, 80, T]
(channels before time); each segment's wave is clamped to [-1, 1]; between consecutive segments (none after
the last) come int(22050 x 200 / 1000) = 4410 zeros; int16 = (wav x 32767) clamped to +-32767 and
truncated toward zero (not rounded, not scaled by 32768).
"""
from __future__ import annotations

import numpy as np
import torch

from harness import stages
from harness.stages.vocoder import SEG, VocoderConfig
from reimpl import faults
from reimpl.params import Params
from reimpl.vocoder.bigvgan import fold_weights, generator

MEL_OUT = "cfm/seg_{seg}/mel_out"


def load_params(weights: dict[str, np.ndarray | torch.Tensor], dtype: torch.dtype = torch.float32) -> Params:
    """The checkpoint by upstream name, cast to the run dtype and not yet folded: the fold is part of the run
    (`fold_weights`), where a port's weight-norm bug lives."""
    out = {}
    for name, value in weights.items():
        t = torch.as_tensor(np.asarray(value))
        out[name] = t.to(dtype) if t.is_floating_point() else t
    return out


def vocoder_input(mel_out: torch.Tensor, prompt_frames: int) -> torch.Tensor:
    if faults.active("vocoder.prompt_not_cut"):
        prompt_frames = 0  # the port's bug: the prompt's frames go through BigVGAN too
    mel = mel_out[:, :, prompt_frames:]
    if faults.active("vocoder.mel_btc"):
        # the port's bug: its mel buffer is time-major, and that memory is read back as [B, 80, T]
        mel = mel.transpose(1, 2).reshape(mel.shape)
    return mel


def join_segments(wavs: list[torch.Tensor], silence: int) -> torch.Tensor:
    """Segment waves [B, S_k] with `silence` zeros between consecutive ones."""
    if faults.active("vocoder.join_no_silence"):
        silence = 0  # the port's bug: segments joined back to back
    pieces = []
    for k, wav in enumerate(wavs):
        pieces.append(wav)
        if k < len(wavs) - 1:
            pieces.append(torch.zeros(wav.shape[0], silence, dtype=wav.dtype))
    return torch.cat(pieces, dim=1)


def to_int16(wav: torch.Tensor) -> torch.Tensor:
    if faults.active("vocoder.int16_32768"):
        return (wav.float() * 32768).clamp(-32768, 32767).to(torch.int16)  # the port's bug
    return (wav.float() * 32767).clamp(-32767, 32767).to(torch.int16)


def run(params: Params, config: VocoderConfig, given: dict[str, torch.Tensor], tap) -> dict[str, torch.Tensor]:
    out = {}
    prompt_frames = given["frontend/mel/out"].shape[-1]
    with torch.inference_mode():
        p = fold_weights(params)
        dtype = p["bigvgan.conv_pre.weight"].dtype
        wavs = []
        for seg in stages.segments_in(given, MEL_OUT):
            at = stages.seg_path(SEG, seg)
            mel = tap(f"{at}/bigvgan_in", vocoder_input(given[stages.seg_path(MEL_OUT, seg)], prompt_frames))
            out[f"{at}/bigvgan_in"] = mel
            out[f"{at}/wav"] = wav = generator(p, config, mel.to(dtype), at, tap)
            wavs.append(wav)
        if wavs:
            out["vocoder/wav"] = wav = tap("vocoder/wav", join_segments(wavs, config.silence_samples))
            out["vocoder/int16"] = tap("vocoder/int16", to_int16(wav))
    return out
