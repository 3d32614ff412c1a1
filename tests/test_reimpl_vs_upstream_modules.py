"""Our reimplementation against unmodified upstream, in process, stage by stage, with no trace files.

Both sides run their parts through the same entry points the capture and the replay use
(`reference_hooks.driver.run_parts`, `reimpl.driver.run_parts`), chained by the one shared glue
(`harness.pipeline.chain`). Upstream runs under the project's own hooks with an in-memory writer, drawing
its own random numbers (the GPT's multinomial noise, the CFM's start noise); ours runs with a tap that keeps
every stage, given upstream's recorded draws. Both sides must name the same stages in the same order, and agree
bit for bit: same torch, same CPU, same operations in the same order (weight norm by torch's own op, the
RoPE table by torch.polar, the float32 islands of RMSNorm, RoPE and the time sinusoid).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.configs import TINY
from harness.detail import Detail

CFG = TINY.with_(steps=3, gpt__max_tokens=6)
PROMPT_FRAMES, SPEAKER_FRAMES = 30, 40


def _weights() -> dict:
    from reference_hooks import driver

    return {part: driver.seeded_weights(CFG, part, seed=3) for part in driver.SEEDED}


def _given(dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The pipeline's inputs (the default text: two segments) and the CFM's start noise of each (random weights
    never draw the stop code: every segment has max_tokens codes). The GPT's draws are upstream's own."""
    from harness.stages.inputs import DEFAULT_TEXT

    g = torch.Generator().manual_seed(1)
    c = CFG.inputs.content_channels
    spk = torch.randn(1, SPEAKER_FRAMES, CFG.inputs.semantic_channels, generator=g)
    x = {
        "inputs/text": torch.tensor([[ord(ch) for ch in DEFAULT_TEXT]], dtype=torch.int32),
        "inputs/prompt_mel": torch.randn(1, CFG.cfm.in_channels, PROMPT_FRAMES, generator=g),
        "inputs/prompt_content": torch.randn(1, 12, c, generator=g),
        "inputs/style": torch.randn(1, CFG.inputs.style_dim, generator=g),
        "inputs/spk_cond": spk,
        "inputs/emo_cond": spk + 0.03 * torch.randn(spk.shape, generator=g),
    }
    total = PROMPT_FRAMES + CFG.s2mel.target_frames(CFG.gpt.max_tokens)
    for seg in range(2):
        x[f"cfm/seg_{seg:02d}/noise"] = torch.randn(1, CFG.cfm.in_channels, total, generator=g)
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in x.items()}


def _upstream(weights: dict, dtype: torch.dtype) -> list[tuple[str, np.ndarray]]:
    from reference_hooks import driver
    from reference_hooks.recorder import MemoryWriter, Recorder
    from reference_hooks.upstream import load_upstream

    load_upstream()
    writer = MemoryWriter()
    recorder = Recorder(writer, Detail("full"))
    torch.manual_seed(0)  # upstream draws the GPT's and the CFM's noise from the global generator
    driver.run_parts(driver.build_parts(CFG, weights, dtype), CFG, _given(dtype), recorder)
    assert recorder.checks and all(v.startswith("ok") for v in recorder.checks.values()), recorder.checks
    return writer.items


def _ours(weights: dict, dtype: torch.dtype, draws: dict[str, torch.Tensor]) -> list[tuple[str, np.ndarray]]:
    from reimpl import driver
    from reimpl.tap import MemoryTap

    tap = MemoryTap()
    driver.run_parts(driver.load_part_params(weights, dtype), CFG, {**_given(dtype), **draws}, tap)
    return tap.items


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_every_stage_is_bit_identical_to_upstream(dtype):
    from harness import stages

    weights = _weights()
    upstream = _upstream(weights, dtype)
    draws = {p: torch.from_numpy(v) for p, v in upstream if stages.find_spec(p).draw and p.startswith("gpt/")}
    ours = _ours(weights, dtype, draws)

    assert [p for p, _ in ours] == [p for p, _ in upstream]
    assert len(ours) > 150 and any(p.endswith("/final_layer/modulated") for p, _ in ours)
    assert {p for p, _ in ours if p.endswith("/codes")} == {"gpt/seg_00/codes", "gpt/seg_01/codes"}
    assert any(p.endswith("/s_infer") for p, _ in ours) and any(p.startswith("gpt/emo_base/") for p, _ in ours)
    for (path, mine), (_, theirs) in zip(ours, upstream):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape, path
        assert np.array_equal(mine, theirs), (path, float(np.abs(mine.astype(float) - theirs.astype(float)).max()))
