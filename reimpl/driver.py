"""Our side's driver: the parts of `reimpl/` chained as infer_v2 chains upstream's, replaying a reference.

Free-running, our parts run from the reference's recorded inputs and draws; teacher-forced, every stage is
fed the reference's recorded value of the stage before it (reimpl/tap.py). With `part`, one part runs
alone, its boundary inputs taken from the reference.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

from harness import stages
from harness.configs import PipelineConfig
from harness.detail import Detail
from harness.errors import UserError
from harness.pipeline import boundary_inputs, chain
from harness.trace import Trace, TraceWriter
from reimpl import cfm, frontend, gpt, inputs, s2mel, semantic, style, vocoder
from reimpl.faults import enabled
from reimpl.params import load_params
from reimpl.tap import Tap, no_tap

RUNNERS = {"inputs": inputs.run, "frontend": frontend.run, "style": style.run, "semantic": semantic.run,
           "gpt": gpt.run, "s2mel": s2mel.run, "cfm": cfm.run, "vocoder": vocoder.run}
#: parts that load their checkpoint their own way (default: reimpl.params.load_params, weight norm folded)
LOADERS = {"vocoder": vocoder.load_params}


def config_of(ref: Trace) -> PipelineConfig:
    if "config_json" not in ref.provenance:
        raise UserError(f"{ref.path}: provenance has no pipeline configuration; capture it again")
    return PipelineConfig.from_dict(ref.provenance["config_json"])


def load_part_params(weights: dict[str, dict[str, np.ndarray]], dtype: torch.dtype) -> dict[str, dict]:
    return {part: LOADERS.get(part, load_params)(w, dtype=dtype) for part, w in weights.items()}


class OnePartAtATime:
    """Our parameters of each part, loaded when the part runs and dropped once it has run. At float32 they are
    views of the checkpoint's arrays; in float64 (the noise floors' oracle) copies, which at real size would
    not all fit in memory at once."""

    def __init__(self, weights: dict[str, dict[str, np.ndarray]], dtype: torch.dtype):
        self.weights, self.dtype = weights, dtype

    def get(self, part: str, default=None):
        if part not in self.weights:
            return default
        return LOADERS.get(part, load_params)(self.weights[part], dtype=self.dtype)


def run_parts(params: dict[str, dict], config: PipelineConfig, given: dict[str, torch.Tensor], tap,
              parts=stages.PARTS) -> dict[str, torch.Tensor]:
    """Chain our parts (harness/pipeline.py) from `given`: recorded inputs, draws, or a part's boundary."""

    def run_part(part, part_inputs):
        return RUNNERS[part.name](params.get(part.name), config.part(part.name), part_inputs, tap)

    return chain(parts, run_part, given)


def _given(ref: Trace, parts, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    if len(parts) == len(stages.PARTS):
        paths = [s.path for s in ref.stages() if stages.is_given(s.path)]
    else:
        paths = boundary_inputs(parts[0], [s.path for s in ref.stages()])
    out = {}
    for p in paths:
        t = torch.from_numpy(ref.read(p))
        out[p] = t.to(dtype) if t.is_floating_point() else t
    return out


def replay(ref: Trace, weights: dict[str, dict[str, np.ndarray]], out: Path, *, teacher_forced: bool = False,
           dtype: torch.dtype = torch.float32, faults: tuple[str, ...] = (), part: str | None = None) -> Path:
    """Run our pipeline (or one part) on the reference's recorded inputs; write a trace of the same schema."""
    config = config_of(ref)
    parts = stages.PARTS if part is None else (stages.part(part),)
    given = _given(ref, parts, dtype)
    if not given and part is not None:
        raise UserError(f"{ref.path}: holds none of the stages part {part} consumes")
    prov = {
        "implementation": "reimpl", "mode": "teacher-forced" if teacher_forced else "free-running",
        "part": part or "all", "replayed_from": str(ref.path),
        **{k: ref.provenance.get(k) for k in ("reference_version", "reference_location", "config", "config_json",
                                              "config_digest", "checkpoint", "seed", "detail", "inputs_digest")},
        "torch_version": torch.__version__, "dtype": str(dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(), "faults": list(faults), "command": " ".join(sys.argv), "pid": os.getpid(),
    }
    detail = Detail.from_json(ref.provenance.get("detail"))
    params = OnePartAtATime({p.name: weights[p.name] for p in parts if p.name in weights}, dtype)
    with TraceWriter(out, prov) as writer, enabled(faults), torch.inference_mode():
        run_parts(params, config, given, Tap(writer, ref if teacher_forced else None, detail), parts)
    return out


def replay_untraced(ref: Trace, weights: dict[str, dict[str, np.ndarray]], dtype: torch.dtype = torch.float32):
    """Our pipeline with nothing recorded: what the benchmark times against plain upstream."""
    parts = stages.PARTS
    with torch.inference_mode():
        return run_parts(load_part_params(weights, dtype), config_of(ref), _given(ref, parts, dtype), no_tap, parts)
