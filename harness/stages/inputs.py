"""The `inputs` part: what the pipeline starts from.

Until the parts that compute them land, the content features and the style vector are seeded stand-ins,
marked as such in the trace. (Random draws are recorded where upstream makes them, as stages of the part
that draws: `cfm/seg_NN/noise`.)
Homes: `reference_hooks/inputs.py` (the recording, upstream's mel, the seeded draws), `reimpl/inputs/`
(a pass-through: our side takes the inputs as recorded).
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.stages.spec import AUDIO, Part, PartConfig, StageSpec


@dataclass(frozen=True)
class InputsConfig(PartConfig):
    """The speaker recording's mel settings (config.yaml `s2mel.preprocess_params`) and the stand-ins' sizes."""

    sr: int = 22050
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    fmin: int = 0
    fmax: int | None = None
    content_channels: int = 1024  # width of the semantic features the length regulator reads
    style_dim: int = 192  # CAMPPlus embedding
    target_codes: int = 40  # how many GPT codes the target stand-in stands for


SEG = "inputs/seg_{seg}"

STAGES = (
    StageSpec("inputs/speaker_wav", "B S", kind=AUDIO, doc="speaker recording at the mel sample rate"),
    StageSpec("inputs/prompt_mel", "B C T", doc="speaker mel from the upstream mel function"),
    StageSpec("inputs/prompt_content", "B T C", stand_in="semantic",
              doc="content features of the speaker (semantic codec embedding)"),
    StageSpec("inputs/style", "B C", stand_in="style", doc="speaker style vector (CAMPPlus)"),
    StageSpec(SEG + "/target_content", "B T C", stand_in="gpt",
              doc="content features of the text to speak (codes + GPT latent)"),
)

PART = Part(
    name="inputs",
    doc="the speaker recording, its mel, the stand-ins of parts to come, and every random draw",
    stages=STAGES,
    produces=tuple(s.template for s in STAGES),
    config=InputsConfig,
    given=True,
)
