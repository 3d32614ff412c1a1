"""Compare a candidate trace with a reference trace, stage by stage, and name the first divergence.

With no traces, compares upstream with our reimplementation on the embedded default: it captures
upstream (float32, and float64 for the noise floors) and replays our code (free-running and
teacher-forced, plus a float64 oracle) once, caches the traces under reports/cache/, then prints the
verdict line and the table. --fault switches on a real porting bug in our reimplementation.

Exit 0 when every stage is within tolerance, 1 when some stage diverges, 2 on bad input.
"""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from harness import junit, summary, tolerance
from harness.commands.common import add_model_flags, config_from
from harness.compare import compare_traces, open_traces
from harness.console import render
from harness.errors import UserError
from harness.trace import Trace

REPORTS = Path(__file__).resolve().parent.parent.parent / "reports"


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare two traces (or upstream vs reimpl on the embedded default)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("traces", nargs="*", type=Path, metavar="REF CAND", help="reference and candidate traces")
    p.add_argument("--stage", default=None, help="a group (dit, lr, inputs), a path prefix (dit/block_03) or a glob")
    p.add_argument("--fault", action="append", default=[], metavar="NAME",
                   help="switch on a porting fault in reimpl (see `harness faults`); repeatable")
    p.add_argument("--map", type=Path, default=None,
                   help="a TOML map from a foreign CAND's tensor names/layouts (safetensors, npz, .npy folder) to our stages")
    g = p.add_argument_group("more traces, for local error and noise floors (explicit traces only)")
    g.add_argument("--forced", type=Path, help="the candidate's teacher-forced trace")
    g.add_argument("--reference64", type=Path, help="the reference captured again in float64")
    g.add_argument("--oracle64", type=Path, help="a float64 teacher-forced oracle run from the reference")
    o = p.add_argument_group("output")
    o.add_argument("--json", type=Path, default=None, help="JSON summary path (default reports/compare-*.json)")
    o.add_argument("--junit", type=Path, default=None, help="also write JUnit XML here")
    o.add_argument("--html", type=Path, default=None, help="HTML report path (default: beside the JSON summary)")
    o.add_argument("--no-html", action="store_true", help="do not write the HTML report")
    o.add_argument("--tolerances", type=Path, default=None, help="TOML file of per-stage tolerance overrides")
    o.add_argument("--rows", type=int, default=None, help="print at most this many table rows")
    add_model_flags(p)
    p.set_defaults(run=run)


def foreign_candidate(reference: Path, candidate: Path, map_path: Path | None) -> Path:
    """Convert a port's tensors into a trace of our schema (cached by file identity) and say what is missing."""
    import sys

    from harness import foreign

    if map_path is None:
        raise UserError(f"{candidate} is not an HDF5 trace: give --map MAP to say what its tensors are")
    if not candidate.exists():
        raise UserError(f"candidate not found: {candidate}")
    foreign.load_map(map_path)  # a bad map is bad input before anything is read
    out = REPORTS / "cache" / "foreign" / f"{candidate.stem}-{foreign.cache_name(candidate, map_path)}.h5"
    with Trace(reference) as ref:
        _, notes = foreign.convert(ref, candidate, map_path, out)
    for note in notes:
        print(f"map: {note}", file=sys.stderr)
    return out


def reproduce(args: argparse.Namespace) -> str:
    """The command line that reproduces this comparison, for the report."""
    words = ["harness", "compare", *map(str, args.traces)]
    for flag, value in (("--map", args.map), ("--forced", args.forced), ("--reference64", args.reference64),
                        ("--oracle64", args.oracle64), ("--stage", args.stage), ("--tolerances", args.tolerances)):
        if value is not None:
            words += [flag, str(value)]
    if not args.traces:
        words += ["--config", args.config, "--seed", str(args.seed)]
        if args.steps is not None:
            words += ["--steps", str(args.steps)]
        for flag, value in (("--checkpoints", args.checkpoints), ("--reference-src", args.reference_src)):
            if value is not None:
                words += [flag, str(value)]
        for f in args.fault:
            words += ["--fault", f]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    from harness import schema

    schema.selector(args.stage)  # an unknown stage is bad input before anything runs
    tols = tolerance.load(args.tolerances)
    if len(args.traces) not in (0, 2):
        raise UserError("give both REF and CAND traces, or neither for the embedded default")
    if args.traces:
        if args.fault:
            raise UserError("--fault applies to the embedded default (no REF CAND given)")
        candidate = args.traces[1]
        if args.map is not None or candidate.suffix != ".h5":
            candidate = foreign_candidate(args.traces[0], candidate, args.map)
        paths = dict(reference=args.traces[0], candidate=candidate, forced=args.forced,
                     reference64=args.reference64, oracle64=args.oracle64)
        name = f"compare-{args.traces[1].stem}"
    else:
        from harness import embedded
        from reimpl import faults

        for f in args.fault:
            faults.get(f)
        cfg = config_from(args)
        r = embedded.ensure(cfg, seed=args.seed, checkpoints=args.checkpoints, reference_src=args.reference_src,
                            faults=tuple(args.fault))
        paths = r.roles()
        name = f"compare-{cfg.name}" + "".join(f"-{f}" for f in args.fault)
    if args.stage:
        name += "-" + "".join(ch if ch.isalnum() else "_" for ch in args.stage)
    json_path = args.json or REPORTS / f"{name}.json"
    with open_traces(**paths) as traces:
        comparison = compare_traces(traces, stage=args.stage, tolerances=tols)
        render(comparison, max_rows=args.rows)
        out = summary.write(comparison, json_path)
        print(f"summary: {out}")
        if not args.no_html:
            from harness import html_report

            page = html_report.write(comparison, traces, args.html or json_path.with_suffix(".html"), reproduce(args))
            print(f"report: {page}")
    if args.junit:
        print(f"junit: {junit.write(comparison, args.junit)}")
    return comparison.exit_code
