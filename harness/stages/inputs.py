"""The `inputs` part: what the pipeline is given.

The text to speak, the speaker recording and, when one is given, an emotion recording. The text is an input:
its Unicode code points, one int per character (an exact diff then names the character as the tokenizer sees
it; UTF-8 bytes would spread one character over several indices). A recording is kept as the file holds it
(its channels, at its own rate, decoded as librosa.load decodes it) with its sample rate; the front end
(`frontend`) loads it as upstream does. No stand-in remains: every later stage is computed by a part. Random
draws are recorded where upstream makes them, as stages of the part that draws (`cfm/seg_NN/noise`,
`gpt/seg_NN/token_NNNN/noise`). Homes: `reference_hooks/inputs.py` (the text, the recordings), `reimpl/inputs/`
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
    """Nothing to configure: the text and the recordings are the run's own (`--text`, `--speaker`, `--emo-wav`)."""


STAGES = (
    StageSpec("inputs/text", "B T", kind=EXACT, doc="the text to speak, as Unicode code points (one per character)"),
    StageSpec("inputs/speaker_wav", "C S", kind=AUDIO,
              doc="the speaker recording as the file holds it: its channels at its own rate (libsndfile float32)"),
    StageSpec("inputs/speaker_rate", "N", kind=EXACT, doc="the recording's sample rate in Hz"),
    StageSpec("inputs/emo_wav", "C S", kind=AUDIO,
              doc="the emotion recording (emo_audio_prompt, --emo-wav) as the file holds it; absent, the emotion "
                  "path loads the speaker recording (infer_v2.py:521-525)"),
    StageSpec("inputs/emo_rate", "N", kind=EXACT, doc="the emotion recording's sample rate in Hz"),
)

PART = Part(
    name="inputs",
    doc="the text to speak and the speaker (and emotion) recording as the file holds it",
    stages=STAGES,
    produces=tuple(s.template for s in STAGES),
    config=InputsConfig,
    given=True,
)
