"""Compare a candidate trace with a reference trace, stage by stage.

With no traces, compares upstream with our reimplementation on the embedded default: it captures
upstream and replays our code (free-running and teacher-forced) once, caches the traces under
reports/cache/, then prints the table. Exit 0 when every stage is within tolerance, 1 when some stage
diverges, 2 on bad input.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness import summary
from harness.commands.common import add_model_flags, config_from
from harness.compare import compare_traces
from harness.console import render
from harness.errors import UserError
from harness.trace import Trace

REPORTS = Path(__file__).resolve().parent.parent.parent / "reports"


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare two traces (or upstream vs reimpl on the embedded default)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("traces", nargs="*", type=Path, metavar="REF CAND", help="reference and candidate traces")
    p.add_argument("--stage", default=None, help="a group (dit, lr, inputs), a path prefix (dit/block_03) or a glob")
    p.add_argument("--forced", type=Path, default=None, help="the candidate's teacher-forced trace, for local error")
    p.add_argument("--json", type=Path, default=None, help="where to write the JSON summary (default under reports/)")
    p.add_argument("--rows", type=int, default=None, help="print at most this many table rows")
    add_model_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness import schema

    schema.selector(args.stage)  # an unknown stage is bad input before anything runs
    if len(args.traces) == 1 or len(args.traces) > 2:
        raise UserError("give both REF and CAND traces, or neither for the embedded default")
    if args.traces:
        ref_path, cand_path, forced_path = args.traces[0], args.traces[1], args.forced
        name = f"compare-{cand_path.stem}"
    else:
        from harness import embedded

        cfg = config_from(args)
        run_ = embedded.ensure(cfg, seed=args.seed, checkpoints=args.checkpoints, reference_src=args.reference_src)
        ref_path, cand_path, forced_path = run_.reference, run_.free, run_.forced
        name = f"compare-{cfg.name}"
    if args.stage:
        name += "-" + "".join(ch if ch.isalnum() else "_" for ch in args.stage)
    with Trace(ref_path) as ref, Trace(cand_path) as cand:
        forced = Trace(forced_path) if forced_path else None
        try:
            comparison = compare_traces(ref, cand, forced=forced, stage=args.stage)
        finally:
            if forced:
                forced.close()
    render(comparison, max_rows=args.rows)
    out = summary.write(comparison, args.json or REPORTS / f"{name}.json")
    print(f"summary: {out}")
    return comparison.exit_code
