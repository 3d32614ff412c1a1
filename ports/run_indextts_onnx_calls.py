"""Run the third-party indextts-onnx port on the embedded reference's inputs and write its tensors.

    python ports/run_indextts_onnx_calls.py [--config tiny-onnx|full] [--seed N] [--steps N]

Captures (or reuses) the upstream reference first, in this process, before the port's export patches
upstream's SConv1d; then exports the seeded model with the package's own code (cached under
reports/cache/onnx/), runs its numpy CFM loop with the recorded noise and condition, and writes
reports/ports/indextts_onnx_calls-CONFIG-Nsteps-seedS.safetensors. Prints the files, the times, and
per-step figures against the reference; compare in full with the printed `harness compare` command.
Needs: pip install -c constraints.txt onnx onnxruntime onnxscript sentencepiece, and
pip install -c constraints.txt --no-deps indextts-onnx==0.3.0.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def summary(reference: Path, candidate: Path, steps: int) -> list[str]:
    """Per-step velocity rel-L2 and t difference, and the final mel, against the reference trace."""
    import numpy as np
    from safetensors.numpy import load_file

    from harness.metrics import compute
    from harness.trace import Trace

    port = load_file(str(candidate))
    lines = [f"{'step':>4} {'t fed (port)':>12} {'t upstream':>12} {'t diff':>9} {'velocity rel-L2':>15} "
             f"{'cond':>9} {'uncond':>9} {'x in rel-L2':>11}"]
    with Trace(reference) as ref:
        for i in range(steps):
            base = f"cfm/step_{i:02d}/dit"
            t_ref, t_port = ref.read(f"{base}/in/t"), port[f"call_{i}.t"]
            v_ref, v_port = ref.read(f"{base}/velocity"), port[f"call_{i}.velocity"]
            halves = [compute(v_ref[h : h + 1], v_port[h : h + 1]).rel_l2 for h in (0, 1)]
            x = compute(ref.read(f"{base}/in/x"), port[f"call_{i}.x"]).rel_l2
            lines.append(f"{i:>4} {float(t_port[0]):>12.9f} {float(t_ref[0]):>12.9f} "
                         f"{float(np.abs(t_port.astype(np.float64) - t_ref).max()):>9.2e} "
                         f"{compute(v_ref, v_port).rel_l2:>15.3e} {halves[0]:>9.2e} {halves[1]:>9.2e} {x:>11.2e}")
        mel = compute(ref.read("vocoder/bigvgan_in"), port["mel"])
        lines.append(f"final mel (vocoder/bigvgan_in): rel-L2 {mel.rel_l2:.3e}, max abs {mel.max_abs:.3e}, "
                     f"cosine {mel.cosine:.9f}")
        for half in ("prompt", "target"):
            name = "prompt_condition" if half == "prompt" else "cond"
            m = compute(ref.read(f"s2mel/length_regulator/{half}/out"), port[name])
            lines.append(f"length regulator {half} ({name}): rel-L2 {m.rel_l2:.3e}, max abs {m.max_abs:.3e}")
    return lines


def main(argv: list[str] | None = None) -> int:
    from harness import embedded
    from harness.configs import FULL
    from ports.indextts_onnx_calls import MAP, TINY_ONNX, export, run_port, versions

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=("tiny-onnx", "full"), default="tiny-onnx")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="ODE steps (default: the config's, 25)")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1: the cores are shared)")
    ap.add_argument("--export-dir", type=Path, default=None, help="export here, always afresh (default: cached)")
    ap.add_argument("--no-summary", action="store_true", help="skip the per-step figures")
    args = ap.parse_args(argv)
    cfg = TINY_ONNX if args.config == "tiny-onnx" else FULL
    if args.steps:
        cfg = cfg.with_(steps=args.steps)

    start = time.perf_counter()
    run = embedded.ensure(cfg, seed=args.seed, replays=False)  # first: the export patches SConv1d
    weights, _ = embedded.default_weights(cfg, args.seed)
    t_ref = time.perf_counter()
    onnx_dir = export(cfg, weights, args.export_dir)
    t_export = time.perf_counter()
    out = ROOT / "reports" / "ports" / f"indextts_onnx_calls-{cfg.name}-{cfg.steps}steps-seed{args.seed}.safetensors"
    run_port(run.reference, weights, cfg, out, onnx_dir=onnx_dir, threads=args.threads)
    t_run = time.perf_counter()
    size = sum(f.stat().st_size for f in onnx_dir.glob("*.onnx*"))
    print(f"port:       {', '.join(f'{k} {v}' for k, v in versions().items())}")
    print(f"reference:  {run.reference}")
    print(f"onnx:       {onnx_dir} ({size / 1e6:.0f} MB)")
    print(f"candidate:  {out} ({out.stat().st_size / 1e6:.1f} MB)")
    print(f"map:        {MAP}")
    print(f"wall time:  {t_run - start:.1f} s (reference {t_ref - start:.1f} s, export {t_export - t_ref:.1f} s, "
          f"port run {t_run - t_export:.1f} s)")
    print(f"compare:    harness compare {run.reference} {out} --map {MAP} --reference64 {run.reference64} --stage dit")
    if not args.no_summary:
        print("\n".join(summary(run.reference, out, cfg.steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
