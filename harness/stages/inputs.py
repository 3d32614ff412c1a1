"""The `inputs` part: what the pipeline starts from.

Until the parts that compute them land, the content features, the style vector and the semantic features
the GPT conditions on are seeded stand-ins, marked as such in the trace. The text is an input: its Unicode
code points, one int per character (an exact diff then names the character as the tokenizer sees it; UTF-8
bytes would spread one character over several indices). (Random draws are recorded where upstream makes
them, as stages of the part that draws: `cfm/seg_NN/noise`, `gpt/seg_NN/token_NNNN/noise`.)
Homes: `reference_hooks/inputs.py` (the recording, upstream's mel, the seeded draws), `reimpl/inputs/`
(a pass-through: our side takes the inputs as recorded).
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.stages.spec import AUDIO, EXACT, Part, PartConfig, StageSpec

#: The embedded default's text: two sentences, which the tiny config's segment size (16 text tokens) keeps
#: apart, so every per-segment part runs twice. Lower case on purpose: upstream upper-cases it.
DEFAULT_TEXT = "The weather today is mild. Did you hear the bells?"


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
    semantic_channels: int = 1024  # w2v-bert 2.0 hidden size: the GPT's conditioning input (hard-wired upstream)
    semantic_rate: float = 50.0  # w2v-bert feature frames per second of audio


STAGES = (
    StageSpec("inputs/text", "B T", kind=EXACT, doc="the text to speak, as Unicode code points (one per character)"),
    StageSpec("inputs/speaker_wav", "B S", kind=AUDIO, doc="speaker recording at the mel sample rate"),
    StageSpec("inputs/prompt_mel", "B C T", doc="speaker mel from the upstream mel function"),
    StageSpec("inputs/prompt_content", "B T C", stand_in="semantic",
              doc="content features of the speaker (semantic codec embedding)"),
    StageSpec("inputs/style", "B C", stand_in="style", doc="speaker style vector (CAMPPlus)"),
    StageSpec("inputs/spk_cond", "B T C", stand_in="semantic",
              doc="the speaker's semantic features spk_cond_emb (w2v-bert layer 17, normalised)"),
    StageSpec("inputs/emo_cond", "B T C", stand_in="semantic",
              doc="the emotion reference's semantic features emo_cond_emb (the speaker, loaded again at 16 kHz)"),
)

PART = Part(
    name="inputs",
    doc="the speaker recording, its mel, the stand-ins of parts to come, and every random draw",
    stages=STAGES,
    produces=tuple(s.template for s in STAGES),
    config=InputsConfig,
    given=True,
)
