"""The semantic part's seeded checkpoint: upstream's names and shapes, our generator, the shipped statistics.

Names: `semantic.model.*` (the `Wav2Vec2BertModel` state dict, hub facebook/w2v-bert-2.0), `semantic.codec.*`
(the `RepCodec` state dict, hub amphion/MaskGCT semantic_codec/model.safetensors) and `semantic.stats.mean|var`
(cfg.w2v_stat: the file ships in upstream's wheel, infer_v2.py:166-168). The statistics are not drawn: the real
file's mean and var (var from 0.07 to 20) are what makes a division by var instead of its root visible.

The drawing rules are reference_hooks/weights.py's, away from identity so a dropped affine or bias shows, with
three changes the semantic modules need: ConvNeXt's layer scale `gamma` is 1 + 0.1 N (a gain, not a bias: at
0.05 N the codec's residual branches would vanish); the codebook is N(0, 1) (the lookup is by cosine: the scale
sets only the embedding's size); and the codec's input conv `embed` is N(0, 1/fan_in) like every conv (the
generic rule reads "embed" as an embedding table). The relative-key distance embedding stays 0.5 N: a position
bias of O(0.5) after the 1/8 scaling. With these, every w2v layer output has std 1.00-1.02 and the codec's z_e 0.7.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from harness.errors import UserError
from reference_hooks.weights import generate as generic
from reference_hooks.weights import rng_for

STATS = "utils/maskgct/models/tts/maskgct/ckpt/wav2vec2bert_stats.pt"  # beside upstream's package


def generate(shapes: dict[str, tuple[int, ...]], seed: int, keep: dict | None = None) -> dict[str, np.ndarray]:
    own = {n: s for n, s in shapes.items() if n.endswith((".gamma", "codebook.weight", ".embed.weight"))}
    out = generic({n: s for n, s in shapes.items() if n not in own}, seed, keep)
    for name, shape in own.items():
        g = rng_for(seed, name)
        if name.endswith(".gamma"):
            value = 1.0 + 0.1 * g.standard_normal(shape)
        elif name.endswith("codebook.weight"):
            value = g.standard_normal(shape)
        else:
            value = g.standard_normal(shape) / np.sqrt(int(np.prod(shape[1:])))
        out[name] = value.astype(np.float32)
    return {n: out[n] for n in shapes}  # upstream's order


def shipped_stats(package_dir: Path) -> dict[str, torch.Tensor]:
    """The w2v statistics file of upstream's wheel (mean, var [1024]), read without unpickling code."""
    path = Path(package_dir) / STATS
    if not path.is_file():
        raise UserError(f"the w2v-bert statistics are not where upstream ships them: {path}")
    stats = torch.load(path, map_location="cpu", weights_only=True)
    return {"mean": stats["mean"].float(), "var": stats["var"].float()}
