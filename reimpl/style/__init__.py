"""Our style part: the Kaldi fbank of the speaker's 16 kHz audio, centred over time, through CAMPPlus
(infer_v2.py:362-366). Declared in `harness/stages/style.py`."""
from __future__ import annotations

import torch

from harness.stages.style import StyleConfig
from reimpl.params import Params
from reimpl.style.campplus import campplus
from reimpl.style.fbank import centred


def run(params: Params, config: StyleConfig, given: dict[str, torch.Tensor], tap) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        return {"style/style": campplus(params, config, centred(config, given["frontend/wav_16k"], tap), tap)}
