"""Flag groups shared by several subcommands, composed rather than copied."""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.configs import CONFIGS, PipelineConfig, get_config
from harness.detail import LEVELS
from harness.errors import UserError
from harness.stages.inputs import DEFAULT_TEXT

MAX_STEPS = 1000


def add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and inputs")
    g.add_argument("--config", default="tiny", help=f"embedded configuration: {', '.join(CONFIGS)} (default tiny)")
    g.add_argument("--seed", type=int, default=0, help="seed of the checkpoint, stand-ins and noise (default 0)")
    g.add_argument("--steps", type=int, default=None, help="ODE steps (default: the config's, 25)")
    g.add_argument("--detail", default="default", choices=LEVELS,
                   help="internals to capture: boundary stages only, default (internals of the first and last "
                        "ODE step), or full")
    g.add_argument("--checkpoints", type=Path, default=None,
                   help="a folder with real IndexTTS2 checkpoints (s2mel.pth); use with --config full")
    g.add_argument("--reference-src", type=Path, default=None,
                   help="a clone of the official index-tts repository to use instead of the installed package")
    g.add_argument("--text", default=DEFAULT_TEXT,
                   help=f"the text to speak (default: {DEFAULT_TEXT!r}, two segments on the tiny config)")


def config_from(args: argparse.Namespace) -> PipelineConfig:
    if not args.text.strip():
        raise UserError("--text is empty: upstream makes no segment of it (infer_v2.py:546) and has nothing to speak")
    cfg = get_config(args.config)
    if args.steps is not None:
        if not 1 <= args.steps <= MAX_STEPS:
            raise UserError(f"--steps must be between 1 and {MAX_STEPS}")
        cfg = cfg.with_(steps=args.steps)
    if args.checkpoints is not None and cfg.name != "full":
        raise UserError("--checkpoints holds real-size weights: use it with --config full")
    return cfg
