"""The `vocoder` part: what BigVGAN receives (for now: the generated mel; BigVGAN itself comes later).

infer_v2 cuts the prompt frames off the CFM output and hands BigVGAN the rest as [B, 80, T].
Homes: `reference_hooks/vocoder.py`, `reimpl/vocoder/`.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.stages.spec import FaultSpec, Part, PartConfig, StageSpec


@dataclass(frozen=True)
class VocoderConfig(PartConfig):
    """BigVGAN v2 22 kHz, 80 bands, 256x (config.json in upstream's wheel); only its sample rate so far."""

    sample_rate: int = 22050


SEG = "vocoder/seg_{seg}"

STAGES = (
    StageSpec(SEG + "/bigvgan_in", "B C T", plot=("mel",), group=SEG,
              doc="the generated mel handed to BigVGAN: the CFM output minus the prompt frames"),
)

FAULTS = (
    FaultSpec("vocoder.mel_btc", "the generated mel handed to the vocoder as B T C instead of B C T",
              "vocoder/seg_00/bigvgan_in", "transposed"),
)

PART = Part(
    name="vocoder",
    doc="the vocoder's input (BigVGAN to come)",
    stages=STAGES,
    consumes=("cfm/seg_{seg}/mel_out", "frontend/mel/out"),
    produces=(SEG + "/bigvgan_in",),
    config=VocoderConfig,
    faults=FAULTS,
    per_segment=True,
)
