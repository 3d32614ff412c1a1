"""Flag groups shared by several subcommands, composed rather than copied."""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.configs import CONFIGS, PipelineConfig, get_config
from harness.detail import LEVELS
from harness.errors import UserError

MAX_STEPS = 1000
#: the embedded default's speaker recording (fixtures/make_speaker.sh made it)
FIXTURE_SPEAKER = Path(__file__).resolve().parents[2] / "fixtures" / "speaker.wav"


def add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and inputs")
    g.add_argument("--config", default="tiny", help=f"embedded configuration: {', '.join(CONFIGS)} (default tiny)")
    g.add_argument("--seed", type=int, default=0, help="seed of the checkpoint, stand-ins and noise (default 0)")
    g.add_argument("--speaker", type=Path, default=FIXTURE_SPEAKER, metavar="WAV",
                   help="the speaker recording (any rate and channel count libsndfile reads; default "
                        "fixtures/speaker.wav)")
    g.add_argument("--steps", type=int, default=None, help="ODE steps (default: the config's, 25)")
    g.add_argument("--detail", default="default", choices=LEVELS,
                   help="internals to capture: boundary stages only, default (internals of the first and last "
                        "ODE step), or full")
    g.add_argument("--checkpoints", type=Path, default=None,
                   help="a folder with real IndexTTS2 checkpoints (s2mel.pth); use with --config full")
    g.add_argument("--reference-src", type=Path, default=None,
                   help="a clone of the official index-tts repository to use instead of the installed package")


def speaker_from(args: argparse.Namespace) -> Path:
    """The --speaker file, checked to exist (its content is checked when it is loaded)."""
    path = Path(args.speaker).expanduser()
    if not path.is_file():
        raise UserError(f"--speaker {args.speaker}: no such file")
    return path.resolve()


def config_from(args: argparse.Namespace) -> PipelineConfig:
    cfg = get_config(args.config)
    if args.steps is not None:
        if not 1 <= args.steps <= MAX_STEPS:
            raise UserError(f"--steps must be between 1 and {MAX_STEPS}")
        cfg = cfg.with_(steps=args.steps)
    if args.checkpoints is not None and cfg.name != "full":
        raise UserError("--checkpoints holds real-size weights: use it with --config full")
    return cfg
