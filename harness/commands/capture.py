"""Run the unmodified upstream s2mel with forward hooks and write every stage to a trace.

The inputs are the embedded default (the fixture recording's mel, seeded content features, style and
noise) and the seeded checkpoint of the config, or real weights with --checkpoints.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands.common import add_model_flags, config_from

REPORTS = Path(__file__).resolve().parent.parent.parent / "reports"


def add_parser(sub) -> None:
    p = sub.add_parser("capture", help="capture a reference trace from upstream", description=__doc__)
    p.add_argument("-o", "--output", type=Path, default=None, help="trace path (default reports/traces/...)")
    add_model_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness import embedded

    cfg = config_from(args)
    embedded._quiet_upstream()
    import torch

    from reference_hooks import driver
    from reference_hooks.inputs import make_inputs
    from reference_hooks.upstream import load_upstream

    source = load_upstream(args.reference_src)
    weights, ckpt = (embedded.real_weights(args.checkpoints) if args.checkpoints
                     else embedded.default_weights(cfg, args.seed))
    out = args.output or REPORTS / "traces" / f"reference-{cfg.name}-seed{args.seed}.h5"
    prov = driver.provenance(cfg, source, args.seed, torch.float32, ckpt["digest"]) | {"checkpoint": ckpt}
    driver.capture(cfg, weights, make_inputs(cfg, args.seed), out, prov, args.seed)
    print(f"reference trace: {out}")
    return 0
