"""Write the weights a reference trace was captured with, for a port to load: the very tensors upstream ran.

The embedded default runs on seeded weights (generated on first use, cached), so a port cannot load "the
checkpoint": it loads these. One safetensors file per part, under upstream's own parameter names (weight-norm
layers as `weight_g` and `weight_v`, as upstream's checkpoints store them), the GPT's tokenizer as `bpe.model`,
and `weights.json`: for each part its file, sha256, tensor and parameter counts, and its names with shapes and
dtypes. The weights are those the trace records (its digest is checked), made again from its config and seed
if the cache has dropped them.

With `--layout official` the same weights are written as IndexTTS2's own checkpoint folder instead, what
`IndexTTS2(model_dir=...)` and `--checkpoints` read: `model/` (config.yaml, gpt.pth, s2mel.pth, bpe.model,
feat1.pt, feat2.pt, the w2v statistics) and `hf_home/hub/` (a Hugging Face cache holding w2v-bert, the semantic
codec, CAMPPlus and BigVGAN, answering offline). Read back before it is reported: the folder must hold the
trace's weights, digest for digest.

  harness export-weights ref.h5 -o ref-weights/
  harness export-weights ref.h5 -o ref-official/ --layout official
  harness compare --checkpoints ref-official/model --hf-cache ref-official/hf_home/hub
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from harness import stages
from harness.commands.common import PORTER_PATH
from harness.errors import UserError

TOKENIZER = "bpe.model"  # stored with the GPT part's weights as uint8 bytes; written as the file it is
MANIFEST = "weights.json"


def add_parser(sub) -> None:
    p = sub.add_parser("export-weights", help="write the weights a reference trace ran, for a port to load",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PORTER_PATH)
    p.add_argument("trace", type=Path, help="a reference trace from `harness capture`")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder to write into")
    p.add_argument("--layout", choices=("safetensors", "official"), default="safetensors",
                   help="one safetensors file per part (default), or IndexTTS2's official checkpoint layout")
    p.set_defaults(run=run)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe(weights: dict[str, np.ndarray]) -> dict:
    """What a loader checks: every name with its shape and dtype, and the counts."""
    names = {k: {"shape": list(np.shape(v)), "dtype": str(np.asarray(v).dtype)} for k, v in sorted(weights.items())}
    return {"tensors": len(names), "parameters": int(sum(np.size(v) for v in weights.values())), "names": names}


def run(args: argparse.Namespace) -> int:
    from harness import weights as W
    from harness.commands import models
    from harness.files import atomic, refuse_overlap, write_text
    from harness.trace import Trace

    with Trace(args.trace) as ref:
        prov = ref.provenance
    ckpt = prov.get("checkpoint") if isinstance(prov.get("checkpoint"), dict) else {}
    if ckpt.get("kind") == "real":
        raise UserError(f"{args.trace} ran real checkpoints ({ckpt.get('path')}): a port loads those files")
    if args.output.exists() and not args.output.is_dir():
        raise UserError(f"--output {args.output}: not a folder")
    # every file it may write, refused before the weights are read (or made again, which takes minutes)
    files = {p.name: args.output / f"{p.name}.safetensors" for p in stages.PARTS}
    files |= {TOKENIZER: args.output / TOKENIZER, MANIFEST: args.output / MANIFEST}
    if args.layout == "official":
        return _official(args, prov, ckpt)
    refuse_overlap({f"--output's {name}": path for name, path in files.items()}, {"TRACE": args.trace})
    weights = models.reference_weights(args.trace)
    args.output.mkdir(parents=True, exist_ok=True)
    manifest = {"reference": str(args.trace), "config": prov.get("config"), "seed": prov.get("seed"),
                "checkpoint_digest": ckpt.get("digest"), "parts": {}}
    for part, tensors in weights.items():
        arrays = {k: v for k, v in tensors.items() if k != TOKENIZER}
        W.save(arrays, files[part])
        manifest["parts"][part] = {"file": files[part].name, "sha256": _sha256(files[part]), **describe(arrays)}
        if TOKENIZER in tensors:
            with atomic(files[TOKENIZER]) as tmp:
                tmp.write_bytes(np.asarray(tensors[TOKENIZER], dtype=np.uint8).tobytes())
            manifest["parts"][part]["tokenizer"] = {"file": TOKENIZER, "sha256": _sha256(files[TOKENIZER])}
    write_text(json.dumps(manifest, indent=1) + "\n", files[MANIFEST])
    total = sum(p["parameters"] for p in manifest["parts"].values())
    print(f"{len(weights)} parts, {total / 1e6:.2f} M parameters, the weights of {args.trace} -> {args.output}/ "
          f"({', '.join(p['file'] for p in manifest['parts'].values())}, {MANIFEST})")
    return 0


def _official(args: argparse.Namespace, prov: dict, ckpt: dict) -> int:
    """The trace's seeded weights in the official layout (models.export_official), reported with what it read back."""
    from harness.commands import models
    from harness.configs import PipelineConfig
    from harness.files import same_file

    trace = args.trace.resolve()
    for inner in ("model", "hf_home", "manifest.json"):  # before the layout is written (a minute, 1 GB)
        where = (args.output / inner).resolve()
        if same_file(trace, where) or where in trace.parents:
            raise UserError(f"--output {args.output}: {inner} would overwrite or hold the trace {args.trace}; "
                            "choose another folder")
    config_json, seed = prov.get("config_json"), prov.get("seed")
    if not isinstance(config_json, dict) or not isinstance(seed, int):
        raise UserError(f"{args.trace}: its provenance names no config and seed; capture it again")
    record, model_dir, hub = models.export_official(PipelineConfig.from_dict(config_json), seed, args.output)
    if record["digest"] != ckpt.get("digest"):
        raise RuntimeError(f"the official layout of {args.trace} holds other weights (digest {record['digest']}, "
                           f"the trace's {ckpt.get('digest')})")
    counts = ", ".join(f"{part} {n}" for part, n in record["tensors"].items())
    print(f"the weights of {args.trace} in the official layout -> {args.output}/ (tensors: {counts}; digest "
          f"{record['digest']}, the trace's)")
    print(f"  harness compare --checkpoints {model_dir} --hf-cache {hub}")
    return 0
