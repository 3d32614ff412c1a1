"""The `cfm` part: conditional flow matching from noise to mel, the DiT velocity estimator inside it.

Per text segment: the condition (prompt half then target half, concatenated), the recorded start noise,
the schedule, and per Euler step the batched CFG call of the DiT (conditional half first), the CFG mix
and the update (both inline upstream, so recomputed here and checked against the next step's input).
Homes: `reference_hooks/cfm.py` (upstream's CFM, hooked), `reimpl/cfm/` (solver, dit, transformer,
wavenet, final_layer, with the faults' switch points).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.stages.spec import CFG_BOTH, CFG_COND, CFG_UNCOND, INTERNAL, FaultSpec, Part, PartConfig, StageSpec


@dataclass(frozen=True)
class CfmConfig(PartConfig):
    """config.yaml `s2mel.DiT` and `s2mel.wavenet`, and infer_v2's run settings (25 steps, CFG rate 0.7)."""

    RUN_FIELDS = ("steps", "cfg_rate", "temperature")

    hidden_dim: int = 512
    num_heads: int = 8
    depth: int = 13
    in_channels: int = 80
    content_dim: int = 512
    content_codebook_size: int = 1024
    style_dim: int = 192
    block_size: int = 8192
    class_dropout_prob: float = 0.1
    wavenet_hidden: int = 512
    wavenet_layers: int = 8
    wavenet_kernel: int = 5
    wavenet_dilation: int = 1
    wavenet_p_dropout: float = 0.2
    steps: int = 25
    cfg_rate: float = 0.7
    temperature: float = 1.0

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.num_heads

    def fault_fields(self) -> dict[str, str]:
        """Numbers a fault's expected stage depends on: the first UViT block that pops a skip."""
        return {"first_receiver": f"{self.depth // 2 + 1:02d}"}


SEG = "cfm/seg_{seg}"
STEP = SEG + "/step_{step}"
DIT = STEP + "/dit"
_SETUP, _STEP = SEG + "/setup", STEP


def _dit(name: str, layout: str, doc: str, boundary: bool = False, **kw) -> StageSpec:
    return StageSpec(f"{DIT}/{name}", layout, CFG_BOTH, doc=doc, detail="boundary" if boundary else INTERNAL,
                     group=_STEP, **kw)


STAGES = (
    StageSpec(SEG + "/noise", "B C T", draw=True, group=_SETUP,
              doc="the start noise z upstream draws (torch.randn [B, 80, T]), before the temperature"),
    StageSpec(SEG + "/t_span", "N", group=_SETUP, doc="the schedule upstream builds: torch.linspace(0, 1, steps + 1)"),
    StageSpec(SEG + "/mu", "B T C", group=_SETUP, doc="concat(prompt condition, target condition) along time"),
    StageSpec(SEG + "/prompt_x", "B C T", group=_SETUP, doc="zeros with the first prompt frames set to the prompt mel"),
    StageSpec(SEG + "/x_init", "B C T", group=_SETUP, doc="noise times temperature, the prompt frames zeroed"),
    _dit("in/x", "B C T", "x_t, the same in both halves", True),
    _dit("in/prompt_x", "B C T", "prompt_x; zeros in the uncond half", True),
    _dit("in/t", "B", "the time fed to the estimator", True, plot=("step_series",)),
    _dit("in/style", "B C", "style; zeros in the uncond half", True),
    _dit("in/mu", "B T C", "content condition; zeros in the uncond half", True),
    _dit("t_embed", "B C", "t_embedder: sinusoid of 1000 t (cos, sin) -> MLP"),
    _dit("cond_proj", "B T C", "cond_projection(mu)"),
    _dit("x_in", "B T C", "concat(x, prompt_x, cond, style) before the merge"),
    _dit("merge", "B T C", "cond_x_merge_linear"),
    _dit("block_{block}/skip_in", "B T C", "UViT skip merge: Linear(concat(x, skip))"),
    _dit("block_{block}/attn_norm", "B T C", "adaptive RMSNorm before attention"),
    _dit("block_{block}/attn_out", "B T C", "attention output (before residual)"),
    _dit("block_{block}/ffn_norm", "B T C", "adaptive RMSNorm before the FFN"),
    _dit("block_{block}/ffn_out", "B T C", "SwiGLU FFN output (before residual)"),
    _dit("block_{block}/out", "B T C", "block output"),
    _dit("final_norm", "B T C", "adaptive RMSNorm after the last block"),
    _dit("long_skip", "B T C", "skip_linear(concat(transformer out, x))"),
    _dit("conv1", "B T C", "conv1 (a Linear) into the WaveNet width"),
    _dit("t_embed2", "B C", "t_embedder2, the WaveNet condition"),
    _dit("wavenet/layer_{layer}", "B C T", "res/skip conv output of one WaveNet layer"),
    _dit("wavenet/out", "B C T", "WaveNet skip sum, masked"),
    _dit("res_proj", "B T C", "res_projection(long skip), added to the WaveNet output"),
    _dit("final_layer/in", "B T C", "the FinalLayer's input: WaveNet output + res_proj"),
    _dit("final_layer/silu", "B C", "SiLU(t1), what adaLN_modulation's Linear reads"),
    _dit("final_layer/shift", "B C", "first chunk of adaLN_modulation(t1)"),
    _dit("final_layer/scale", "B C", "second chunk of adaLN_modulation(t1)"),
    _dit("final_layer/norm", "B T C", "LayerNorm without affine, eps 1e-6", input="in"),
    _dit("final_layer/modulated", "B T C", "norm * (1 + scale) + shift"),
    _dit("final_layer/out", "B T C", "weight-normalised Linear"),
    _dit("velocity", "B C T", "conv2: the estimator output", True, plot=("step_series", "step_stats")),
    StageSpec(STEP + "/v_cond", "B C T", CFG_COND, group=_STEP, doc="conditional velocity"),
    StageSpec(STEP + "/v_uncond", "B C T", CFG_UNCOND, group=_STEP, doc="unconditional velocity"),
    StageSpec(STEP + "/v_cfg", "B C T", derived=True, group=_STEP, plot=("step_series", "step_stats"),
              mix_of=("v_cond", "v_uncond"), mix_rate="cfm.cfg_rate", doc="(1 + r) v_cond - r v_uncond",
              checked_by="through x_next, which is computed from it"),
    StageSpec(STEP + "/x_next", "B C T", derived=True, group=_STEP, plot=("step_series", "step_stats"),
              doc="x + dt v_cfg, prompt frames zeroed", step_of=("v_cfg", SEG + "/t_span"),
              checked_by="the cond half of the next step's dit/in/x (the last step: the CFM output)"),
    StageSpec(SEG + "/mel_out", "B C T", group=SEG + "/mel_out", plot=("mel",), doc="CFM output, prompt frames included"),
)

_AT = "cfm/seg_00/step_00"
FAULTS = (
    FaultSpec("cfm.solver.prompt_x_whole_mel",
              "prompt_x built from the whole speaker mel (tiled over every frame) instead of zeros plus the prompt frames",
              "cfm/seg_00/prompt_x", "confined"),
    FaultSpec("cfm.solver.uncond_keeps_style", "the unconditional CFG half keeps the speaker style instead of zeros",
              f"{_AT}/dit/in/style (uncond)", "equals_stage"),
    FaultSpec("cfm.transformer.rope_halves",
              "RoPE rotating the two halves of each head (rotate_half) where upstream rotates interleaved pairs",
              f"{_AT}/dit/block_00/attn_out (cond)"),
    FaultSpec("cfm.transformer.uvit_skip_add",
              "UViT skip added to the block input instead of concatenated and merged by skip_in_linear",
              f"{_AT}/dit/block_{{first_receiver}}/skip_in (cond)", "mix"),
    FaultSpec("cfm.final_layer.no_silu", "FinalLayer's adaLN modulation without the SiLU before its Linear",
              f"{_AT}/dit/final_layer/silu (cond)", "equals_stage"),
    FaultSpec("cfm.final_layer.scale_shift_swapped", "(scale, shift) read from the modulation chunks in the wrong order",
              f"{_AT}/dit/final_layer/shift (cond)", "equals_stage"),
    FaultSpec("cfm.final_layer.no_one_plus", "modulate as x * scale + shift instead of x * (1 + scale) + shift",
              f"{_AT}/dit/final_layer/modulated (cond)", "difference_is_stage"),
    FaultSpec("cfm.solver.cfg_formula",
              "CFG mixed as v_uncond + r (v_cond - v_uncond) instead of (1 + r) v_cond - r v_uncond",
              f"{_AT}/v_cfg", "mix"),
    FaultSpec("cfm.solver.euler_backward", "the Euler step taken in the wrong direction: x - dt v",
              f"{_AT}/x_next", "integration_step"),
)


def extras(read) -> dict[str, tuple[np.ndarray, str]]:
    """What a port needs besides the stages to step exactly as upstream: dt and the t upstream fed.

    `read(path)` returns a reference stage or None. dt is the float32 difference of neighbouring entries of
    t_span, as `solve_euler` takes it; the t fed is accumulated (t = t + dt), which may differ from t_span
    in the last bits.
    """
    out: dict[str, tuple[np.ndarray, str]] = {}
    t_span = read("cfm/seg_00/t_span")
    if t_span is not None:
        t32 = np.asarray(t_span, dtype=np.float32)
        out["dt"] = (t32[1:] - t32[:-1], "per-step dt = t_span[k + 1] - t_span[k] in float32, as solve_euler takes it")
        fed = [read(f"cfm/seg_00/step_{k:02d}/dit/in/t") for k in range(len(t32) - 1)]
        if all(t is not None for t in fed):
            out["t_fed"] = (np.asarray([t[0] for t in fed], dtype=np.float32),
                            "the t fed to the DiT at each step: accumulated t + dt, not t_span[k]")
    return out


PART = Part(
    name="cfm",
    doc="flow matching from the recorded noise to a mel: per segment, Euler steps of the batched-CFG DiT",
    stages=STAGES,
    consumes=("s2mel/length_regulator/prompt/out", "s2mel/seg_{seg}/length_regulator/target/out",
              "frontend/mel/out", "style/style"),
    produces=(SEG + "/mel_out",),
    config=CfmConfig,
    faults=FAULTS,
    per_segment=True,
    groups={"dit": ("cfm/*", "vocoder/*/bigvgan_in")},
    exports=(SEG + "/noise", SEG + "/t_span", SEG + "/mu"),
    extras=extras,
)
