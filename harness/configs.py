"""The pipeline configuration: one config per part (declared in `harness/stages/<part>.py`), held together.

Both sides build their models from one of these: `reference_hooks` turns a part's config into the
arguments upstream's constructors read, `reimpl` reads the fields directly. It is plain data, so the
harness records it in every trace, rebuilds it from a trace's provenance, and compares runs by it
without importing a model.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from harness.errors import UserError
from harness.stages import PARTS
from harness.stages.cfm import CfmConfig
from harness.stages.frontend import FrontendConfig
from harness.stages.gpt import GptConfig
from harness.stages.inputs import InputsConfig
from harness.stages.s2mel import S2MelConfig
from harness.stages.semantic import SemanticConfig
from harness.stages.style import StyleConfig
from harness.stages.vocoder import VocoderConfig


@dataclass(frozen=True)
class PipelineConfig:
    """A named pipeline: the config of every part. `steps` etc. are reached through the part (`cfg.cfm.steps`)."""

    name: str
    inputs: InputsConfig = field(default_factory=InputsConfig)
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    style: StyleConfig = field(default_factory=StyleConfig)
    gpt: GptConfig = field(default_factory=GptConfig)
    semantic: SemanticConfig = field(default_factory=SemanticConfig)
    s2mel: S2MelConfig = field(default_factory=S2MelConfig)
    cfm: CfmConfig = field(default_factory=CfmConfig)
    vocoder: VocoderConfig = field(default_factory=VocoderConfig)

    def __post_init__(self):
        # widths that one part hands to the next must agree
        checks = [
            (self.semantic.codec_hidden_size, self.s2mel.lr_in_channels, "semantic.codec_hidden_size",
             "s2mel.lr_in_channels"),
            (self.s2mel.lr_channels, self.cfm.content_dim, "s2mel.lr_channels", "cfm.content_dim"),
            (self.frontend.n_mels, self.cfm.in_channels, "frontend.n_mels", "cfm.in_channels"),
            (self.style.embedding_size, self.cfm.style_dim, "style.embedding_size", "cfm.style_dim"),
            (self.cfm.wavenet_hidden, self.cfm.hidden_dim, "cfm.wavenet_hidden", "cfm.hidden_dim"),
            (self.cfm.in_channels, self.vocoder.num_mels, "cfm.in_channels", "vocoder.num_mels"),
            (self.gpt.model_dim, self.s2mel.gpt_dim, "gpt.model_dim", "s2mel.gpt_dim"),
            (self.gpt.number_mel_codes - 2, self.s2mel.codec_codebook_size, "gpt.number_mel_codes - 2",
             "s2mel.codec_codebook_size"),
        ]
        if self.gpt.max_text_tokens_per_segment > self.gpt.max_text_tokens:
            raise UserError(f"config {self.name}: gpt.max_text_tokens_per_segment exceeds gpt.max_text_tokens "
                            "(the text position table)")
        for a, b, name_a, name_b in checks:
            if a != b:
                raise UserError(f"config {self.name}: {name_a} = {a} but {name_b} = {b}; they must agree")

    def part(self, name: str):
        return getattr(self, name)

    def to_dict(self) -> dict:
        return {"name": self.name, **{p.name: self.part(p.name).to_dict() for p in PARTS}}

    @classmethod
    def from_dict(cls, data: dict) -> PipelineConfig:
        try:
            parts = {p.name: p.config.from_dict(data.get(p.name, {})) for p in PARTS}
            return cls(name=str(data["name"]), **parts)
        except (KeyError, TypeError) as exc:
            raise UserError(f"not a pipeline configuration ({exc}); capture the trace again") from None

    def digest(self) -> str:
        """A short hash of every field: stored in traces to match runs."""
        return _hash(self.to_dict())

    def arch_digest(self, part: str) -> str:
        """A hash of one part's architecture alone: what that part's checkpoint must fit."""
        return _hash(self.part(part).arch_dict())

    def with_(self, **changes) -> PipelineConfig:
        """A copy with fields changed, each given as `part__field=value`, or `steps=N` for the CFM's steps."""
        if "steps" in changes:
            changes["cfm__steps"] = changes.pop("steps")
        by_part: dict[str, dict] = {}
        top = {}
        for key, value in changes.items():
            if "__" in key:
                p, f = key.split("__", 1)
                by_part.setdefault(p, {})[f] = value
            else:
                top[key] = value
        for p, values in by_part.items():
            top[p] = dataclasses.replace(self.part(p), **values)
        return dataclasses.replace(self, **top)


def _hash(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


#: The real IndexTTS2 architecture (checkpoints/config.yaml).
FULL = PipelineConfig(name="full")

#: The same architecture, every feature on, at a width and depth that runs in seconds on a CPU.
#: Depth 5 keeps a middle block with no UViT skip (blocks 0-1 push, 3-4 pop), as depth 13 does.
#: The front end and CAMPPlus (6.85 M parameters) keep their real size: upstream hard-wires them.
#: The GPT keeps its hard-wired width 1280 (gpt_layer reads it) with 2 layers and small conformers
#: (/work/shared/tiny-pipeline-config.yaml); at most 16 tokens per segment, and segments of at most 16
#: text tokens (infer's max_text_tokens_per_segment), so the default text's two sentences are two segments.
TINY = PipelineConfig(
    name="tiny",
    gpt=GptConfig(layers=2, heads=4, max_mel_tokens=250, max_text_tokens=120, number_text_tokens=256,
                  cond_output_size=64, cond_linear_units=128, cond_heads=2, cond_blocks=2, emo_output_size=64,
                  emo_linear_units=128, emo_heads=2, emo_blocks=2, max_tokens=16, max_text_tokens_per_segment=16),
    # w2v-bert at its hard-wired width (1024: the codec's and the length regulator's input) with a small FFN and
    # 18 layers, one more than the 17 read, so reading the wrong layer shows; a small codec backbone
    semantic=SemanticConfig(num_hidden_layers=18, intermediate_size=256, vocos_dim=32, vocos_intermediate_dim=64,
                            vocos_num_layers=2),
    s2mel=S2MelConfig(lr_channels=64),
    cfm=CfmConfig(hidden_dim=64, num_heads=4, depth=5, content_dim=64, wavenet_hidden=64, wavenet_layers=3),
    vocoder=VocoderConfig(upsample_initial_channel=128),  # BigVGAN's channels 128 -> 64 ... -> 2
)

CONFIGS: dict[str, PipelineConfig] = {c.name: c for c in (TINY, FULL)}


def get_config(name: str) -> PipelineConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise UserError(f"unknown config {name!r}; choose one of: {', '.join(CONFIGS)}") from None
