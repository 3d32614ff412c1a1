"""Our reimplementation against unmodified upstream, in process, stage by stage, with no trace files.

Both sides run their parts through the same entry points the capture and the replay use
(`reference_hooks.driver.run_parts`, `reimpl.driver.run_parts`), chained by the one shared glue
(`harness.pipeline.chain`). Upstream runs under the project's own hooks with an in-memory writer; ours
runs with a tap that keeps every stage. Both sides must name the same stages in the same order, and agree
bit for bit: same torch, same CPU, same operations in the same order (weight norm by torch's own op, the
RoPE table by torch.polar, the float32 islands of RMSNorm, RoPE and the time sinusoid; in the front end the
resampler's float32 phase term, librosa's doubly rounded float32 mel basis, the float32 Kaldi mel banks).
The speaker recording is the fixture's (22050 Hz, mono) and the same made stereo at 32 kHz, which sends the
load through channel mixing and libsoxr.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harness.configs import TINY
from harness.detail import Detail

CFG = TINY.with_(steps=3)
CODES = 17
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "speaker.wav"


def _weights() -> dict:
    from reference_hooks import driver

    return {part: driver.seeded_weights(CFG, part, seed=3) for part in driver.SEEDED}


def _recording(kind: str) -> tuple[np.ndarray, int]:
    """1.2 s of the fixture as the file holds it (mono, 22050 Hz), or made stereo and declared 32 kHz, so
    that loading mixes the channels and resamples with libsoxr as it does for such a file."""
    import soundfile

    y, rate = soundfile.read(FIXTURE, dtype="float32", always_2d=True)
    clip = np.ascontiguousarray(y[20000 : 20000 + int(1.2 * rate), 0])
    if kind == "mono-22050":
        return clip[None], rate
    return np.stack([clip, 0.5 * np.roll(clip, 300)]), 32000


def _given(kind: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    y, rate = _recording(kind)
    g = torch.Generator().manual_seed(1)
    c = CFG.inputs.content_channels
    frames = CFG.frontend.loaded_samples(y.shape[1], rate) // CFG.frontend.hop_length
    total = frames + CFG.s2mel.target_frames(CODES)
    x = {
        "inputs/speaker_wav": torch.from_numpy(y),
        "inputs/prompt_content": torch.randn(1, 40, c, generator=g),
        "inputs/seg_00/target_content": torch.randn(1, CODES, c, generator=g),
        "cfm/seg_00/noise": torch.randn(1, CFG.cfm.in_channels, total, generator=g),
    }
    return {**{k: v.to(dtype) for k, v in x.items()}, "inputs/speaker_rate": torch.tensor([rate])}


def _upstream(weights: dict, given: dict, dtype: torch.dtype) -> list[tuple[str, np.ndarray]]:
    from reference_hooks import driver
    from reference_hooks.recorder import MemoryWriter, Recorder
    from reference_hooks.upstream import load_upstream

    load_upstream()
    writer = MemoryWriter()
    recorder = Recorder(writer, Detail("full"))
    driver.run_parts(driver.build_parts(CFG, weights, dtype), CFG, dict(given), recorder)
    assert recorder.checks and all(v.startswith("ok") for v in recorder.checks.values()), recorder.checks
    return writer.items


def _ours(weights: dict, given: dict, dtype: torch.dtype) -> list[tuple[str, np.ndarray]]:
    from reimpl import driver
    from reimpl.tap import MemoryTap

    tap = MemoryTap()
    driver.run_parts(driver.load_part_params(weights, dtype), CFG, dict(given), tap)
    return tap.items


@pytest.mark.parametrize("kind", ["mono-22050", "stereo-32000"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_every_stage_is_bit_identical_to_upstream(dtype, kind):
    weights = _weights()
    given = _given(kind, dtype)
    upstream, ours = _upstream(weights, given, dtype), _ours(weights, given, dtype)

    assert [p for p, _ in ours] == [p for p, _ in upstream]
    paths = [p for p, _ in ours]
    assert len(ours) > 240 and "frontend/mel/filtered" in paths and "style/campplus/block_02/layer_15" in paths
    assert any(p.endswith("/final_layer/modulated") for p in paths)
    for (path, mine), (_, theirs) in zip(ours, upstream):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape, path
        assert np.array_equal(mine, theirs), (path, float(np.abs(mine - theirs).max()))
