"""The `vocoder` part: BigVGAN v2 (22 kHz, 80 bands, 256x) per text segment, then infer_v2's join and int16.

Per segment: the generated mel handed to BigVGAN (the CFM output minus the prompt frames), conv_pre, each
upsampling stage and the averaged output of its AMP blocks, the internals of the first and the last AMP
block (each of their dilation layers: the two anti-aliased SnakeBeta activations and the two convolutions),
the anti-aliased activation after the last stage, conv_post and the clamp. Then, once per run, the segment
waves joined with 200 ms of zeros and the int16 conversion. Upstream files are under
`indextts/s2mel/modules/bigvgan/` of indextts2-inference 2.1.1 (`act/` = `alias_free_activation/torch/`).

Naming: `up_{block}` and `amp_{block}` carry the upsampling stage's index; `resblock_{block}` the AMP block's
index in upstream's flat `resblocks` list (i x 3 + kernel), the number its parameters are named by; a stage
path is never a prefix of another (HDF5 cannot hang a group under a dataset).
Homes: `reference_hooks/vocoder.py` (upstream's BigVGAN, hooked), `reimpl/vocoder/` (bigvgan, activations,
the glue in `__init__`, with the faults' switch points).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from harness.stages.spec import AUDIO, INTERNAL, FaultSpec, Part, PartConfig, StageSpec


@dataclass(frozen=True)
class VocoderConfig(PartConfig):
    """The fields of `s2mel/modules/bigvgan/config.json` in upstream's wheel that `BigVGAN.__init__` reads
    (the hub's nvidia/bigvgan_v2_22khz_80band_256x), and infer_v2's join settings (22050 Hz at :576,
    `interval_silence=200` ms)."""

    RUN_FIELDS = ("interval_silence_ms",)

    resblock: str = "1"
    upsample_rates: tuple[int, ...] = (4, 4, 2, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (8, 8, 4, 4, 4, 4)
    upsample_initial_channel: int = 1536
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    use_tanh_at_final: bool = False
    use_bias_at_final: bool = False
    activation: str = "snakebeta"
    snake_logscale: bool = True
    num_mels: int = 80
    hop_size: int = 256
    sample_rate: int = 22050
    interval_silence_ms: int = 200

    @classmethod
    def from_dict(cls, data: dict) -> VocoderConfig:
        """As every part's, with the nested dilation lists (JSON arrays) made tuples again."""
        config = super().from_dict(data)
        return dataclasses.replace(config, resblock_dilation_sizes=tuple(tuple(d) for d in
                                                                          config.resblock_dilation_sizes))

    def upstream_h(self) -> dict:
        """config.json's fields as `BigVGAN(h)` reads them (`sampling_rate` there)."""
        h = {k: v for k, v in self.to_dict().items() if k not in ("sample_rate", "interval_silence_ms")}
        h = {k: [list(d) for d in v] if k == "resblock_dilation_sizes" else (list(v) if isinstance(v, tuple) else v)
             for k, v in h.items()}
        return {**h, "sampling_rate": self.sample_rate}

    @property
    def silence_samples(self) -> int:
        """infer_v2.py:301: int(sampling_rate * interval_silence / 1000.0), 4410 at 22050 Hz."""
        return int(self.sample_rate * self.interval_silence_ms / 1000.0)

    @property
    def n_resblocks(self) -> int:
        return len(self.upsample_rates) * len(self.resblock_kernel_sizes)

    @property
    def detailed_resblocks(self) -> tuple[int, ...]:
        """The AMP blocks recorded down to each activation: the first (where a bug shows first) and the last
        (where it has grown most); the others give only their stage's averaged output."""
        return (0, self.n_resblocks - 1)


SEG = "vocoder/seg_{seg}"
_RES = SEG + "/resblock_{block}/layer_{layer}"
_BIG = "bigvgan.py"
_ACT = "alias_free_activation/torch"


def _stage(name: str, layout: str, doc: str, **kw) -> StageSpec:
    return StageSpec(f"{SEG}/{name}", layout, group=SEG, doc=doc, **kw)


def _inner(name: str, doc: str) -> StageSpec:
    return StageSpec(f"{_RES}/{name}", "B C T", group=SEG, detail=INTERNAL, doc=doc)


def _activation(which: str, where: str) -> tuple[StageSpec, ...]:
    return (
        _inner(f"{which}/up", f"{where}: 2x upsampled, kaiser-sinc low-pass (T doubled) ({_ACT}/resample.py:32-36)"),
        _inner(f"{which}/snake", "SnakeBeta x + sin^2(e^alpha x) / (e^beta + 1e-9) at 2x (activations.py:113-118)"),
        _inner(f"{which}/down", f"low-pass, 2x downsampled ({_ACT}/filter.py:98-99)"),
    )


STAGES = (
    _stage("bigvgan_in", "B C T", "the mel handed to BigVGAN: the CFM output minus the prompt frames (infer_v2.py:697)",
           plot=("mel",)),
    _stage("conv_pre", "B C T", f"Conv1d(80 -> C, k 7, pad 3), weight norm folded ({_BIG}:332)"),
    _stage("up_{block}", "B C T", f"ConvTranspose1d(C -> C/2, k, stride u, pad (k - u)/2): u x longer ({_BIG}:337)"),
    *_activation("act1", "first activation"),
    _inner("conv1", f"dilated Conv1d (k, dilation d, pad (k d - d)/2) ({_BIG}:128)"),
    *_activation("act2", "second activation"),
    _inner("conv2", f"Conv1d (k, dilation 1) ({_BIG}:130)"),
    _inner("out", f"conv2 + the layer's input; the last layer's is the block's output ({_BIG}:131)"),
    _stage("amp_{block}", "B C T", f"the stage's 3 AMP blocks summed in order, / 3 ({_BIG}:339-345)"),
    _stage("act_post", "B C T", f"anti-aliased SnakeBeta after the last stage ({_BIG}:348)"),
    _stage("conv_post", "B C S", f"Conv1d(C -> 1, k 7, pad 3, no bias), before the clamp ({_BIG}:349)"),
    _stage("wav", "B S", kind=AUDIO, input="conv_post", doc=f"clamp(-1, 1) ({_BIG}:354), as [1, S] (infer_v2.py:701-706)"),
    StageSpec("vocoder/wav", "B S", kind=AUDIO, group="vocoder/output",
              doc="segment waves joined, 200 ms of zeros between them (infer_v2.py:719-720)"),
    # float, not exact: teacher-forced (from the reference's wave) its local floor is 0, so the local check is as
    # strict as an exact one; free-running it keeps upstream's own float32-vs-float64 one-LSB flips as its floor
    StageSpec("vocoder/int16", "B S", group="vocoder/output",
              doc="(wav * 32767).clamp(-32767, 32767).to(int16), [1, S] (infer_v2.py:746)"),
)

_AT = "vocoder/seg_00"
_LAYER = _AT + "/resblock_00/layer_0"
FAULTS = (
    FaultSpec("vocoder.mel_btc",
              "the port holds the mel time-major (B T C) and hands that buffer to BigVGAN as B C T (a reshape where "
              "a transpose belongs)", _AT + "/bigvgan_in", "transposed"),
    FaultSpec("vocoder.bigvgan.weight_norm_unfolded",
              "weight norm not folded: the stored direction weight_v used as the weight, the gain weight_g ignored",
              _AT + "/conv_pre", "channel_affine"),
    FaultSpec("vocoder.bigvgan.convtranspose_padding",
              "ConvTranspose1d padded k // 2 instead of (k - u) // 2: each upsampler u samples short, shifted by u/2",
              _AT + "/up_00", "length"),
    FaultSpec("vocoder.activations.snake_no_exp",
              "log-scale SnakeBeta parameters used as they are: alpha and beta instead of exp(alpha) and exp(beta)",
              _LAYER + "/act1/snake", "confined"),
    FaultSpec("vocoder.activations.snake_alpha_beta_swapped",
              "SnakeBeta reads beta as the frequency and alpha as the magnitude", _LAYER + "/act1/snake"),
    FaultSpec("vocoder.bigvgan.amp_sum", "a stage's AMP blocks summed without dividing by their number",
              _AT + "/amp_00", "affine"),
    FaultSpec("vocoder.bigvgan.tanh_final", "tanh at the end (BigVGAN v1's default) where this config clamps",
              _AT + "/wav", "elementwise"),
    FaultSpec("vocoder.prompt_not_cut", "the whole CFM output into BigVGAN: the prompt's frames not cut off "
              "(infer_v2.py:697 keeps vc_target[:, :, ref_mel.size(-1):])", _AT + "/bigvgan_in", "length"),
    FaultSpec("vocoder.join_no_silence", "segment waves joined back to back, without infer_v2's 200 ms of zeros "
              "between them", "vocoder/wav", "length"),
    FaultSpec("vocoder.int16_32768", "int16 written as (wav * 32768).clamp(-32768, 32767)", "vocoder/int16", "exact"),
)

PART = Part(
    name="vocoder",
    doc="BigVGAN per segment (mel -> wave), then the segments joined with 200 ms of silence and the int16 output",
    stages=STAGES,
    consumes=("cfm/seg_{seg}/mel_out", "frontend/mel/out"),
    produces=(SEG + "/bigvgan_in", SEG + "/wav", "vocoder/wav", "vocoder/int16"),
    config=VocoderConfig,
    faults=FAULTS,
    per_segment=True,
    exports=(SEG + "/bigvgan_in",),  # what a port's vocoder alone is fed
)
