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
    from harness.commands import models
    from harness.files import refuse_overlap

    if args.part is not None:
        stages.part(args.part)
    for f in args.fault:
        stages.fault(f)
    suffix = ("reimpl-forced" if args.teacher_forced else "reimpl") + (f"-{args.part}" if args.part else "")
    suffix += "".join(f"-{f}" for f in sorted(args.fault))
    out = args.output or args.reference.with_name(f"{args.reference.stem}-{suffix}.h5")
    refuse_overlap({"--output": out}, {"REF": args.reference})
    weights = models.reference_weights(args.reference)
    models.replay(args.reference, weights, out, teacher_forced=args.teacher_forced, faults=args.fault, part=args.part)
    print(f"candidate trace: {out}")
    return 0
