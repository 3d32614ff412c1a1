"""Write the self-contained HTML diff report of a candidate trace against a reference trace.

`harness compare` writes one by default next to its JSON summary; this command makes one on its own.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from harness import stages, tolerance
from harness.commands.common import PORTER_PATH
from harness.compare import compare_traces, open_traces
from harness.console import progress
from harness.foreign import as_traces
from harness.paths import reports_dir
from harness.precision import CHOICES


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="write the HTML report of REF vs CAND", description=__doc__, epilog=PORTER_PATH,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", type=Path)
    p.add_argument("candidate", type=Path)
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="HTML path (default reports/report-CAND-<hash of the inputs and options>.html)")
    p.add_argument("--stage", default=None, help="a group, a path prefix or a glob (see harness compare)")
    p.add_argument("--map", type=Path, default=None, help="map for a port's dump (see harness compare)")
    p.add_argument("--forced", type=Path, help="the candidate's teacher-forced run (a trace, or a dump with --map)")
    p.add_argument("--tolerances", type=Path, default=None, help="TOML file of per-stage tolerance overrides")
    p.add_argument("--candidate-dtype", choices=CHOICES, default=None, help="precision profile (see harness compare)")
    p.set_defaults(run=run)


def _default_output(args: argparse.Namespace) -> Path:
    options = [str(Path(p).resolve()) if p is not None else None
               for p in (args.reference, args.candidate, args.forced, args.map, args.tolerances)]
    ident = hashlib.sha256(repr(options + [args.stage, args.candidate_dtype]).encode()).hexdigest()[:8]
    return reports_dir() / f"report-{args.candidate.stem}-{ident}.html"


def run(args: argparse.Namespace) -> int:
    from harness import html_report
    from harness.commands.compare import reproduce
    from harness.files import refuse_overlap

    stages.selector(args.stage)
    tols = tolerance.load(args.tolerances)
    out = args.output or _default_output(args)
    refuse_overlap({"--output": out}, {"REF": args.reference, "CAND": args.candidate, "--forced": args.forced,
                                       "--map": args.map, "--tolerances": args.tolerances})
    candidate, forced = as_traces(args.reference, args.candidate, args.forced, args.map, log=progress)
    with open_traces(args.reference, candidate, forced) as traces:
        comparison = compare_traces(traces, stage=args.stage, tolerances=tols, profile=args.candidate_dtype)
        ns = argparse.Namespace(traces=[args.reference, args.candidate], map=args.map, forced=args.forced,
                                stage=args.stage, tolerances=args.tolerances, candidate_dtype=args.candidate_dtype)
        html_report.write(comparison, traces, out, reproduce(ns))
    print(f"report: {out}")
    return comparison.exit_code
