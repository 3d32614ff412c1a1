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


def fitted_noise(noise: torch.Tensor, frames: int) -> torch.Tensor:
    """The recorded draw (`torch.randn([B, 80, T])`, infer_v2's T = the condition's frames) at `frames` frames.

    It fits whenever the condition has the reference's length. Where an earlier stage of ours made another
    length (a fault of the length regulator's target, say), a port would draw noise of its own length: the
    recorded frames are kept as far as they go, and the missing ones are drawn from a generator seeded 0, so
    the run stays deterministic and the mel keeps a realistic level. Those stages then differ in length from
    the reference and are reported so; the first divergence, earlier, is unaffected."""
    have = noise.shape[-1]
    if have >= frames:
        return noise[..., :frames]
    extra = torch.randn((*noise.shape[:-1], frames - have), generator=torch.Generator().manual_seed(0),
                        dtype=noise.dtype)
    return torch.cat([noise, extra], dim=-1)


def run(params: Params, config: CfmConfig, given: dict[str, torch.Tensor], tap) -> dict[str, torch.Tensor]:
    out = {}
    with torch.inference_mode():
        for seg in stages.segments_in(given, TARGET_OUT):
            # infer_v2: cat_condition = torch.cat([prompt_condition, cond], dim=1)
            mu = torch.cat([given[PROMPT_OUT], given[stages.seg_path(TARGET_OUT, seg)]], dim=1)
            at = stages.seg_path(SEG, seg)
            noise = fitted_noise(given[f"{at}/noise"], mu.shape[1])
            out[f"{at}/mel_out"] = run_cfm(params, config, mu, given["frontend/mel/out"], given["style/style"],
                                           tap(f"{at}/noise", noise), at, tap)
    return out
