"""Replay a reference trace's inputs through our reimplementation, free-running or teacher-forced."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

from harness.configs import S2MelConfig
from harness.errors import UserError
from harness.trace import Trace, TraceWriter
from reimpl.cfm import run_cfm
from reimpl import faults
from reimpl.faults import enabled
from reimpl.length_regulator import run_length_regulator
from reimpl.params import load_params
from reimpl.tap import Tap, no_tap

INPUTS = ("inputs/speaker_wav", "inputs/prompt_mel", "inputs/prompt_content", "inputs/target_content",
          "inputs/style", "inputs/noise")


def config_of(ref: Trace) -> S2MelConfig:
    try:
        return S2MelConfig.from_dict(ref.provenance["config_json"])
    except (KeyError, TypeError) as exc:
        raise UserError(f"{ref.path}: provenance has no usable config ({exc})") from None



def replay(ref: Trace, weights: dict[str, np.ndarray], out: Path, *, teacher_forced: bool = False,
           dtype: torch.dtype = torch.float32, faults: tuple[str, ...] = ()) -> Path:
    """Run our s2mel on the reference's recorded inputs and noise; write a trace of the same schema."""
    cfg = config_of(ref)
    missing = [p for p in INPUTS if p not in ref]
    if missing:
        raise UserError(f"{ref.path}: cannot replay, the trace lacks {', '.join(missing)}")
    params = load_params(weights, dtype=dtype)
    prov = {
        "implementation": "reimpl",
        "mode": "teacher-forced" if teacher_forced else "free-running",
        "replayed_from": str(ref.path),
        "reference_version": ref.provenance.get("reference_version"),
        "reference_location": ref.provenance.get("reference_location"),
        "torch_version": torch.__version__,
        "config": cfg.name,
        "config_json": cfg.to_dict(),
        "config_digest": cfg.digest(),
        "checkpoint": ref.provenance.get("checkpoint"),
        "seed": ref.provenance.get("seed"),
        "dtype": str(dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(),
        "faults": list(faults),
        "command": " ".join(sys.argv),
        "pid": os.getpid(),
    }
    with TraceWriter(out, prov) as writer:
        for path in INPUTS:
            writer.write(path, ref.read(path))
        with enabled(faults):
            run_s2mel(ref, params, cfg, Tap(writer, forced_from=ref if teacher_forced else None), dtype)
    return out


def run_s2mel(ref: Trace, params: dict, cfg: S2MelConfig, tap, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The glue of infer_v2 between our modules: both length-regulator halves, then the CFM."""

    def given(path: str) -> torch.Tensor:
        return torch.from_numpy(ref.read(path)).to(dtype)

    with torch.inference_mode():
        prompt_mel = given("inputs/prompt_mel")
        tp = prompt_mel.shape[-1]
        tt = cfg.target_frames(ref.info("inputs/target_content").shape[1])
        prompt_cond = run_length_regulator(params, cfg, given("inputs/prompt_content"), tp, "prompt", tap)
        cond = run_length_regulator(params, cfg, given("inputs/target_content"), tt, "target", tap)
        mu = torch.cat([prompt_cond, cond], dim=1)
        mel = run_cfm(params, cfg, mu, prompt_mel, given("inputs/style"), given("inputs/noise"), tap)
        # infer_v2 hands BigVGAN the generated frames only, as B C T
        vocoder_in = mel[:, :, tp:]
        if faults.active("vocoder.mel_btc"):
            vocoder_in = vocoder_in.transpose(1, 2)  # the port's bug: time-major into the vocoder
        return tap("vocoder/bigvgan_in", vocoder_in)


def replay_untraced(ref: Trace, weights: dict[str, np.ndarray], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Our pipeline with nothing recorded: what the benchmark times against plain upstream."""
    return run_s2mel(ref, load_params(weights, dtype=dtype), config_of(ref), no_tap, dtype)
