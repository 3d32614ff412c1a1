"""Replay a reference trace's recorded inputs and draws through our reimplementation.

Free-running by default: our code runs end to end from the same top inputs. With --teacher-forced every
stage is fed the reference's recorded value of the stage before it, so each stage's error is its own
(local) rather than inherited. With --part P only that part runs, its boundary inputs taken from the
trace (e.g. `harness replay REF --part cfm`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness import stages
from harness.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("replay", help="replay a reference trace through reimpl", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", type=Path, help="a reference trace from `harness capture`")
    p.add_argument("-o", "--output", type=Path, default=None, help="trace path (default beside the reference)")
    p.add_argument("--teacher-forced", action="store_true", help="feed every stage the reference's inputs")
    p.add_argument("--part", default=None, help=f"run one part alone: {', '.join(p.name for p in stages.PARTS)}")
    p.add_argument("--fault", action="append", default=[], metavar="NAME", help="switch on a porting fault")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness import weights as W
    from harness.commands import models
    from harness.files import refuse_overlap
    from harness.trace import Trace

    if args.part is not None:
        stages.part(args.part)
    for f in args.fault:
        stages.fault(f)
    suffix = ("reimpl-forced" if args.teacher_forced else "reimpl") + (f"-{args.part}" if args.part else "")
    suffix += "".join(f"-{f}" for f in sorted(args.fault))
    out = args.output or args.reference.with_name(f"{args.reference.stem}-{suffix}.h5")
    refuse_overlap({"--output": out}, {"REF": args.reference})
    with Trace(args.reference) as ref:
        ckpt = ref.provenance.get("checkpoint") or {}
        config_json, seed = ref.provenance.get("config_json"), ref.provenance.get("seed")
    if not isinstance(ckpt, dict):
        raise UserError(f"{args.reference}: its provenance's checkpoint is not a record; capture it again")
    if ckpt.get("kind") == "real":
        weights = models.real_weights(Path(ckpt["path"]))[0]
    elif ckpt.get("files") and all(Path(p).is_file() for p in ckpt["files"].values()):
        weights = {part: W.load(path) for part, path in ckpt["files"].items()}
    elif str(ckpt.get("kind", "")).startswith("seeded") and isinstance(config_json, dict) and isinstance(seed, int):
        # the seeded weights were evicted from the cache: made again from the config and seed
        from harness.configs import PipelineConfig

        weights, made = models.seeded_weights(PipelineConfig.from_dict(config_json), seed)
        if made["digest"] != ckpt.get("digest"):
            raise UserError(f"{args.reference}: its seeded weights cannot be made again (digest {made['digest']} vs "
                            f"{ckpt.get('digest')}); capture it again with `harness capture`")
    else:
        raise UserError(f"{args.reference} names no checkpoint; capture it again with `harness capture`")
    models.replay(args.reference, weights, out, teacher_forced=args.teacher_forced, faults=args.fault, part=args.part)
    print(f"candidate trace: {out}")
    return 0
