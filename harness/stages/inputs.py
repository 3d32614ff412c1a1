"""The `inputs` part: what the pipeline is given.

The speaker recording as the file holds it (its channels, at its own rate, decoded as librosa.load decodes
it) and its sample rate; the front end (`frontend`) loads it as upstream does. Until the GPT part lands, the
content features of the text to speak are a seeded stand-in, marked as such in the trace (the speaker's come
from the `semantic` part's codec). Random draws are recorded where upstream makes them, as stages of the part that draws
(`cfm/seg_NN/noise`). Homes: `reference_hooks/inputs.py` (the recording, the seeded stand-ins),
`reimpl/inputs/` (a pass-through: our side takes the inputs as recorded).
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.stages.spec import AUDIO, EXACT, Part, PartConfig, StageSpec


@dataclass(frozen=True)
class InputsConfig(PartConfig):
    """The stand-in's sizes."""

    content_channels: int = 1024  # width of the content features the length regulator reads
    target_codes: int = 40  # how many GPT codes the target stand-in stands for


SEG = "inputs/seg_{seg}"

STAGES = (
    StageSpec("inputs/speaker_wav", "C S", kind=AUDIO,
              doc="the speaker recording as the file holds it: its channels at its own rate (libsndfile float32)"),
    StageSpec("inputs/speaker_rate", "N", kind=EXACT, doc="the recording's sample rate in Hz"),
    StageSpec(SEG + "/target_content", "B T C", stand_in="gpt",
              doc="content features of the text to speak (codes + GPT latent)"),
)

PART = Part(
    name="inputs",
    doc="the speaker recording as the file holds it, and the stand-in of the GPT's content",
    stages=STAGES,
    produces=tuple(s.template for s in STAGES),
    config=InputsConfig,
    given=True,
)
