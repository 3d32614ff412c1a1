"""Our cfm part: per text segment, the condition (prompt half then target half) and the Euler loop of the
batched-CFG DiT from the recorded noise. Declared in `harness/stages/cfm.py`."""
from __future__ import annotations

import torch

from harness import stages
from harness.stages.cfm import SEG, CfmConfig
from reimpl.cfm.solver import run_cfm
from reimpl.params import Params

PROMPT_OUT = "s2mel/length_regulator/prompt/out"
TARGET_OUT = "s2mel/seg_{seg}/length_regulator/target/out"


def run(params: Params, config: CfmConfig, given: dict[str, torch.Tensor], tap) -> dict[str, torch.Tensor]:
    out = {}
    with torch.inference_mode():
        for seg in stages.segments_in(given, TARGET_OUT):
            # infer_v2: cat_condition = torch.cat([prompt_condition, cond], dim=1)
            mu = torch.cat([given[PROMPT_OUT], given[stages.seg_path(TARGET_OUT, seg)]], dim=1)
            at = stages.seg_path(SEG, seg)
            noise = given[f"{at}/noise"]
            out[f"{at}/mel_out"] = run_cfm(params, config, mu, given["frontend/mel/out"], given["style/style"],
                                           tap(f"{at}/noise", noise), at, tap)
    return out
