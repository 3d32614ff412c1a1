"""Our semantic part: features -> w2v-bert 2.0 -> the shipped statistics -> the semantic codec for the speaker
(infer_v2.py:354-359), and the same features and model for the emotion prompt (:391-395).
Declared in `harness/stages/semantic.py`."""
from __future__ import annotations

import torch

from harness.stages.semantic import CODEC, SemanticConfig
from reimpl.params import Params
from reimpl.semantic import codec, features, w2v


def condition(params: Params, config: SemanticConfig, wav_16k: torch.Tensor, tap, prefix: str, cond: str
              ) -> torch.Tensor:
    """16 kHz audio [1, S] -> the normalised hidden_states[17] [1, T, 1024] (get_emb, :263-271)."""
    feats, mask = features.features(config, wav_16k, tap, prefix)
    return w2v.normalise(params, w2v.hidden(params, config, feats, mask, tap, prefix), tap, f"{prefix}/{cond}")


def run(params: Params, config: SemanticConfig, given: dict[str, torch.Tensor], tap) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        spk = condition(params, config, given["frontend/wav_16k"], tap, "semantic", "spk_cond")
        codes, emb = codec.quantize(params, config, spk, tap)
        emo = condition(params, config, given["frontend/emo_wav_16k"], tap, "semantic/emo", "cond")
    return {"semantic/spk_cond": spk, CODEC + "/codes": codes, CODEC + "/emb": emb, "semantic/emo/cond": emo}
