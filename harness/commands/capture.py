"""Run the unmodified upstream pipeline with forward hooks and write every stage to a trace.

The inputs are the embedded default (the fixture recording's mel, seeded stand-ins) and the seeded
checkpoint of the config, or real weights with --checkpoints. By default the trace also holds its noise
floors: the reference runs once more in float64 and our reimplementation in float64 teacher-forced, each
stage's float32 error is stored, and those float64 runs are discarded (--no-floors skips this; a compare
then falls back to rel-L2 <= 1e-4). --dtype float64 captures the float64 run itself.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands.common import add_model_flags, config_from
from harness.paths import reports_dir


def add_parser(sub) -> None:
    p = sub.add_parser("capture", help="capture a reference trace from upstream", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", type=Path, default=None, help="trace path (default reports/traces/...)")
    p.add_argument("--no-floors", action="store_true", help="do not compute and store the noise floors")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="float64 captures the float64 run itself (no floors)")
    p.add_argument("--strict", action="store_true",
                   help="fail when a recomputed stage (CFG mix, Euler update) differs from the upstream value that "
                        "follows it; without it such stages are only marked unverified")
    add_model_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness.commands import models

    cfg = config_from(args)
    weights, ckpt = models.weights_for(cfg, args.seed, args.checkpoints, args.reference_src)
    out = args.output or reports_dir() / "traces" / f"reference-{cfg.name}-{cfg.cfm.steps}steps-seed{args.seed}.h5"
    path = models.capture(cfg, weights, ckpt, out, seed=args.seed, reference_src=args.reference_src,
                          detail=args.detail, with_floors=not args.no_floors, dtype=args.dtype, strict=args.strict,
                          text=args.text)
    print(f"reference trace: {path}")
    return 0
