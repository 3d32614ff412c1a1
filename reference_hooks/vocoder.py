"""The vocoder part on the reference side, so far its input: infer_v2 cuts the prompt frames off the CFM
output and hands BigVGAN the rest (`infer_v2.py:697`: vc_target[:, :, ref_mel.size(-1):], then
`bigvgan(vc_target.float())` at :701). Declared in `harness/stages/vocoder.py`."""
from __future__ import annotations

import torch

from harness import stages
from harness.stages.vocoder import SEG, VocoderConfig
from reference_hooks.recorder import Recorder

MEL_OUT = "cfm/seg_{seg}/mel_out"


def run(model, config: VocoderConfig, given: dict[str, torch.Tensor], recorder: Recorder) -> dict[str, torch.Tensor]:
    out = {}
    prompt_frames = given["frontend/mel/out"].shape[-1]  # ref_mel.size(-1), ref_mel from infer_v2.py:360
    for seg in stages.segments_in(given, MEL_OUT):
        at = stages.seg_path(SEG, seg)
        vc_target = given[stages.seg_path(MEL_OUT, seg)][:, :, prompt_frames:]  # infer_v2.py:697
        out[f"{at}/bigvgan_in"] = recorder(f"{at}/bigvgan_in", vc_target)
    return out
