"""Write everything a port needs to replay a reference trace exactly: recorded noise, prompt mel,
content features, style vector, the length-regulated condition, the t schedule upstream fed the DiT,
and the configuration, as safetensors and npz (same names), plus inputs.json describing each tensor.

Names, dtypes (float32) and layouts:
  noise            [1, 80, T]       B C T   start noise z (times temperature); x_init is it with prompt frames zeroed
  prompt_mel       [1, 80, Tp]      B C T   speaker mel from upstream's mel function (the CFM prompt)
  prompt_content   [1, Np, C_in]    B T C   speaker content features (length regulator input, prompt half)
  target_content   [1, Nt, C_in]    B T C   content features of the text (length regulator input, target half)
  style            [1, 192]         B C     speaker style vector
  mu               [1, T, C]        B T C   cfm/mu: concat of both length-regulator outputs (to test the CFM alone)
  t_schedule       [steps]          -       the t upstream fed the DiT at each step (accumulated t + dt, float32)
  t_span           [steps + 1]      -       torch.linspace(0, 1, steps + 1), the nominal schedule
  speaker_wav      [1, S]           B S     the speaker recording at the mel rate
A port that injects this noise can be compared to float32 noise level; without it, not at all.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from harness.errors import UserError
from harness.summary import write_text
from harness.trace import Trace

SOURCES = {
    "noise": ("inputs/noise", "B C T"), "prompt_mel": ("inputs/prompt_mel", "B C T"),
    "prompt_content": ("inputs/prompt_content", "B T C"), "target_content": ("inputs/target_content", "B T C"),
    "style": ("inputs/style", "B C"), "mu": ("cfm/mu", "B T C"), "speaker_wav": ("inputs/speaker_wav", "B S"),
}


def add_parser(sub) -> None:
    p = sub.add_parser("export-inputs", help="write a reference trace's inputs for a port to replay",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trace", type=Path, help="a reference trace from `harness capture`")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder to write into")
    p.set_defaults(run=run)


def collect(ref: Trace) -> tuple[dict[str, np.ndarray], dict]:
    tensors: dict[str, np.ndarray] = {}
    described = {}
    for name, (path, layout) in SOURCES.items():
        if path not in ref:
            raise UserError(f"{ref.path}: no {path}; is this a reference trace from `harness capture`?")
        tensors[name] = np.ascontiguousarray(ref.read(path), dtype=np.float32)
        described[name] = {"stage": path, "layout": layout, "shape": list(tensors[name].shape), "dtype": "float32"}
    cfg = ref.provenance.get("config_json") or {}
    steps = int(cfg.get("steps", 0))
    t_fed = [float(ref.read(f"cfm/step_{k:02d}/dit/in/t")[0]) for k in range(steps) if f"cfm/step_{k:02d}/dit/in/t" in ref]
    tensors["t_schedule"] = np.asarray(t_fed, dtype=np.float32)
    tensors["t_span"] = np.linspace(0, 1, steps + 1, dtype=np.float32)
    described["t_schedule"] = {"layout": "-", "shape": [len(t_fed)], "dtype": "float32",
                               "meaning": "t fed to the DiT at each step (upstream accumulates t + dt)"}
    described["t_span"] = {"layout": "-", "shape": [steps + 1], "dtype": "float32", "meaning": "linspace(0, 1, steps+1)"}
    meta = {
        "format": "indextts-parity-inputs", "version": 1, "reference": str(ref.path), "tensors": described,
        "config": cfg, "steps": steps, "cfg_rate": cfg.get("cfg_rate"), "temperature": cfg.get("temperature"),
        "prompt_frames": int(tensors["prompt_mel"].shape[-1]), "total_frames": int(tensors["noise"].shape[-1]),
        "provenance": ref.provenance,
    }
    return tensors, meta


def run(args: argparse.Namespace) -> int:
    from safetensors.numpy import save_file

    with Trace(args.trace) as ref:
        tensors, meta = collect(ref)
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "inputs.safetensors.partial"
    save_file(tensors, str(tmp))
    tmp.replace(out / "inputs.safetensors")
    with open(out / "inputs.npz.partial", "wb") as f:
        np.savez(f, **tensors)
    (out / "inputs.npz.partial").replace(out / "inputs.npz")
    write_text(json.dumps(meta, indent=1, default=str) + "\n", out / "inputs.json")
    print(f"wrote {out / 'inputs.safetensors'}, {out / 'inputs.npz'} and {out / 'inputs.json'} "
          f"({len(tensors)} tensors, {meta['steps']} steps, {meta['total_frames']} frames)")
    return 0
