"""The `style` part: Kaldi fbank of the speaker's 16 kHz audio, centred over time, through CAMPPlus -> [B, 192].

infer_v2.py:362-366: `torchaudio.compliance.kaldi.fbank(audio_16k, num_mel_bins=80, dither=0,
sample_frequency=16000)` (every other argument at its default), minus its mean over time, into
`CAMPPlus(feat_dim=80, embedding_size=192)` (:204, every other argument at its default: 6.85 M parameters
whatever the config). Homes: `reference_hooks/style.py` (torchaudio's fbank and upstream's CAMPPlus,
tapped and hooked), `reimpl/style/` (ours: fbank, campplus).
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.stages.spec import INTERNAL, FaultSpec, Part, PartConfig, StageSpec


@dataclass(frozen=True)
class StyleConfig(PartConfig):
    """The fbank upstream asks torchaudio for (kaldi.py defaults otherwise) and CAMPPlus's defaults."""

    num_mel_bins: int = 80
    sample_frequency: int = 16000
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    preemphasis: float = 0.97
    remove_dc_offset: bool = True
    povey_power: float = 0.85  # window_type "povey": symmetric Hann ** 0.85
    round_to_power_of_two: bool = True
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0: offset from Nyquist
    feat_dim: int = 80
    embedding_size: int = 192
    growth_rate: int = 32
    bn_size: int = 4
    init_channels: int = 128
    m_channels: int = 32  # the FCM head
    head_blocks: tuple[int, ...] = (2, 2)
    dense_layers: tuple[int, ...] = (12, 24, 16)
    dense_kernel: tuple[int, ...] = (3, 3, 3)
    dense_dilation: tuple[int, ...] = (1, 2, 2)
    cam_reduction: int = 2
    seg_len: int = 100
    bn_eps: float = 1e-5

    @property
    def frame(self) -> int:
        return int(self.sample_frequency * self.frame_length_ms * 0.001)

    @property
    def shift(self) -> int:
        return int(self.sample_frequency * self.frame_shift_ms * 0.001)

    def min_samples(self) -> int:
        """The shortest 16 kHz audio with a finite style: 3 fbank frames (snip_edges), so that CAMPPlus's
        stride-2 TDNN leaves 2 frames for the unbiased std of its statistics pooling. With fewer, upstream
        raises (under one frame) or returns a NaN style silently."""
        return self.frame + 2 * self.shift


CAMP = "style/campplus"

STAGES = (
    StageSpec("style/fbank/strided", "B T W", detail=INTERNAL, doc="raw 25 ms frames every 10 ms (snip_edges)"),
    StageSpec("style/fbank/windowed", "B T W", detail=INTERNAL,
              doc="DC removed, pre-emphasised (0.97), povey window, zero-padded to 512"),
    StageSpec("style/fbank/power", "B T F", detail=INTERNAL, doc="|rfft|^2, F = 257"),
    StageSpec("style/fbank/mel", "B T C", detail=INTERNAL, doc="Kaldi mel energies (80 triangles, 20 Hz to Nyquist)"),
    StageSpec("style/fbank/log", "B T C", detail=INTERNAL, doc="ln(max(x, float32 eps)): kaldi.fbank's output (:362)"),
    StageSpec("style/fbank/centered", "B T C", doc="minus the mean over time: CAMPPlus's input (:365)"),
    StageSpec(CAMP + "/head/stem", "B C F T", detail=INTERNAL, doc="FCM head conv1 -> bn1 (before the ReLU)"),
    StageSpec(CAMP + "/head/res_block_{layer}", "B C F T", detail=INTERNAL,
              doc="one BasicResBlock of the head (layer1.0, layer1.1, layer2.0, layer2.1)"),
    StageSpec(CAMP + "/head/conv2", "B C F T", detail=INTERNAL, doc="head conv2 (stride 2 in frequency) -> bn2"),
    StageSpec(CAMP + "/head/out", "B C T", detail=INTERNAL, doc="ReLU, reshaped to [B, 32 x 10, T]"),
    StageSpec(CAMP + "/tdnn", "B C T", detail=INTERNAL, doc="TDNN: conv k5 stride 2 -> BN -> ReLU"),
    StageSpec(CAMP + "/block_{block}/layer_{layer}", "B C T", detail=INTERNAL,
              doc="the growth-rate channels one CAM dense layer adds (xvector.block{b+1}.tdnnd{l+1})"),
    StageSpec(CAMP + "/block_{block}/out", "B C T", detail=INTERNAL, doc="a dense block's output: input + every layer's"),
    StageSpec(CAMP + "/transit_{block}", "B C T", detail=INTERNAL, doc="BN -> ReLU -> conv1x1 halving the channels"),
    StageSpec(CAMP + "/out_nonlinear", "B C T", detail=INTERNAL, doc="BN -> ReLU"),
    StageSpec(CAMP + "/stats", "B C", detail=INTERNAL, doc="statistics pooling: mean and unbiased std over time"),
    StageSpec(CAMP + "/dense", "B C", detail=INTERNAL, doc="conv1x1 to 192, before the affine-free BN"),
    StageSpec("style/style", "B C", doc="the speaker style vector (:366)"),
)

FAULTS = (
    FaultSpec("style.fbank.no_preemphasis", "Kaldi fbank without the 0.97 pre-emphasis", "style/fbank/windowed"),
    FaultSpec("style.fbank.hann_window", "a Hann window where Kaldi's default is povey (Hann ** 0.85)",
              "style/fbank/windowed", "channel_affine"),
    FaultSpec("style.fbank.no_dc_removal", "Kaldi fbank without removing each frame's mean", "style/fbank/windowed"),
    FaultSpec("style.fbank.no_mean_removal",
              "the fbank fed to CAMPPlus without subtracting its mean over time (infer_v2.py:365 missed)",
              "style/fbank/centered", "equals_stage"),
    FaultSpec("style.campplus.biased_std",
              "statistics pooling with the biased std (numpy's default ddof=0) where upstream's is unbiased",
              CAMP + "/stats", "confined"),
    FaultSpec("style.campplus.no_seg_pooling",
              "the CAM context from the global mean only, without the 100-frame segment average",
              CAMP + "/block_00/layer_0"),
)

PART = Part(
    name="style",
    doc="Kaldi fbank of the 16 kHz speaker audio, centred, through CAMPPlus: the style vector",
    stages=STAGES,
    consumes=("frontend/wav_16k",),
    produces=("style/style",),
    config=StyleConfig,
    faults=FAULTS,
    groups={"fbank": ("style/fbank/*",), "campplus": (CAMP + "/*",)},
)
