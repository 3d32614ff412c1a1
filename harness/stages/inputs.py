"""The `inputs` part: what the pipeline is given.

The text to speak and the speaker recording. The text is an input: its Unicode code points, one int per
character (an exact diff then names the character as the tokenizer sees it; UTF-8 bytes would spread one
character over several indices). The recording is kept as the file holds it (its channels, at its own rate,
decoded as librosa.load decodes it) with its sample rate; the front end (`frontend`) loads it as upstream
does. Until the semantic part lands, the speaker's content features and the semantic features the GPT
conditions on are seeded stand-ins, marked as such in the trace. Random draws are recorded where upstream
makes them, as stages of the part that draws (`cfm/seg_NN/noise`, `gpt/seg_NN/token_NNNN/noise`).
Homes: `reference_hooks/inputs.py` (the text, the recording, the seeded stand-ins), `reimpl/inputs/` (a
pass-through: our side takes the inputs as recorded).
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.stages.spec import AUDIO, EXACT, Part, PartConfig, StageSpec

#: The embedded default's text: two sentences, which the tiny config's segment size (16 text tokens) keeps
#: apart, so every per-segment part runs twice. Lower case on purpose: upstream upper-cases it.
DEFAULT_TEXT = "The weather today is mild. Did you hear the bells?"


@dataclass(frozen=True)
class InputsConfig(PartConfig):
    """The stand-ins' sizes."""

    content_channels: int = 1024  # width of the semantic features the length regulator reads
    # the speaker content stand-in's frames per second of speech: one per 1.72 mel frames of 256 samples at
    # 22050 Hz, as the length regulator's prompt half maps content frames to mel frames
    content_rate: float = 22050 / 256 / 1.72
    semantic_channels: int = 1024  # w2v-bert 2.0 hidden size: the GPT's conditioning input (hard-wired upstream)
    semantic_rate: float = 50.0  # w2v-bert feature frames per second of audio


STAGES = (
    StageSpec("inputs/text", "B T", kind=EXACT, doc="the text to speak, as Unicode code points (one per character)"),
    StageSpec("inputs/speaker_wav", "C S", kind=AUDIO,
              doc="the speaker recording as the file holds it: its channels at its own rate (libsndfile float32)"),
    StageSpec("inputs/speaker_rate", "N", kind=EXACT, doc="the recording's sample rate in Hz"),
    StageSpec("inputs/prompt_content", "B T C", stand_in="semantic",
              doc="content features of the speaker (semantic codec embedding)"),
    StageSpec("inputs/spk_cond", "B T C", stand_in="semantic",
              doc="the speaker's semantic features spk_cond_emb (w2v-bert layer 17, normalised)"),
    StageSpec("inputs/emo_cond", "B T C", stand_in="semantic",
              doc="the emotion reference's semantic features emo_cond_emb (the speaker, loaded again at 16 kHz)"),
)

PART = Part(
    name="inputs",
    doc="the speaker recording as the file holds it, the stand-ins of parts to come, and every random draw",
    stages=STAGES,
    produces=tuple(s.template for s in STAGES),
    config=InputsConfig,
    given=True,
)
