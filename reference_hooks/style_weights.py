"""CAMPPlus's seeded checkpoint: upstream's names and shapes, our generator, valid batch-norm statistics.

The rule of `reference_hooks/weights.py` (each tensor from a generator keyed by (seed, name), conv weights
N(0, 1/fan_in), norm gains 1 + 0.1 N, biases 0.05 N) cannot serve CAMPPlus as it stands: its ~70 batch
norms carry running statistics, which a trained model holds and eval mode uses, and a running variance
drawn like a bias would be negative. Here `running_mean` is 0.1 N, `running_var` is the variance that
BN's input typically has x exp(0.2 N) (always > 0), `num_batches_tracked` 0.

The typical variances were calibrated once on the fixture recording (CAMPPlus fed its centred fbank),
setting the layers one after another in forward order so that each BN's running variance matches the
variance its input really has once the earlier ones are set. With a flat 0.5 the activations grew to a
std of 7-14 by the last block; with the table every CAMPPlus stage has a std between 0.46 and 3.0 and the
style vector 1.08 (seed 0, the fixture), and 70 of the 512 channels before the pooling are dead (ReLU), as
in trained nets.
"""
from __future__ import annotations

import numpy as np

from reference_hooks.weights import generate as generic
from reference_hooks.weights import rng_for

#: (name fragment, variance of the BN's input) in forward order; names are upstream's CAMPPlus names
_VARIANCE = (
    ("head.bn1.", 25.0),  # 3x3 conv of the centred fbank (std ~5)
    ("head.bn2.", 4.7),
    (".shortcut.1.", 0.8),
    ("head.layer", None),  # BasicResBlock: bn1 0.3, bn2 0.6
    ("xvector.tdnn.", 0.4),
    ("xvector.block", None),  # dense layers: by block, nonlinear1 (before the 1x1) / nonlinear2 (before CAM)
    ("xvector.transit1.", 0.24),
    ("xvector.transit2.", 0.30),
    ("xvector.transit3.", 0.31),
    ("xvector.out_nonlinear.", 0.49),
    ("xvector.dense.", 1.0),
)
_DENSE = {"block1": (0.28, 0.95), "block2": (0.39, 0.53), "block3": (0.35, 0.51)}


def input_variance(name: str) -> float:
    """The variance a BN's input has (roughly) on speech: its running variance is drawn around it."""
    for fragment, value in _VARIANCE:
        if fragment not in name:
            continue
        if fragment == "head.layer":
            return 0.3 if ".bn1." in name else 0.6
        if fragment == "xvector.block":
            block = name.split("xvector.", 1)[1].split(".", 1)[0]
            first, second = _DENSE[block]
            return first if ".nonlinear1." in name else second
        return value
    raise KeyError(f"no input variance for batch norm {name}")


def generate(shapes: dict[str, tuple[int, ...]], seed: int, keep: dict | None = None) -> dict[str, np.ndarray]:
    """reference_hooks/weights.py's rule for weights, gains and biases; valid running statistics for every BN."""
    stats = {n: s for n, s in shapes.items() if n.rsplit(".", 1)[-1] in ("running_mean", "running_var",
                                                                          "num_batches_tracked")}
    out = generic({n: s for n, s in shapes.items() if n not in stats}, seed, keep)
    for name, shape in stats.items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            out[name] = np.zeros(shape, dtype=np.int64)  # upstream's initial value; unused in eval
            continue
        g = rng_for(seed, name)
        if leaf == "running_mean":
            value = 0.1 * g.standard_normal(shape)
        else:
            value = input_variance(name) * np.exp(0.2 * g.standard_normal(shape))
        out[name] = value.astype(np.float32)
    return {n: out[n] for n in shapes}  # upstream's order

