"""Our vocoder part, so far its input: infer_v2 cuts the prompt frames off the CFM output and hands BigVGAN
the rest as [B, 80, T] (`vc_target[:, :, ref_mel.size(-1):]`). Declared in `harness/stages/vocoder.py`."""
from __future__ import annotations

import torch

from harness import stages
from harness.stages.vocoder import SEG, VocoderConfig
from reimpl import faults

MEL_OUT = "cfm/seg_{seg}/mel_out"


def run(params, config: VocoderConfig, given: dict[str, torch.Tensor], tap) -> dict[str, torch.Tensor]:
    out = {}
    prompt_frames = given["frontend/mel/out"].shape[-1]
    for seg in stages.segments_in(given, MEL_OUT):
        mel = given[stages.seg_path(MEL_OUT, seg)][:, :, prompt_frames:]
        if faults.active("vocoder.mel_btc"):
            mel = mel.transpose(1, 2)  # the port's bug: time-major into the vocoder
        at = stages.seg_path(SEG, seg)
        out[f"{at}/bigvgan_in"] = tap(f"{at}/bigvgan_in", mel)
    return out
