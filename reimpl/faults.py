"""The fault catalogue: real porting bugs, each switchable by name, so the harness can be shown to find them.

Every fault is a faithful reproduction of a mistake seen in a real port (most from a Rust candle port
of IndexTTS2 that produced noise) or typical of ports. Each entry names the stage where the bug lives
(where the first divergence must be found, at the first ODE step, conditional half first) and the
diagnosis hint that should explain it, where one applies. The code that a fault changes asks
`active(name)` at the one place the bug lives.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

from harness.errors import UserError


@dataclass(frozen=True)
class Fault:
    name: str
    summary: str
    stage: str  # the stage label where the bug lives: the expected first divergence
    hint: str | None = None  # the diagnosis hint kind expected there, where one applies


CATALOGUE: tuple[Fault, ...] = (
    Fault("length_regulator.layer_norm",
          "LayerNorm over channels at each frame where upstream has GroupNorm(1 group) over channels and time",
          "s2mel/length_regulator/prompt/block_0"),
    Fault("length_regulator.conv_before_interp",
          "the conv stack runs at the content rate, before the interpolation to mel frames",
          "s2mel/length_regulator/prompt/interp", "equals_stage"),
    Fault("cfm.prompt_x_whole_mel",
          "prompt_x built from the whole speaker mel (tiled over every frame) instead of zeros plus the prompt frames",
          "cfm/prompt_x", "masked_region"),
    Fault("cfm.uncond_keeps_style",
          "the unconditional CFG half keeps the speaker style instead of zeros",
          "cfm/step_00/dit/in/style (uncond)", "equals_stage"),
    Fault("dit.rope_halves",
          "RoPE rotating the two halves of each head (rotate_half) where upstream rotates interleaved pairs",
          "cfm/step_00/dit/block_00/attn_out (cond)"),
    Fault("dit.uvit_skip_add",
          "UViT skip added to the block input instead of concatenated and merged by skip_in_linear",
          "cfm/step_00/dit/block_{first_receiver}/skip_in (cond)"),
    Fault("final_layer.no_silu",
          "FinalLayer's adaLN modulation without the SiLU before its Linear",
          "cfm/step_00/dit/final_layer/shift (cond)"),
    Fault("final_layer.scale_shift_swapped",
          "(scale, shift) read from the modulation chunks in the wrong order",
          "cfm/step_00/dit/final_layer/shift (cond)", "equals_stage"),
    Fault("final_layer.no_one_plus",
          "modulate as x * scale + shift instead of x * (1 + scale) + shift",
          "cfm/step_00/dit/final_layer/modulated (cond)", "difference_is_stage"),
    Fault("cfm.cfg_formula",
          "CFG mixed as v_uncond + r (v_cond - v_uncond) instead of (1 + r) v_cond - r v_uncond",
          "cfm/step_00/v_cfg", "cfg_mix"),
    Fault("cfm.euler_backward",
          "the Euler step taken in the wrong direction: x - dt v",
          "cfm/step_00/x_next", "difference_is_stage"),
    Fault("vocoder.mel_btc",
          "the generated mel handed to the vocoder as B T C instead of B C T",
          "vocoder/bigvgan_in", "transposed"),
)

_BY_NAME = {f.name: f for f in CATALOGUE}
_active: frozenset[str] = frozenset()


def get(name: str) -> Fault:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UserError(f"unknown fault {name!r}; `harness faults` lists them") from None


def active(name: str) -> bool:
    """Is this fault switched on? Called at the one place each bug lives."""
    assert name in _BY_NAME, name
    return name in _active


@contextlib.contextmanager
def enabled(names: tuple[str, ...] | list[str]):
    """Switch faults on for the duration of a run; always switched off again afterwards."""
    global _active
    for n in names:
        get(n)
    before = _active
    _active = frozenset(names)
    try:
        yield
    finally:
        _active = before


def expected_stage(fault: Fault, depth: int) -> str:
    """The expected first-divergence label for a model of this depth (the first UViT receiver)."""
    return fault.stage.format(first_receiver=f"{depth // 2 + 1:02d}")
