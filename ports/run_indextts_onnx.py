"""Compare the third-party indextts-onnx port with upstream, step by step.

    python ports/run_indextts_onnx.py [--config tiny-onnx|full] [--steps N] [--seed N]

Captures the reference (with its noise floors) first, in this process, before the port's export patches
upstream's SConv1d; then exports and runs the port with the recorded noise injected, writes its tensors to
reports/ports/, and runs `harness compare REF PORT --map ...`.
Needs the extra: pip install -c constraints.txt '.[onnx]'.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from harness.cli import main as harness
    from harness.commands import models
    from harness.configs import FULL
    from harness.paths import reports_dir
    from ports.onnx_port import MAP, TINY_ONNX, run_port

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=("tiny-onnx", "full"), default="tiny-onnx")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stage", default="dit")
    ap.add_argument("--detail", default="full", help="the reference's detail level (default full: every step)")
    args = ap.parse_args(argv)
    cfg = TINY_ONNX if args.config == "tiny-onnx" else FULL
    if args.steps:
        cfg = cfg.with_(steps=args.steps)
    start = time.perf_counter()
    run = models.ensure(cfg, seed=args.seed, detail=args.detail, replays=False)
    weights, _ = models.seeded_weights(cfg, args.seed)
    out = reports_dir() / "ports" / f"indextts_onnx-{cfg.name}-{cfg.cfm.steps}steps-seed{args.seed}.npz"
    run_port(run.reference, weights, out)
    print(f"port tensors: {out} ({time.perf_counter() - start:.1f} s with the reference)", file=sys.stderr)
    return harness(["compare", str(run.reference), str(out), "--map", str(MAP), "--stage", args.stage, "--json",
                    str(reports_dir() / f"compare-indextts_onnx-{cfg.name}.json")])


if __name__ == "__main__":
    sys.exit(main())
