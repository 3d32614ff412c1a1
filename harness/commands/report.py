"""Write the self-contained HTML diff report of a candidate trace against a reference trace.

`harness compare` writes one by default next to its JSON summary; this command makes one on its own.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness import tolerance
from harness.commands.compare import REPORTS, foreign_candidate
from harness.compare import compare_traces, open_traces
from harness.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="write the HTML report of REF vs CAND", description=__doc__)
    p.add_argument("reference", type=Path)
    p.add_argument("candidate", type=Path)
    p.add_argument("-o", "--output", type=Path, default=None, help="HTML path (default reports/report-CAND.html)")
    p.add_argument("--stage", default=None)
    p.add_argument("--map", type=Path, default=None, help="map for a foreign candidate (see harness compare)")
    p.add_argument("--forced", type=Path)
    p.add_argument("--reference64", type=Path)
    p.add_argument("--oracle64", type=Path)
    p.add_argument("--tolerances", type=Path, default=None)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness import html_report, schema
    from harness.commands.compare import reproduce

    schema.selector(args.stage)
    tols = tolerance.load(args.tolerances)
    candidate = args.candidate
    if args.map is not None or candidate.suffix != ".h5":
        candidate = foreign_candidate(args.reference, candidate, args.map)
    if not args.reference.exists():
        raise UserError(f"trace not found: {args.reference}")
    out = args.output or REPORTS / f"report-{args.candidate.stem}.html"
    with open_traces(args.reference, candidate, args.forced, args.reference64, args.oracle64) as traces:
        comparison = compare_traces(traces, stage=args.stage, tolerances=tols)
        ns = argparse.Namespace(traces=[args.reference, args.candidate], map=args.map, forced=args.forced,
                                reference64=args.reference64, oracle64=args.oracle64, stage=args.stage,
                                tolerances=args.tolerances)
        html_report.write(comparison, traces, out, reproduce(ns))
    print(f"report: {out}")
    return comparison.exit_code
