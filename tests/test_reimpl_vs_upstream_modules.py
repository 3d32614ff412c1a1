"""Our reimplementation against unmodified upstream, in process, stage by stage, with no trace files.

Both sides run their parts through the same entry points the capture and the replay use
(`reference_hooks.driver.run_parts`, `reimpl.driver.run_parts`), chained by the one shared glue
(`harness.pipeline.chain`). Upstream runs under the project's own hooks with an in-memory writer, drawing
its own random numbers (the GPT's multinomial noise, the CFM's start noise); ours runs with a tap that keeps
every stage, given upstream's recorded draws. Both sides must name the same stages in the same order, and agree
bit for bit: same torch, same CPU, same operations in the same order (weight norm by torch's own op, the
RoPE table by torch.polar, the float32 islands of RMSNorm, RoPE and the time sinusoid; in the front end the
resampler's float32 phase term, librosa's doubly rounded float32 mel basis, the float32 Kaldi mel banks).
The speaker recording is the fixture's (22050 Hz, mono; its length gives an odd count of w2v-bert feature frames,
so the extractor's padding and mask run) and the same made stereo at 32 kHz (an even count), which sends the
load through channel mixing and libsoxr).
Two text segments, so the vocoder's join (200 ms of zeros between segment waves) runs too.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.configs import TINY
from harness.detail import Detail

CFG = TINY.with_(steps=3, gpt__max_tokens=6)
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "speaker.wav"


@functools.cache
def _weights() -> dict:
    from reference_hooks import driver

    return {part: driver.seeded_weights(CFG, part, seed=3) for part in driver.SEEDED}


def _recording(kind: str) -> tuple[np.ndarray, int]:
    """1.2 s of the fixture as the file holds it (mono, 22050 Hz; 26598 samples: 19300 at 16 kHz, 119 feature
    frames), or made stereo and declared 32 kHz (118 frames), so that loading mixes the channels and resamples
    with libsoxr as it does for such a file."""
    import soundfile

    y, rate = soundfile.read(FIXTURE, dtype="float32", always_2d=True)
    if kind == "mono-22050":
        return np.ascontiguousarray(y[20000 : 20000 + 26598, 0])[None], rate
    clip = np.ascontiguousarray(y[20000 : 20000 + int(1.2 * 32000), 0])  # 1.2 s once declared 32 kHz
    return np.stack([clip, 0.5 * np.roll(clip, 300)]), 32000


def _given(kind: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The pipeline's inputs (the default text: two segments, so the vocoder's join runs) and the CFM's start
    noise of each (random weights never draw the stop code: every segment has max_tokens codes). The GPT's
    draws are upstream's own."""
    from harness.stages.inputs import DEFAULT_TEXT
    from reimpl.s2mel.target_length import target_frames

    y, rate = _recording(kind)
    g = torch.Generator().manual_seed(1)
    frames = CFG.frontend.loaded_samples(y.shape[1], rate) // CFG.frontend.hop_length
    x = {
        "inputs/text": torch.tensor([[ord(ch) for ch in DEFAULT_TEXT]], dtype=torch.int32),
        "inputs/speaker_wav": torch.from_numpy(y),
    }
    total = frames + target_frames(CFG.gpt.max_tokens, CFG.s2mel.code_to_frame)
    for seg in range(2):
        x[f"cfm/seg_{seg:02d}/noise"] = torch.randn(1, CFG.cfm.in_channels, total, generator=g)
    return {**{k: v.to(dtype) if v.is_floating_point() else v for k, v in x.items()},
            "inputs/speaker_rate": torch.tensor([rate])}


def _upstream(weights: dict, given: dict, dtype: torch.dtype) -> list[tuple[str, np.ndarray]]:
    from reference_hooks import driver
    from reference_hooks.recorder import MemoryWriter, Recorder
    from reference_hooks.upstream import load_upstream

    load_upstream()
    writer = MemoryWriter()
    recorder = Recorder(writer, Detail("full"))
    torch.manual_seed(0)  # upstream draws the GPT's and the CFM's noise from the global generator
    driver.run_parts(driver.build_parts(CFG, weights, dtype), CFG, dict(given), recorder)
    assert recorder.checks and all(v.startswith("ok") for v in recorder.checks.values()), recorder.checks
    return writer.items


def _ours(weights: dict, given: dict, dtype: torch.dtype, draws: dict[str, torch.Tensor]
          ) -> list[tuple[str, np.ndarray]]:
    from reimpl import driver
    from reimpl.tap import MemoryTap

    tap = MemoryTap()
    driver.run_parts(driver.load_part_params(weights, dtype), CFG, {**given, **draws}, tap)
    return tap.items


@pytest.mark.parametrize("kind", ["mono-22050", "stereo-32000"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_every_stage_is_bit_identical_to_upstream(dtype, kind):
    from harness import stages

    weights = _weights()
    given = _given(kind, dtype)
    upstream = _upstream(weights, given, dtype)
    draws = {p: torch.from_numpy(v) for p, v in upstream if stages.find_spec(p).draw and p.startswith("gpt/")}
    ours = _ours(weights, given, dtype, draws)

    assert [p for p, _ in ours] == [p for p, _ in upstream]
    paths = [p for p, _ in ours]
    assert len(ours) > 240 and "frontend/mel/filtered" in paths and "style/campplus/block_02/layer_15" in paths
    # the semantic part: both passes through every w2v layer, the codec's codes and margin
    assert {"semantic/fbank", "semantic/w2v/layer_00/attn/pos_bias", "semantic/w2v/layer_17/out", "semantic/spk_cond",
            "semantic/codec/codes", "semantic/codec/margin", "semantic/codec/emb", "semantic/emo/cond"} <= set(paths)
    odd = kind == "mono-22050"  # an odd frame count ends in a masked stacked frame
    assert dict(ours)["semantic/attention_mask"][0, -1] == (0 if odd else 1)
    assert any(p.endswith("/final_layer/modulated") for p in paths)
    assert {p for p in paths if p.endswith("/codes") and p.startswith("gpt/")} == {"gpt/seg_00/codes", "gpt/seg_01/codes"}
    assert any(p.endswith("/s_infer") for p in paths) and any(p.startswith("gpt/emo_base/") for p in paths)
    # the vocoder of both segments, down to the internals of its first and last AMP block, then the join
    for seg in ("seg_00", "seg_01"):
        assert {f"vocoder/{seg}/resblock_00/layer_2/act2/snake", f"vocoder/{seg}/resblock_17/layer_0/conv1",
                f"vocoder/{seg}/amp_05", f"vocoder/{seg}/wav"} <= set(paths)
    assert paths[-2:] == ["vocoder/wav", "vocoder/int16"]
    for (path, mine), (_, theirs) in zip(ours, upstream):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape, path
        assert np.array_equal(mine, theirs), (path, float(np.abs(mine.astype(float) - theirs.astype(float)).max()))
    by = dict(ours)
    segs = [by[f"vocoder/seg_{k:02d}/wav"] for k in range(2)]
    gap = CFG.vocoder.silence_samples
    assert by["vocoder/wav"].shape[1] == segs[0].shape[1] + gap + segs[1].shape[1]
    assert not by["vocoder/wav"][:, segs[0].shape[1]: segs[0].shape[1] + gap].any()


def test_our_antialiasing_filter_equals_every_upstream_buffer():
    """reimpl rebuilds the kaiser-sinc low-pass (used when a checkpoint lacks the buffers) bit for bit."""
    from reference_hooks import vocoder
    from reference_hooks.upstream import load_upstream
    from reimpl.vocoder.activations import kaiser_sinc_lowpass

    load_upstream()
    buffers = {k: v for k, v in vocoder.unbuilt_module(CFG.vocoder).state_dict().items() if k.endswith(".filter")}
    assert len(buffers) == 2 * (6 * CFG.vocoder.n_resblocks + 1)  # up and down, 6 activations per block, + act_post
    ours = kaiser_sinc_lowpass()
    for name, buffer in buffers.items():
        assert buffer.dtype == ours.dtype and torch.equal(buffer, ours), name
