"""Write the self-contained HTML diff report of a candidate trace against a reference trace.

`harness compare` writes one by default next to its JSON summary; this command makes one on its own.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness import stages, tolerance
from harness.compare import compare_traces, open_traces
from harness.paths import reports_dir


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="write the HTML report of REF vs CAND", description=__doc__)
    p.add_argument("reference", type=Path)
    p.add_argument("candidate", type=Path)
    p.add_argument("-o", "--output", type=Path, default=None, help="HTML path (default reports/report-CAND.html)")
    p.add_argument("--stage", default=None)
    p.add_argument("--map", type=Path, default=None, help="map for a foreign candidate (see harness compare)")
    p.add_argument("--forced", type=Path)
    p.add_argument("--tolerances", type=Path, default=None)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness import html_report
    from harness.commands.compare import reproduce
    from harness.files import refuse_overlap

    stages.selector(args.stage)
    tols = tolerance.load(args.tolerances)
    out = args.output or reports_dir() / f"report-{args.candidate.stem}.html"
    refuse_overlap({"--output": out}, {"REF": args.reference, "CAND": args.candidate, "--forced": args.forced,
                                       "--map": args.map, "--tolerances": args.tolerances})
    candidate = args.candidate
    if args.map is not None or candidate.suffix != ".h5":
        from harness.console import progress
        from harness.foreign import foreign_candidate

        candidate = foreign_candidate(args.reference, candidate, args.map, log=progress)
    with open_traces(args.reference, candidate, args.forced) as traces:
        comparison = compare_traces(traces, stage=args.stage, tolerances=tols)
        ns = argparse.Namespace(traces=[args.reference, args.candidate], map=args.map, forced=args.forced,
                                stage=args.stage, tolerances=args.tolerances)
        html_report.write(comparison, traces, out, reproduce(ns))
    print(f"report: {out}")
    return comparison.exit_code
