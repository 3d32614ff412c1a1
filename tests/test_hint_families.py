"""Each hint family on its own, on synthetic transforms of REAL reference tensors (the one place where
hand-made candidates are right: these test the hint functions, not that the harness finds a bug).

Many transforms here are used by no catalogue fault (per-frame gains, a chunk order of three, tanh, a
low-pass filter, a delay and a gain, extra frames, a one-half-only error), so the families are shown to be
general. Each case checks the family names the relation with its parameters and that the first line of a
verdict would show it.
"""
from __future__ import annotations

import numpy as np
import pytest

from harness import diagnosis
from harness.hints.base import Case
from harness.hints.layout import length
from harness.trace import Trace

MEL = "cfm/seg_00/mel_out"  # B C T
HIDDEN = "cfm/seg_00/step_00/dit/block_02/out"  # B T C, both halves
WAV = "inputs/speaker_wav"  # B S


@pytest.fixture(scope="module")
def real(tiny_short_run):
    with Trace(tiny_short_run.reference) as ref:
        return {"mel": ref.read(MEL)[:, :, 384:].astype(np.float64), "hidden": ref.read(HIDDEN)[:1].astype(np.float64),
                "wav": ref.read(WAV)[:, :22050].astype(np.float64), "conv": ref.read(
                    "s2mel/length_regulator/prompt/block_1/conv").astype(np.float64)}


def _first(case: Case) -> diagnosis.Hint:
    hints = diagnosis.diagnose(case)
    assert hints and diagnosis.shown(hints) is not None, [h.message for h in hints]
    return hints[0]


def test_affine_gain_and_offset(real):
    mel = real["mel"]
    h = _first(Case(mel, mel / np.log(10), "B C T"))
    assert h.kind == "affine" and "0.4343" in h.message and "log10 where ln belongs" in h.message
    h = _first(Case(mel, mel - 3.6, "B C T"))
    assert h.kind == "affine" and "-3.6" in h.message and "darker/brighter" in h.message


def test_channel_affine(real):
    mel = real["mel"]
    gain = np.linspace(0.5, 1.5, mel.shape[1])[None, :, None]
    h = _first(Case(mel, mel * gain, "B C T"))
    assert h.kind == "channel_affine" and "gain per channel" in h.message and "0.5..1.5" in h.message


def test_position_affine_is_a_transform_no_fault_uses(real):
    hidden = real["hidden"]  # B T C
    fade = np.linspace(1.0, 0.2, hidden.shape[1])[None, :, None]
    h = _first(Case(hidden, hidden * fade, "B T C"))
    assert h.kind == "position_affine" and "per frame" in h.message


def test_elementwise_square_and_tanh(real):
    mel = real["mel"]
    assert _first(Case(mel, mel * mel, "B C T")).kind == "elementwise"
    h = _first(Case(real["hidden"], np.tanh(real["hidden"]), "B T C"))
    assert h.kind == "elementwise" and "tanh" in h.message


def test_transposed_and_reshape(real):
    mel = real["mel"]
    h = _first(Case(mel, np.ascontiguousarray(mel.transpose(0, 2, 1)), "B C T"))
    assert h.kind == "transposed" and "B T C" in h.message
    reshaped = np.ascontiguousarray(mel.transpose(0, 2, 1)).reshape(mel.shape)
    h = _first(Case(mel, reshaped, "B C T"))
    assert h.kind == "transposed" and "reshape" in h.message


def test_sign_flip_and_chunk_orders(real):
    hidden = real["hidden"]
    assert _first(Case(hidden, -hidden, "B T C")).kind == "sign_flip"
    a, b = np.split(hidden, 2, axis=2)
    assert _first(Case(hidden, np.concatenate([b, a], axis=2), "B T C")).kind == "swapped_halves"
    mel = real["mel"][:, :78]  # 78 channels: three chunks of 26
    x, y, z = np.split(mel, 3, axis=1)
    h = _first(Case(mel, np.concatenate([y, z, x], axis=1), "B C T"))
    assert h.kind == "swapped_halves" and "3 chunks" in h.message


def test_time_shift(real):
    mel = real["mel"]
    shifted = np.concatenate([mel[:, :, :3], mel[:, :, :-3]], axis=2)
    h = _first(Case(mel, shifted, "B C T"))
    assert h.kind == "time_shift" and "+3" in h.message


def test_confined_to_the_edges(real):
    mel = real["mel"]
    cand = mel.copy()
    cand[:, :, :4] = 0.0  # a zero-padded start
    h = _first(Case(mel, cand, "B C T"))
    assert h.kind == "confined" and "frames 0..3" in h.message and "the start" in h.message


def test_equals_a_neighbouring_stage_off_by_one(real):
    hidden = real["hidden"]
    previous = hidden * 0.7 + 0.1
    case = Case(hidden, previous.copy(), "B T C", others=lambda: {"step_00/block_01/out": previous})
    h = _first(case)
    assert h.kind == "equals_stage" and "block_01" in h.message


def test_difference_is_a_stage_and_an_integration_step(real):
    x, v = real["mel"], real["mel"][:, ::-1].copy()
    dt = 0.04
    ref, cand = x + dt * v, x - dt * v
    h = _first(Case(ref, cand, "B C T", others=lambda: {"v": v}))
    assert h.kind == "difference_is_stage" and "-0.08" in h.message
    h = _first(Case(ref, cand, "B C T", others=lambda: {"v": v}, step_size=dt))
    assert h.kind == "integration_step" and "backwards" in h.message
    h = _first(Case(ref, x + 2 * dt * v, "B C T", others=lambda: {"v": v}, step_size=dt))
    assert h.kind == "integration_step" and "x + 2 dt v" in h.message


def test_mix_of_two_stages(real):
    hidden = real["hidden"]
    other = np.roll(hidden, 5, axis=1)
    third = hidden[:, ::-1].copy()
    case = Case(hidden, 0.5 * other + 2.0 * third, "B T C", others=lambda: {"a": other, "b": third})
    h = _first(case)
    assert h.kind == "mix" and "= 2 x the reference's b +0.5 x its a" in h.message, h.message


def test_normalisation_over_the_wrong_axes(real):
    conv = real["conv"]  # B C T, a real conv output before a GroupNorm(1)
    g = (conv - conv.mean()) / np.sqrt(conv.var() + 1e-5)
    per_frame = (conv - conv.mean(axis=1, keepdims=True)) / np.sqrt(conv.var(axis=1, keepdims=True) + 1e-5)
    h = _first(Case(g, per_frame, "B C T", stage_input=("conv", conv)))
    assert h.kind == "normalisation" and "standardised over C (" in h.message and "over C and T" in h.message
    rms = conv / np.sqrt((conv ** 2).mean(axis=1, keepdims=True) + 1e-5)  # RMSNorm over channels: no fault uses it
    h = _first(Case(g, rms, "B C T", stage_input=("conv", conv)))
    assert h.kind == "normalisation" and "RMS-scaled over C (" in h.message


def test_audio_delay_gain_and_band(real):
    wav = real["wav"]
    delayed = 0.8 * np.roll(wav, 37, axis=-1)
    h = _first(Case(wav, delayed, "B S", kind="audio", sample_rate=22050))
    assert h.kind == "delay_gain" and "+37 samples" in h.message and "0.8" in h.message
    spec = np.fft.rfft(wav, axis=-1)
    spec[:, spec.shape[-1] * 3 // 4:] = 0  # a low-pass: the error lives in the top quarter of the band
    h = next(h for h in diagnosis.diagnose(Case(wav, np.fft.irfft(spec, wav.shape[-1], axis=-1), "B S",
                                                 kind="audio", sample_rate=22050)) if h.kind == "band")
    assert "8.3-11.0 kHz" in h.message


def test_half_only(real):
    hidden = real["hidden"]
    cand = hidden + np.random.default_rng(0).standard_normal(hidden.shape)
    case = Case(hidden, cand, "B T C", twin=("x (cond)", 1e-7, 1e-6))
    h = next(h for h in diagnosis.diagnose(case) if h.kind == "half_only")
    assert "unconditional" in h.message


def test_length_and_exact(real):
    mel = real["mel"]
    h = length(mel, np.concatenate([mel, mel[:, :, :2]], axis=2), "B C T")
    assert h.kind == "length" and "2 more" in h.message and "overlap agrees" in h.message
    codes = np.arange(20)
    h = _first(Case(codes, np.where(codes == 7, 3, codes), "N", kind="exact"))
    assert h.kind == "exact" and "first at [7]" in h.message


def _interpolated(x: np.ndarray, n: int) -> np.ndarray:
    """Nearest-neighbour resampling along the last axis to n positions (as F.interpolate(mode="nearest"))."""
    return x[..., np.floor(np.arange(n) * (x.shape[-1] / n)).astype(int)]


@pytest.mark.parametrize(("n_ref", "n_cand", "says"), [
    (27, 16, "keeps its input's length where the reference makes 27 = 1.688 x 16 (a factor not applied)"),
    (27, 28, "one more than the reference's 27 = 1.688 x 16: 16 x a factor in [1.688, 1.75) truncated gives 27, "
             "rounded up 28 (the candidate rounds where the reference truncates)"),
    (28, 27, "one fewer than the reference's 28 = 1.75 x 16"),
])
def test_length_read_against_the_declared_input(real, n_ref, n_cand, says):
    """A stage that makes its length from its input's (16 content frames -> n mel frames), made another length."""
    content = real["conv"][:, :, :16]  # B C T, a real 16-frame input
    ref, cand = _interpolated(content, n_ref), _interpolated(content, n_cand)
    case = Case(ref, cand, "B C T", stage_input=("s2mel/x/proj", content.transpose(0, 2, 1)), input_layout="B T C")
    h = _first(case)
    assert h.kind == "length" and "its input s2mel/x/proj has 16 along T: " in h.message and says in h.message, h.message
    assert h.message.startswith(f"candidate has {abs(n_cand - n_ref)} ")  # the plain length hint is kept, extended
    # without a declared input the same lengths are only the plain hint (no claim about a factor)
    plain = diagnosis.diagnose(Case(ref, cand, "B C T"))
    assert plain[0].kind == "length" and "its input" not in plain[0].message
    # an empty input along that axis: no claim about a factor, and no failure
    empty = Case(ref, cand, "B C T", stage_input=("s2mel/x/proj", content[:, :, :0].transpose(0, 2, 1)),
                 input_layout="B T C")
    assert "its input" not in diagnosis.diagnose(empty)[0].message


def test_noise_is_no_known_pattern(real):
    hidden = real["hidden"]
    noise = np.random.default_rng(1).standard_normal(hidden.shape)
    hints = diagnosis.diagnose(Case(hidden, hidden + noise, "B T C"))
    assert diagnosis.shown(hints) is None
    assert diagnosis.first_line(hints).startswith("no known pattern")
