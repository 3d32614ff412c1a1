"""Compare a candidate with a reference, stage by stage, and name the first divergence.

A porter's workflow:  harness capture -o ref.h5  ->  harness export-inputs ref.h5 -o inputs/  ->  run the
port on those inputs, dump its tensors  ->  harness compare ref.h5 port.safetensors --map port.map.toml
(docs/example.map.toml is a commented map; `harness stages --schema` lists every stage).

With no traces, compares upstream with our reimplementation on the embedded default: it captures upstream
(with its noise floors) and replays our code (free-running and teacher-forced) once, caches the traces,
then prints the verdict line and the table. --fault switches on a real porting bug in our
reimplementation (`harness faults` lists them).

Exit 0 when every compared stage is within tolerance, 1 when some stage diverges (or nothing was
compared), 2 on bad input, 3 on an internal error.
"""
from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
from pathlib import Path

from harness import junit, stages, summary, tolerance
from harness.commands.common import (
    FIXTURE_SPEAKER,
    PORTER_PATH,
    add_model_flags,
    config_from,
    emo_from,
    file_safe,
    run_suffix,
    speaker_from,
)
from harness.compare import compare_traces, open_traces
from harness.console import render
from harness.errors import UserError
from harness.limits import MAX_ROWS
from harness.paths import reports_dir
from harness.precision import CHOICES
from harness.stages.inputs import DEFAULT_TEXT

PIPED_ROWS = 40


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare two traces (or upstream vs reimpl on the embedded default)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PORTER_PATH)
    p.add_argument("traces", nargs="*", type=Path, metavar="REF CAND", help="reference and candidate traces")
    p.add_argument("--stage", default=None,
                   help="a group (a part, dit, lr), a path prefix (dit/block_03) or a glob")
    p.add_argument("--fault", action="append", default=[], metavar="NAME",
                   help="switch on a porting fault in reimpl (see `harness faults`); repeatable")
    p.add_argument("--map", type=Path, default=None,
                   help="a TOML map from a foreign CAND's tensor names/layouts (safetensors, npz, .npy folder) "
                        "to our stages (see docs/example.map.toml)")
    p.add_argument("--forced", type=Path,
                   help="the candidate's teacher-forced run: a trace, or a port's dump read through --map")
    p.add_argument("--candidate-dtype", choices=CHOICES, default=None,
                   help="judge a port that runs in float16, bfloat16 or int8 against the noise its precision "
                        "implies (measured where the reference holds such floors, derived from the dtype's "
                        "rounding otherwise)")
    o = p.add_argument_group("output")
    o.add_argument("--json", type=Path, default=None, help="JSON summary path (default reports/compare-*.json)")
    o.add_argument("--junit", type=Path, default=None, help="also write JUnit XML here")
    o.add_argument("--html", type=Path, default=None, help="HTML report path (default: beside the JSON summary)")
    o.add_argument("--no-html", action="store_true", help="do not write the HTML report")
    o.add_argument("--tolerances", type=Path, default=None, help="TOML file of per-stage tolerance overrides")
    o.add_argument("--rows", type=int, default=None,
                   help=f"print at most this many table rows, around the first divergence (default: all on a "
                        f"terminal, {PIPED_ROWS} when piped)")
    add_model_flags(p)
    p.set_defaults(run=run)


def reproduce(args: argparse.Namespace) -> str:
    """The command line that reproduces this comparison, for the report."""
    words = ["harness", "compare", *map(str, args.traces)]
    for flag, value in (("--map", args.map), ("--forced", args.forced), ("--stage", args.stage),
                        ("--tolerances", args.tolerances), ("--candidate-dtype", getattr(args, "candidate_dtype", None))):
        if value is not None:
            words += [flag, str(value)]
    if not args.traces:
        if args.config or not args.checkpoints:  # an official layout names its own config
            words += ["--config", args.config or "tiny"]
        words += ["--seed", str(args.seed), "--detail", args.detail]
        for flag, value in (("--steps", args.steps), ("--max-tokens", args.max_tokens)):
            if value is not None:
                words += [flag, str(value)]
        speaker = None if Path(args.speaker).resolve() == FIXTURE_SPEAKER else args.speaker
        for flag, value in (("--checkpoints", args.checkpoints), ("--hf-cache", args.hf_cache),
                            ("--reference-src", args.reference_src),
                            ("--speaker", speaker), ("--emo-wav", args.emo_wav), ("--emo-alpha", args.emo_alpha),
                            ("--emo-vector", args.emo_vector and ",".join(f"{w:g}" for w in args.emo_vector))):
            if value is not None:
                words += [flag, str(value)]
        if args.emo_random:
            words += ["--emo-random"]
        if args.text != DEFAULT_TEXT:
            words += ["--text", args.text]
        for f in args.fault:
            words += ["--fault", f]
    return shlex.join(words)


def _name(args: argparse.Namespace, cfg=None) -> str:
    """A report name that differs whenever the inputs or options do (every one of them is in its hash)."""
    options = [str(Path(p).resolve()) if p is not None else None
               for p in (*args.traces, args.map, args.forced, args.tolerances, args.checkpoints, args.reference_src,
                         args.hf_cache)]
    options += [args.stage, args.candidate_dtype]
    if cfg is None:
        ident = hashlib.sha256(repr(options).encode()).hexdigest()[:8]
        return f"compare-{args.traces[1].stem}-{ident}"
    name = f"compare-{cfg.name}-{cfg.cfm.steps}steps-seed{args.seed}"
    name += "".join(f"-{f}" for f in args.fault) + run_suffix(args)
    if args.stage:
        name += "-" + file_safe(args.stage)
    if args.tolerances or args.checkpoints or args.reference_src or args.candidate_dtype:  # beyond the words above
        name += "-" + hashlib.sha256(repr(options).encode()).hexdigest()[:8]
    return name


def _outputs(args: argparse.Namespace, name: str) -> dict[str, Path | None]:
    json_path = args.json or reports_dir() / f"{name}.json"
    html = None if args.no_html else (args.html or json_path.with_suffix(".html"))
    if args.html is None and html == json_path:
        raise UserError(f"--json {json_path}: the HTML report goes beside the JSON, to the same name; give --json a "
                        ".json name, or --html PATH, or --no-html")
    return {"--json": json_path, "--html": html, "--junit": args.junit}


def run(args: argparse.Namespace) -> int:
    from harness.files import folder_files, refuse_overlap

    stages.selector(args.stage)  # an unknown stage is bad input before anything runs
    tols = tolerance.load(args.tolerances)
    if args.rows is not None and not 0 <= args.rows <= MAX_ROWS:
        raise UserError(f"--rows must be between 0 and {MAX_ROWS} (MAX_ROWS)")
    if len(args.traces) not in (0, 2):
        raise UserError("give both REF and CAND traces, or neither for the embedded default")
    if args.traces:
        if args.fault:
            raise UserError("--fault applies to the embedded default (no REF CAND given)")
        outputs = _outputs(args, _name(args))
        refuse_overlap(outputs, {"REF": args.traces[0], "CAND": args.traces[1], "--forced": args.forced,
                                 "--map": args.map, "--tolerances": args.tolerances})
        from harness.console import progress
        from harness.foreign import as_traces

        candidate, forced = as_traces(args.traces[0], args.traces[1], args.forced, args.map, log=progress)
        paths = dict(reference=args.traces[0], candidate=candidate, forced=forced)
    else:
        from harness.commands import models

        if args.map is not None or args.forced is not None:
            raise UserError("--map and --forced apply to explicit REF CAND traces")
        for f in args.fault:
            stages.fault(f)
        cfg = config_from(args)
        speaker, emo = speaker_from(args), emo_from(args)
        outputs = _outputs(args, _name(args, cfg))
        refuse_overlap(outputs, {"--tolerances": args.tolerances, "--speaker": speaker, "--emo-wav": emo,
                                 **folder_files(args.checkpoints, "--checkpoints")})
        paths = models.ensure(cfg, seed=args.seed, checkpoints=args.checkpoints, reference_src=args.reference_src,
                              faults=tuple(args.fault), detail=args.detail, speaker=speaker,
                              text=args.text, emo=emo, hf_cache=args.hf_cache).roles()
    with open_traces(**paths) as traces:
        comparison = compare_traces(traces, stage=args.stage, tolerances=tols, profile=args.candidate_dtype)
        rows = args.rows if args.rows is not None else (None if sys.stdout.isatty() else PIPED_ROWS)
        render(comparison, max_rows=rows)
        print(f"summary: {summary.write(comparison, outputs['--json'])}")
        if outputs["--html"] is not None:
            from harness import html_report

            print(f"report: {html_report.write(comparison, traces, outputs['--html'], reproduce(args))}")
    if args.junit:
        print(f"junit: {junit.write(comparison, args.junit)}")
    return comparison.exit_code
