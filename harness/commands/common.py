"""Flag groups shared by several subcommands, composed rather than copied."""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.configs import CONFIGS, PipelineConfig, get_config
from harness.detail import Detail, parse
from harness.errors import UserError
from harness.limits import MAX_SEED, MAX_STEPS
from harness.stages.inputs import DEFAULT_TEXT

#: the embedded default's speaker recording (fixtures/make_speaker.sh made it)
FIXTURE_SPEAKER = Path(__file__).resolve().parents[2] / "fixtures" / "speaker.wav"
#: the porter's path, shown under every command a porter meets
PORTER_PATH = """a porter's path (docs/example.map.toml is a complete, commented map):
  harness capture -o ref.h5                        upstream, hooked, with its noise floors
  harness export-inputs ref.h5 -o inputs/          what your port needs to replay it exactly
  harness export-weights ref.h5 -o weights/        the weights it ran, under upstream's names, for your port
  (run your port on inputs/, dump its tensors as .safetensors, .npz or .npy under its own names)
  harness stages --schema                          every stage you can map a tensor onto
  harness compare ref.h5 port.safetensors --map port.map.toml
exit codes: 0 pass, 1 divergence (or nothing compared), 2 bad input or usage, 3 internal error (crash log)"""


def detail_level(text: str) -> str:
    """--detail's value, checked here so a misspelt level or part is argparse's one line."""
    try:
        level, parts = parse(text)
        Detail(level, full_parts=parts)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and inputs")
    g.add_argument("--config", default=None, help=f"embedded configuration: {', '.join(CONFIGS)} (default tiny, or the "
                                                  "one an official --checkpoints layout describes)")
    g.add_argument("--seed", type=int, default=0, help="seed of the checkpoint, stand-ins and noise (default 0)")
    g.add_argument("--speaker", type=Path, default=FIXTURE_SPEAKER, metavar="WAV",
                   help="the speaker recording (any rate and channel count libsndfile reads; default "
                        "fixtures/speaker.wav)")
    g.add_argument("--emo-wav", type=Path, default=None, metavar="WAV",
                   help="an emotion recording (upstream's emo_audio_prompt; default: the speaker recording, as upstream)")
    g.add_argument("--emo-vector", type=emotion_weights, default=None, metavar="W,W,W,W,W,W,W,W",
                   help="upstream's emo_vector: a weight per emotion (happy, angry, sad, afraid, disgusted, melancholic, "
                        "surprised, calm), mixing rows of the emotion matrix (feat2.pt) into the GPT's conditioning")
    g.add_argument("--emo-random", action="store_true",
                   help="with --emo-vector: upstream's use_random, each emotion's row drawn (recorded, then replayed) "
                        "instead of the one nearest the speaker's style")
    g.add_argument("--emo-alpha", type=float, default=None, metavar="A",
                   help="upstream's emo_alpha (default 1.0): with --emo-wav how much of its condition the GPT mixes in; "
                        "with --emo-vector the scale of the weights; without either upstream always uses 1.0")
    g.add_argument("--steps", type=int, default=None, help="ODE steps (default: the config's, 25)")
    g.add_argument("--detail", default="default", type=detail_level, metavar="LEVEL",
                   help="internals to capture: boundary (boundary stages only), default (internals of the first and "
                        "last ODE step and token), full, or full:PART[,PART] (default, plus every internal of those "
                        "parts)")
    g.add_argument("--checkpoints", type=Path, default=None, metavar="DIR",
                   help="IndexTTS2's checkpoint folder in the official layout (config.yaml, gpt.pth, s2mel.pth, "
                        "bpe.model, the w2v statistics; the hub's models in the Hugging Face cache), or a folder with "
                        "s2mel.pth alone (then --config full, the other parts seeded)")
    g.add_argument("--hf-cache", type=Path, default=None, metavar="DIR",
                   help="the Hugging Face hub cache holding w2v-bert, the codec, CAMPPlus and BigVGAN for --checkpoints "
                        "(default: huggingface_hub's, which HF_HOME and HF_HUB_CACHE set)")
    g.add_argument("--reference-src", type=Path, default=None,
                   help="a clone of the official index-tts repository to use instead of the installed package")
    g.add_argument("--text", default=DEFAULT_TEXT,
                   help=f"the text to speak (default: {DEFAULT_TEXT!r}, two segments on the tiny config)")
    g.add_argument("--max-tokens", type=int, default=None, metavar="N",
                   help="the cap on the GPT's generated codes per segment (default: the config's, 16 on tiny); random "
                        "weights never draw the stop code, so each segment then generates exactly N")


def emotion_weights(text: str) -> tuple[float, ...]:
    """--emo-vector's comma-separated weights, each a finite number between -1000 and 1000."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated numbers, e.g. 0.3,0,0,0,0,0,0,0.2") from None
    if not all(v == v and abs(v) <= 1e3 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: every weight must be a number between -1000 and 1000")
    return values


def _existing(value: Path, flag: str) -> Path:
    """A recording named on the command line, checked to exist (its content is checked when it is loaded)."""
    path = Path(value).expanduser()
    if not path.is_file():
        raise UserError(f"{flag} {value}: no such file")
    return path.resolve()


def speaker_from(args: argparse.Namespace) -> Path:
    """The --speaker file."""
    return _existing(args.speaker, "--speaker")


def emo_from(args: argparse.Namespace) -> Path | None:
    """The --emo-wav file, or None."""
    return None if args.emo_wav is None else _existing(args.emo_wav, "--emo-wav")


def config_from(args: argparse.Namespace) -> PipelineConfig:
    if not args.text.strip():
        raise UserError("--text is empty: upstream makes no segment of it (infer_v2.py:546) and has nothing to speak")
    cfg = base_config(args)
    if args.steps is not None:
        if not 1 <= args.steps <= MAX_STEPS:
            raise UserError(f"--steps must be between 1 and {MAX_STEPS} (MAX_STEPS)")
        cfg = cfg.with_(steps=args.steps)
    if args.max_tokens is not None:
        if not 1 <= args.max_tokens <= cfg.gpt.max_mel_tokens:
            raise UserError(f"--max-tokens must be between 1 and {cfg.gpt.max_mel_tokens} (the GPT's mel positions on "
                            f"the {cfg.name} config)")
        cfg = cfg.with_(gpt__max_tokens=args.max_tokens)
    if args.emo_vector is not None:
        if args.emo_wav is not None:
            raise UserError("--emo-vector and --emo-wav: upstream drops the emotion recording when a vector is given "
                            "(infer_v2.py:497-500); give one of them")
        if len(args.emo_vector) != len(cfg.gpt.emo_num):
            raise UserError(f"--emo-vector has {len(args.emo_vector)} weights; the {cfg.name} config has "
                            f"{len(cfg.gpt.emo_num)} emotions (emo_num)")
        cfg = cfg.with_(gpt__emo_vector=tuple(args.emo_vector), gpt__emo_random=bool(args.emo_random))
    elif args.emo_random:
        raise UserError("--emo-random draws the rows of an emotion vector: give --emo-vector too")
    if args.emo_alpha is not None:
        if args.emo_wav is None and args.emo_vector is None:
            raise UserError("--emo-alpha mixes in an emotion recording or scales an emotion vector: give --emo-wav or "
                            "--emo-vector too (without either upstream uses alpha 1.0, infer_v2.py:521-525)")
        if not (args.emo_alpha == args.emo_alpha and abs(args.emo_alpha) <= 1e3):
            raise UserError("--emo-alpha must be a number between -1000 and 1000")
        cfg = cfg.with_(gpt__emo_alpha=float(args.emo_alpha))
    if not 0 <= args.seed <= MAX_SEED:
        raise UserError(f"--seed must be between 0 and {MAX_SEED} (MAX_SEED)")
    if args.reference_src is not None:
        from harness.files import input_file

        input_file(args.reference_src, "--reference-src", folder_ok=True)
    return cfg


def base_config(args: argparse.Namespace) -> PipelineConfig:
    """--config, or the config an official --checkpoints layout describes (both given, they must agree)."""
    if args.hf_cache is not None and args.checkpoints is None:
        raise UserError("--hf-cache is where --checkpoints finds the hub's models: give --checkpoints too")
    if args.checkpoints is None:
        return get_config(args.config or "tiny")
    from harness.commands import models
    from harness.files import input_file

    input_file(args.checkpoints, "--checkpoints", folder_ok=True)
    if args.hf_cache is not None:
        input_file(args.hf_cache, "--hf-cache", folder_ok=True)
    described = models.checkpoint_config(args.checkpoints, args.hf_cache)
    if described is None:  # s2mel.pth alone: real-size weights
        if args.config != "full":
            raise UserError("--checkpoints without config.yaml holds real-size s2mel weights: use it with --config full")
        return get_config("full")
    if args.config is not None and args.config != described.name:
        raise UserError(f"--checkpoints {args.checkpoints} describes the {described.name} architecture, not "
                        f"--config {args.config}; drop --config")
    return described


def file_safe(text: str) -> str:
    """`text` as part of a file name: every character but letters and digits becomes `_`."""
    return "".join(ch if ch.isalnum() else "_" for ch in text)


def run_suffix(args: argparse.Namespace) -> str:
    """The part of an output's name that follows from the run's options beyond config, steps and seed: the detail,
    the token cap, another recording or text (so two runs that differ never share a name)."""
    import hashlib

    name = "" if args.detail == "default" else "-" + file_safe(args.detail)
    name += "" if args.max_tokens is None else f"-{args.max_tokens}tokens"
    if Path(args.speaker).resolve() != FIXTURE_SPEAKER:
        name += f"-{Path(args.speaker).stem}"
    if args.text != DEFAULT_TEXT:
        name += "-text" + hashlib.sha256(args.text.encode("utf-8")).hexdigest()[:8]
    if args.emo_wav is not None:
        name += f"-emo_{Path(args.emo_wav).stem}"
    if args.emo_vector is not None:
        name += "-emovec" + hashlib.sha256(repr(args.emo_vector).encode()).hexdigest()[:8]
        name += "-random" if args.emo_random else ""
    if args.emo_alpha is not None:
        name += f"-alpha{args.emo_alpha:g}"
    return name
