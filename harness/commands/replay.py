"""Replay a reference trace's recorded inputs and noise through our reimplementation.

Free-running by default: our code runs end to end from the same top inputs. With --teacher-forced
every stage is fed the reference's recorded value of the stage before it, so each stage's error is
its own (local) rather than inherited.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("replay", help="replay a reference trace through reimpl", description=__doc__)
    p.add_argument("reference", type=Path, help="a reference trace from `harness capture`")
    p.add_argument("-o", "--output", type=Path, default=None, help="trace path (default beside the reference)")
    p.add_argument("--teacher-forced", action="store_true", help="feed every stage the reference's inputs")
    p.add_argument("--checkpoints", type=Path, default=None,
                   help="weights to load (default: the checkpoint the reference trace names)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness import weights as W
    from harness.trace import Trace

    with Trace(args.reference) as ref:
        ckpt = args.checkpoints or (ref.provenance.get("checkpoint") or {}).get("path")
        if not ckpt:
            raise UserError(f"{args.reference} names no checkpoint; pass --checkpoints")
        weights = W.load(Path(ckpt))
        suffix = "reimpl-forced" if args.teacher_forced else "reimpl"
        out = args.output or args.reference.with_name(f"{args.reference.stem}-{suffix}.h5")
        from reimpl.replay import replay

        replay(ref, weights, out, teacher_forced=args.teacher_forced)
    print(f"candidate trace: {out}")
    return 0
