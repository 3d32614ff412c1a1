"""Run the unmodified upstream pipeline with forward hooks and write every stage to a trace.

The inputs are the speaker recording (--speaker, default the fixture) with seeded stand-ins for the parts
still to come, and the seeded checkpoint of the config, or real weights with --checkpoints. By default the
trace also holds its noise floors: the reference runs once more in float64 and our reimplementation in
float64 teacher-forced, each stage's float32 error is stored, and those float64 runs are discarded
(--no-floors skips this; a compare then falls back to rel-L2 <= 1e-4). --dtype float64 captures the float64 run itself.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from harness.commands.common import PORTER_PATH, add_model_flags, config_from, emo_from, run_suffix, speaker_from
from harness.errors import UserError
from harness.paths import reports_dir


def add_parser(sub) -> None:
    p = sub.add_parser("capture", help="capture a reference trace from upstream", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PORTER_PATH)
    p.add_argument("-o", "--output", type=Path, default=None, help="trace path (default reports/traces/...)")
    p.add_argument("--no-floors", action="store_true", help="do not compute and store the noise floors")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="float64 captures the float64 run itself (no floors)")
    p.add_argument("--precision-floors", action="append", default=[], choices=("float16", "bfloat16"), metavar="DTYPE",
                   help="also measure the floors of a float16 or bfloat16 port (upstream under CPU autocast), for "
                        "`harness compare --candidate-dtype`; repeatable")
    p.add_argument("--strict", action="store_true",
                   help="fail when a recomputed stage (CFG mix, Euler update) differs from the upstream value that "
                        "follows it; without it such stages are only marked unverified")
    add_model_flags(p)
    p.set_defaults(run=run)


def default_output(args: argparse.Namespace, cfg) -> Path:
    """A trace name that differs whenever the options that change its content do."""
    name = f"reference-{cfg.name}-{cfg.cfm.steps}steps-seed{args.seed}" + run_suffix(args)
    name += "" if args.dtype == "float32" else f"-{args.dtype}"
    name += "-nofloors" if args.no_floors else ""
    name += "".join(f"-{p}" for p in sorted(set(args.precision_floors)))
    if args.checkpoints or args.reference_src:
        where = [str(Path(p).resolve()) if p else None for p in (args.checkpoints, args.reference_src, args.hf_cache)]
        name += "-" + hashlib.sha256(repr(where).encode()).hexdigest()[:8]
    return reports_dir() / "traces" / f"{name}.h5"


def run(args: argparse.Namespace) -> int:
    from harness.commands import models
    from harness.files import folder_files, refuse_overlap

    cfg = config_from(args)
    if args.precision_floors and (args.no_floors or args.dtype == "float64"):
        raise UserError("--precision-floors are measured against the float64 run of the floors: drop --no-floors "
                        "and --dtype float64")
    out = args.output or default_output(args, cfg)
    refuse_overlap({"--output": out}, folder_files(args.checkpoints, "--checkpoints"))  # before the run, not after it
    speaker, emo = speaker_from(args), emo_from(args)
    refuse_overlap({"--output": out}, {"--speaker": speaker, "--emo-wav": emo})
    models.check_speaker(cfg, speaker, args.reference_src)
    models.check_emotion(emo)
    weights, ckpt = models.weights_for(cfg, args.seed, args.checkpoints, args.reference_src, args.hf_cache)
    path = models.capture(cfg, weights, ckpt, out, seed=args.seed, reference_src=args.reference_src,
                          detail=args.detail, with_floors=not args.no_floors, dtype=args.dtype, strict=args.strict,
                          precisions=tuple(args.precision_floors), speaker=speaker, text=args.text, emo=emo)
    print(f"reference trace: {path}")
    return 0
