"""The `s2mel` part: the length regulator, content features at the code rate -> a condition per mel frame.

It runs once on the speaker's content (the prompt half, infer_v2's `_get_speaker_conditioning`) and once
per text segment on the generated content (the target half, infer_v2.py:678-686): the GPT's latent through
`gpt_layer` (1280 -> 256 -> 128 -> 1024), plus the semantic codec's embedding of the codes
(`semantic_codec.quantizer.vq2emb`), at (code count x 1.72) frames. The gpt_layer and the codec quantizer
are s2mel's parameters here (upstream keeps gpt_layer in s2mel.pth, the quantizer in the semantic codec's
checkpoint), named as upstream names them. Homes: `reference_hooks/s2mel.py` (upstream's modules, hooked),
`reimpl/s2mel/` (ours, with the faults' switch points).
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.stages.spec import INTERNAL, FaultSpec, Part, PartConfig, StageSpec


@dataclass(frozen=True)
class S2MelConfig(PartConfig):
    """config.yaml `s2mel.length_regulator`, and infer_v2's code-to-frame ratio."""

    RUN_FIELDS = ("code_to_frame",)

    lr_channels: int = 512
    lr_in_channels: int = 1024
    lr_sampling_ratios: tuple[int, ...] = (1, 1, 1, 1)
    lr_codebook_size: int = 2048
    code_to_frame: float = 1.72
    codec_codebook_size: int = 8192  # semantic_codec.codebook_size (config.yaml); its hidden size is lr_in_channels
    codec_codebook_dim: int = 8
    gpt_dim: int = 1280  # gpt_layer's input: the GPT's width (hard-wired upstream, commons.py:400-402)


PROMPT = "s2mel/length_regulator/prompt"
TARGET = "s2mel/seg_{seg}/length_regulator/target"

_LR = (
    ("in", "B T C", "content features in", False, ""),
    ("proj", "B T C", "content_in_proj", True, ""),
    ("interp", "B C T", "nearest interpolation to the mel length", True, "proj"),
    ("block_{layer}/conv", "B C T", "a block's Conv1d k3", True, ""),
    ("block_{layer}/norm", "B C T", "its GroupNorm(1 group): over channels and time, then a per-channel affine",
     True, "conv"),
    ("block_{layer}/out", "B C T", "its Mish: the block's output", True, ""),
    ("out_conv", "B C T", "final 1x1 Conv1d", True, ""),
    ("out", "B T C", "masked output", False, ""),
)


def _half(prefix: str) -> tuple[StageSpec, ...]:
    return tuple(StageSpec(f"{prefix}/{name}", layout, doc=doc, detail=INTERNAL if inner else "boundary",
                           group=prefix, input=source) for name, layout, doc, inner, source in _LR)


SEG = "s2mel/seg_{seg}"

STAGES = _half(PROMPT) + (
    StageSpec(SEG + "/gpt_layer", "B T C", group=TARGET, doc="gpt_layer(latent): Linear 1280 -> 256 -> 128 -> 1024"),
    StageSpec(SEG + "/vq2emb", "B T C", group=TARGET, detail=INTERNAL,
              doc="semantic_codec.quantizer.vq2emb(codes), transposed: codebook then the weight-normed out_project"),
    StageSpec(SEG + "/s_infer", "B T C", group=TARGET, doc="S_infer = vq2emb(codes) + gpt_layer(latent)"),
) + _half(TARGET)

FAULTS = (
    FaultSpec("s2mel.length_regulator.layer_norm",
              "LayerNorm over channels at each frame where upstream has GroupNorm(1 group) over channels and time",
              PROMPT + "/block_0/norm", "normalisation"),
    FaultSpec("s2mel.length_regulator.conv_before_interp",
              "the conv stack runs at the content rate, before the interpolation to mel frames",
              PROMPT + "/interp", "equals_stage"),
    FaultSpec("s2mel.target_length.no_factor",
              "a segment's frame count taken to be its code count, without infer_v2's x 1.72 (infer_v2.py:682)",
              TARGET.format(seg="00") + "/interp", "length"),
    FaultSpec("s2mel.target_length.rounded",
              "code count x 1.72 rounded to the nearest frame where upstream's `.long()` truncates (infer_v2.py:682)",
              TARGET.format(seg="00") + "/interp", "length"),
)

PART = Part(
    name="s2mel",
    doc="the length regulator: content features -> a condition at the mel frame rate (prompt and target halves)",
    stages=STAGES,
    consumes=("semantic/codec/emb", "frontend/mel/out", "gpt/seg_{seg}/codes", "gpt/seg_{seg}/latent/out"),
    produces=(PROMPT + "/out", TARGET + "/out"),
    config=S2MelConfig,
    faults=FAULTS,
    groups={"lr": ("s2mel/*length_regulator/*",), "length_regulator": ("s2mel/*length_regulator/*",)},
)
