"""Compare the third-party indextts-onnx port with upstream, step by step.

    python ports/run_indextts_onnx.py [--config tiny-onnx|full] [--steps N] [--seed N]
    python ports/run_indextts_onnx.py --part gpt [--config tiny|full] [--steps N] [--seed N]

The default part is its s2mel path and CFM loop (ports/onnx_port.py); `--part gpt` is its GPT export and
numpy sampler, teacher-forced (ports/onnx_port_gpt.py).

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
    from harness.configs import FULL, TINY
    from harness.paths import reports_dir
    from ports import onnx_port, onnx_port_gpt

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("s2mel-cfm", "gpt"), default="s2mel-cfm")
    ap.add_argument("--config", choices=("tiny-onnx", "tiny", "full"), default=None,
                    help="default tiny-onnx (s2mel-cfm: the package's export fixes the content widths), tiny (gpt)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stage", default=None, help="default dit (s2mel-cfm), gpt (gpt)")
    ap.add_argument("--detail", default=None,
                    help="the reference's detail level (default full:cfm for s2mel-cfm: every step's internals; "
                         "default for gpt)")
    args = ap.parse_args(argv)
    gpt = args.part == "gpt"
    name = args.config or ("tiny" if gpt else "tiny-onnx")
    cfg = {"tiny-onnx": onnx_port.TINY_ONNX, "tiny": TINY, "full": FULL}[name]
    if args.steps:
        cfg = cfg.with_(steps=args.steps)
    port = onnx_port_gpt if gpt else onnx_port
    start = time.perf_counter()
    run = models.ensure(cfg, seed=args.seed, detail=args.detail or ("default" if gpt else "full:cfm"), replays=False)
    weights, _ = models.seeded_weights(cfg, args.seed)
    tag = f"indextts_onnx{'_gpt' if gpt else ''}-{cfg.name}"
    out = reports_dir() / "ports" / f"{tag}-{cfg.cfm.steps}steps-seed{args.seed}.npz"
    port.run_port(run.reference, weights, out)
    print(f"port tensors: {out} ({time.perf_counter() - start:.1f} s with the reference)", file=sys.stderr)
    return harness(["compare", str(run.reference), str(out), "--map", str(port.MAP), "--stage",
                    args.stage or ("gpt" if gpt else "dit"), "--json", str(reports_dir() / f"compare-{tag}.json")])


if __name__ == "__main__":
    sys.exit(main())
