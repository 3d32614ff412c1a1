"""Our s2mel part: the length regulator on the speaker's content (prompt half) and, per segment, on the GPT's
content: gpt_layer(latent) + the codec's embedding of the codes (target half), as infer_v2 calls them.
Declared in `harness/stages/s2mel.py`."""
from __future__ import annotations

import torch

from harness import stages
from harness.stages.s2mel import PROMPT, SEG, TARGET, S2MelConfig
from reimpl.params import Params
from reimpl.s2mel.content import gpt_layer, vq2emb
from reimpl.s2mel.length_regulator import run_length_regulator
from reimpl.s2mel.target_length import target_frames

PROMPT_IN = "semantic/codec/emb"  # S_ref (infer_v2.py:359)
PROMPT_MEL = "frontend/mel/out"
CODES, LATENT = "gpt/seg_{seg}/codes", "gpt/seg_{seg}/latent/out"


def _channels_first(s_ref: torch.Tensor) -> torch.Tensor:
    """S_ref as upstream holds it: the codec's B C T output seen as B T C without a copy (infer_v2.py:359).
    The projection that follows reads it with those strides, and a matmul over other strides may round
    differently; a contiguous S_ref (read from a trace, for this part run alone) is laid out the same way."""
    return s_ref.transpose(1, 2).contiguous().transpose(1, 2)


def run(params: Params, config: S2MelConfig, given: dict[str, torch.Tensor], tap) -> dict[str, torch.Tensor]:
    """Prompt half (ylens = the speaker mel's frames) and one target half per segment (codes x 1.72)."""
    out = {}
    with torch.inference_mode():
        if PROMPT_IN in given:
            frames = given[PROMPT_MEL].shape[-1]
            out[PROMPT + "/out"] = run_length_regulator(params, config, _channels_first(given[PROMPT_IN]), frames,
                                                        PROMPT, tap)
        for seg in stages.segments_in(given, CODES):
            codes, latent = given[stages.seg_path(CODES, seg)], given[stages.seg_path(LATENT, seg)]
            at = stages.seg_path(SEG, seg)
            latent = tap(f"{at}/gpt_layer", gpt_layer(params, latent))
            content = tap(f"{at}/vq2emb", vq2emb(params, codes))
            content = tap(f"{at}/s_infer", content + latent)
            target = stages.seg_path(TARGET, seg)
            frames = target_frames(codes.shape[1], config.code_to_frame)
            out[target + "/out"] = run_length_regulator(params, config, content, frames, target, tap)
    return out
