"""Our s2mel part: the length regulator on the speaker's content (prompt half) and on each segment's
generated content (target half), as infer_v2 calls it. Declared in `harness/stages/s2mel.py`."""
from __future__ import annotations

import torch

from harness import stages
from harness.stages.s2mel import PROMPT, TARGET, S2MelConfig
from reimpl.params import Params
from reimpl.s2mel.length_regulator import run_length_regulator

TARGET_IN = "inputs/seg_{seg}/target_content"
PROMPT_IN = "semantic/codec/emb"  # S_ref (infer_v2.py:359)
PROMPT_MEL = "frontend/mel/out"


def run(params: Params, config: S2MelConfig, given: dict[str, torch.Tensor], tap) -> dict[str, torch.Tensor]:
    """Prompt half (ylens = the speaker mel's frames) and one target half per segment (codes x 1.72)."""
    out = {}
    with torch.inference_mode():
        if PROMPT_IN in given:
            frames = given[PROMPT_MEL].shape[-1]
            out[PROMPT + "/out"] = run_length_regulator(params, config, given[PROMPT_IN], frames,
                                                        PROMPT, tap)
        for seg in stages.segments_in(given, TARGET_IN):
            content = given[stages.seg_path(TARGET_IN, seg)]
            at = stages.seg_path(TARGET, seg)
            out[at + "/out"] = run_length_regulator(params, config, content, config.target_frames(content.shape[1]),
                                                    at, tap)
    return out
