"""Write what a port needs to run a part (or the whole pipeline) on a reference's exact inputs.

For each part, the boundary stages it consumes from earlier parts, its recorded random draws and the
stages it declares a port needs (the CFM's schedule, its condition), plus extras a part derives (the
CFM's per-step dt and the t upstream fed), as float32 safetensors and npz (same names), and inputs.json
describing each tensor: the stage it comes from, its layout, shape, meaning, and which parts consume it.
A port that injects the recorded draws can be compared to float32 noise level; one that draws its own
cannot be compared at all. The names are the stage paths with '/' replaced by '.'.

  harness export-inputs ref.h5 -o ref-inputs/              every part's inputs
  harness export-inputs ref.h5 -o cfm-inputs/ --part cfm   what the CFM alone needs
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from harness import stages
from harness.commands.common import PORTER_PATH
from harness.errors import UserError
from harness.files import atomic, write_text
from harness.pipeline import boundary_inputs
from harness.trace import Trace


def add_parser(sub) -> None:
    p = sub.add_parser("export-inputs", help="write a reference trace's inputs for a port to replay",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PORTER_PATH)
    p.add_argument("trace", type=Path, help="a reference trace from `harness capture`")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder to write into")
    p.add_argument("--part", default=None, help=f"one part: {', '.join(p.name for p in stages.PARTS)}")
    p.set_defaults(run=run)


def _name(path: str) -> str:
    return path.replace("/", ".")


def collect(ref: Trace, parts) -> tuple[dict[str, np.ndarray], dict]:
    tensors: dict[str, np.ndarray] = {}
    described: dict[str, dict] = {}
    paths = [s.path for s in ref.stages()]
    for part in parts:
        wanted = boundary_inputs(part, paths) + [p for p in paths if any(
            stages.StageSpec(t, "").regex.match(p) for t in part.exports)]
        for path in wanted:
            name = _name(path)
            if name not in tensors:
                data = ref.read(path)
                tensors[name] = np.ascontiguousarray(data, dtype=np.float32 if data.dtype.kind == "f" else data.dtype)
                spec = stages.spec_for(path)
                described[name] = {"stage": path, "layout": spec.layout, "shape": list(data.shape),
                                   "dtype": str(tensors[name].dtype), "meaning": spec.doc, "parts": []}
            described[name]["parts"].append(part.name)
        if part.extras is not None:
            for name, (value, meaning) in part.extras(lambda p: ref.read(p) if p in ref else None).items():
                key = f"{part.name}.{name}"
                tensors[key] = np.ascontiguousarray(value)
                described[key] = {"layout": "N", "shape": list(value.shape), "dtype": str(value.dtype),
                                  "meaning": meaning, "parts": [part.name]}
    cfg = ref.provenance.get("config_json") or {}
    meta = {"format": "indextts-parity-inputs", "version": 2, "reference": str(ref.path), "tensors": described,
            "config": cfg, "provenance": ref.provenance}
    return tensors, meta


def run(args: argparse.Namespace) -> int:
    from safetensors.numpy import save_file

    from harness.files import refuse_overlap

    parts = stages.PARTS if args.part is None else (stages.part(args.part),)
    out: Path = args.output
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out} exists and is not a folder")
    refuse_overlap({f"-o {out}/{name}": out / name for name in ("inputs.safetensors", "inputs.npz", "inputs.json")},
                   {"trace": args.trace})
    with Trace(args.trace) as ref:
        tensors, meta = collect(ref, parts)
    if not tensors:
        raise UserError(f"{args.trace} holds none of the stages {args.part or 'any part'} consumes")
    out.mkdir(parents=True, exist_ok=True)
    with atomic(out / "inputs.safetensors") as tmp:
        save_file(tensors, str(tmp))
    with atomic(out / "inputs.npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **tensors)
    write_text(json.dumps(meta, indent=1, default=str) + "\n", out / "inputs.json")
    print(f"wrote {out / 'inputs.safetensors'}, {out / 'inputs.npz'} and {out / 'inputs.json'} "
          f"({len(tensors)} tensors for {', '.join(p.name for p in parts)})")
    return 0
