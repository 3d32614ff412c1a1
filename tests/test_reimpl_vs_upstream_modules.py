"""Our reimplementation against unmodified upstream, in process, stage by stage, with no trace files.

Upstream runs under the project's own hooks (reference_hooks.capture) with an in-memory writer; ours
runs with a tap that keeps every stage. Both sides must name the same stages in the same order, and
agree bit for bit: same torch, same CPU, same operations in the same order (weight norm by torch's
own op, the RoPE table by torch.polar, the float32 islands of RMSNorm, RoPE and the time sinusoid).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.configs import TINY

CFG = TINY.with_(steps=3)
PROMPT_FRAMES, TOTAL_FRAMES, CODES = 30, 50, 12


class _MemoryWriter:
    """Enough of TraceWriter for the hooks: every write kept in order."""

    def __init__(self):
        self.items: list[tuple[str, np.ndarray]] = []

    def write(self, path, array, dtype=None, note=""):
        self.items.append((path, np.array(array)))

    def flush(self):
        pass


def _upstream_model(dtype: torch.dtype):
    from reference_hooks.model import build_model

    model = build_model(CFG)
    torch.manual_seed(0)
    for name, p in model.models.named_parameters():
        is_norm_gain = p.dim() == 1 and name.endswith(".weight")  # RMSNorm and GroupNorm gains
        p.data.normal_(1.0, 0.1) if is_norm_gain else p.data.normal_(0.0, 0.2)
    weights = {k: v.clone() for k, v in model.models.state_dict().items()}
    model.models.to(dtype)
    model.models["cfm"].estimator.setup_caches(max_batch_size=1, max_seq_length=8192)
    return model, weights


def _inputs(dtype: torch.dtype) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "prompt_content": torch.randn(1, CODES, CFG.lr_in_channels, generator=g).to(dtype),
        "target_content": torch.randn(1, CODES + 5, CFG.lr_in_channels, generator=g).to(dtype),
        "prompt_mel": torch.randn(1, CFG.in_channels, PROMPT_FRAMES, generator=g).to(dtype),
        "style": torch.randn(1, CFG.style_dim, generator=g).to(dtype),
        "noise": torch.randn(1, CFG.in_channels, TOTAL_FRAMES, generator=g).to(dtype),
    }


def _run_upstream(model, x: dict, dtype: torch.dtype) -> list[tuple[str, np.ndarray]]:
    from reference_hooks.capture import Position, Recorder, hooked

    # the schedule as reference_hooks/driver.py makes it: float32, or float64 for the float64 run
    t_span = torch.linspace(0, 1, CFG.steps + 1, dtype=torch.float64 if dtype == torch.float64 else None)
    pos = Position(n_steps=CFG.steps, cfg_rate=CFG.cfg_rate, prompt_len=PROMPT_FRAMES, t_span=t_span)
    writer = _MemoryWriter()
    lr, cfm = model.models["length_regulator"], model.models["cfm"]
    with torch.inference_mode(), hooked(model, Recorder(writer, pos)):
        pos.half = "prompt"
        prompt_cond = lr(x["prompt_content"], ylens=torch.LongTensor([PROMPT_FRAMES]))[0]
        pos.half = "target"
        cond = lr(x["target_content"], ylens=torch.LongTensor([TOTAL_FRAMES - PROMPT_FRAMES]))[0]
        mu = torch.cat([prompt_cond, cond], dim=1)
        mel = cfm.solve_euler(x["noise"].clone(), torch.LongTensor([TOTAL_FRAMES]), x["prompt_mel"], mu, x["style"],
                              None, t_span, CFG.cfg_rate)
    return writer.items + [("cfm/mel_out", mel.numpy())]


def _run_ours(weights: dict, x: dict, dtype: torch.dtype) -> list[tuple[str, np.ndarray]]:
    from reimpl.cfm import run_cfm
    from reimpl.length_regulator import run_length_regulator
    from reimpl.params import load_params

    seen: list[tuple[str, np.ndarray]] = []

    def tap(path: str, value: torch.Tensor) -> torch.Tensor:
        seen.append((path, value.detach().numpy().copy()))
        return value

    p = load_params(weights, dtype=dtype)
    with torch.inference_mode():
        prompt_cond = run_length_regulator(p, CFG, x["prompt_content"], PROMPT_FRAMES, "prompt", tap)
        cond = run_length_regulator(p, CFG, x["target_content"], TOTAL_FRAMES - PROMPT_FRAMES, "target", tap)
        run_cfm(p, CFG, torch.cat([prompt_cond, cond], dim=1), x["prompt_mel"], x["style"], x["noise"], tap)
    return seen


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_every_stage_is_bit_identical_to_upstream(dtype):
    model, weights = _upstream_model(dtype)
    x = _inputs(dtype)
    upstream, ours = _run_upstream(model, x, dtype), _run_ours(weights, x, dtype)

    assert [p for p, _ in ours] == [p for p, _ in upstream]
    for (path, mine), (_, theirs) in zip(ours, upstream):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape, path
        assert np.array_equal(mine, theirs), (path, float(np.abs(mine - theirs).max()))
