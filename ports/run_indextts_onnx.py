"""Compare the third-party indextts-onnx port with upstream, step by step.

    python ports/run_indextts_onnx.py [--config tiny-onnx|full] [--steps N] [--seed N]
    python ports/run_indextts_onnx.py --part gpt [--config tiny|full] [--steps N] [--seed N]
    python ports/run_indextts_onnx.py --part semantic [--config tiny|full] [--speaker WAV] [--no-export]
    python ports/run_indextts_onnx.py --part vocoder [--config tiny|full] [--steps N] [--seed N]

The default part is its s2mel path and CFM loop (ports/onnx_port.py); `--part gpt` is its GPT export and
numpy sampler, teacher-forced (ports/onnx_port_gpt.py); `--part semantic` its numpy features and its w2v-bert
and semantic codec exports (ports/onnx_port_semantic.py); `--part vocoder` its BigVGAN export, its join and its
int16 (ports/onnx_port_vocoder.py).

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
    from ports import onnx_port, onnx_port_gpt, onnx_port_semantic, onnx_port_vocoder

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("s2mel-cfm", "gpt", "semantic", "vocoder"), default="s2mel-cfm")
    ap.add_argument("--config", choices=("tiny-onnx", "tiny", "full"), default=None,
                    help="default tiny-onnx (s2mel-cfm: the package's export fixes the content widths), tiny (gpt, "
                         "semantic, vocoder)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--max-tokens", type=int, default=None, help="the GPT's cap on generated codes per segment "
                    "(default the config's); fewer make a shorter mel for the s2mel path and CFM loop")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stage", default=None, help="default dit (s2mel-cfm), the part's name (gpt, semantic, vocoder)")
    ap.add_argument("--speaker", type=Path, default=None,
                    help="another speaker recording (e.g. fixtures/speaker_odd.wav: an odd feature frame count)")
    ap.add_argument("--no-export", action="store_true",
                    help="semantic: the port's numpy features alone, without exporting w2v-bert and the codec")
    ap.add_argument("--detail", default=None,
                    help="the reference's detail level (default full:cfm for s2mel-cfm: every step's internals; "
                         "default for gpt and semantic)")
    args = ap.parse_args(argv)
    if args.no_export and args.part != "semantic":
        ap.error("--no-export is for --part semantic")
    cfm = args.part == "s2mel-cfm"
    name = args.config or ("tiny-onnx" if cfm else "tiny")
    cfg = {"tiny-onnx": onnx_port.TINY_ONNX, "tiny": TINY, "full": FULL}[name]
    if args.steps:
        cfg = cfg.with_(steps=args.steps)
    if args.max_tokens:
        cfg = cfg.with_(gpt__max_tokens=args.max_tokens)
    port = {"s2mel-cfm": onnx_port, "gpt": onnx_port_gpt, "semantic": onnx_port_semantic,
            "vocoder": onnx_port_vocoder}[args.part]
    start = time.perf_counter()
    speaker = args.speaker.resolve() if args.speaker else None
    run = models.ensure(cfg, seed=args.seed, detail=args.detail or ("full:cfm" if cfm else "default"), replays=False,
                        speaker=speaker)
    weights, _ = models.seeded_weights(cfg, args.seed)
    tag = f"indextts_onnx{'' if cfm else '_' + args.part}-{cfg.name}" + (f"-{speaker.stem}" if speaker else "")
    tag += f"-{args.max_tokens}tokens" if args.max_tokens else ""
    tag += "-features" if args.no_export else ""
    out = reports_dir() / "ports" / f"{tag}-{cfg.cfm.steps}steps-seed{args.seed}.npz"
    if args.no_export:
        port.run_port(run.reference, weights, out, with_export=False)
    else:
        port.run_port(run.reference, weights, out)
    print(f"port tensors: {out} ({time.perf_counter() - start:.1f} s with the reference)", file=sys.stderr)
    forced = ["--forced", str(port.forced_path(out))] if hasattr(port, "forced_path") else []  # its teacher-forced run
    return harness(["compare", str(run.reference), str(out), *forced, "--map", str(port.MAP), "--stage",
                    args.stage or ("dit" if cfm else args.part), "--json", str(reports_dir() / f"compare-{tag}.json")])


if __name__ == "__main__":
    from ports import script

    sys.exit(script.run(main, "run_indextts_onnx"))
