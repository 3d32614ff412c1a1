"""Compare indextts-onnx's own speaker front end and style encoder with upstream's, stage by stage.

    python ports/run_indextts_onnx_frontend.py [--steps N] [--seed N] [--speaker WAV] [--no-style]

Captures the reference (with its noise floors) on the embedded default (tiny; the front end and CAMPPlus are
real size in every config), runs the port's numpy front end and its ONNX CAMPPlus on the same recording
(ports/onnx_frontend.py), writes its tensors to reports/ports/, and runs `harness compare REF PORT --map
ports/indextts_onnx_frontend.map.toml --stage STAGE` for the front end, then for the style. The export of
CAMPPlus to ONNX takes minutes on two busy cores; --no-style skips it (the port's fbank is still compared).
Needs the extra: pip install -c constraints.txt '.[onnx]'.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from harness.cli import main as harness
    from harness.commands import models
    from harness.commands.common import FIXTURE_SPEAKER
    from harness.configs import TINY
    from harness.paths import reports_dir
    from ports.onnx_frontend import MAP, run_port

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--speaker", type=Path, default=FIXTURE_SPEAKER)
    ap.add_argument("--no-style", action="store_true", help="skip the port's CAMPPlus (its ONNX export)")
    args = ap.parse_args(argv)
    cfg = TINY.with_(steps=args.steps)
    run = models.ensure(cfg, seed=args.seed, replays=False, speaker=args.speaker)
    weights = None if args.no_style else models.seeded_weights(cfg, args.seed)[0]
    out = reports_dir() / "ports" / f"indextts_onnx_frontend-{args.speaker.stem}-seed{args.seed}.npz"
    run_port(run.reference, weights, out)
    codes = [harness(["compare", str(run.reference), str(out), "--map", str(MAP), "--stage", part, "--json",
                      str(reports_dir() / f"compare-indextts_onnx-{part}.json")]) for part in ("frontend", "style")]
    return max(codes)


if __name__ == "__main__":
    from ports import script

    sys.exit(script.run(main, "run_indextts_onnx_frontend"))
