"""The stage schema: every tensor a trace may hold, with its declared layout and CFG arrangement.

This is the one contract between `reference_hooks/` (which writes what upstream computes),
`reimpl/` (which writes what we compute) and `harness/` (which compares the two). A path that no
template here matches cannot be written or selected.

Paths are slash-separated; ODE steps and transformer blocks are zero-padded to two digits so that
lexical and numeric order agree.
"""
from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass

from harness.errors import UserError

# CFG arrangement of a tensor. "both": the batched estimator call, conditional half first on axis 0.
CFG_NONE, CFG_COND, CFG_UNCOND, CFG_BOTH = "none", "cond", "uncond", "both"
HALVES = (CFG_COND, CFG_UNCOND)


@dataclass(frozen=True)
class StageSpec:
    """A template of stage paths that share a meaning, a layout and a CFG arrangement."""

    template: str  # e.g. "cfm/step_{step}/dit/block_{block}/attn_norm"
    layout: str  # axis names, e.g. "B C T"
    cfg: str = CFG_NONE
    derived: bool = False  # recomputed from hooked tensors rather than hooked itself
    doc: str = ""

    @property
    def regex(self) -> re.Pattern:
        pattern = re.escape(self.template)
        for name in ("step", "block", "layer", "half"):
            pattern = pattern.replace(re.escape("{" + name + "}"), _FIELD[name])
        return re.compile(pattern + r"\Z")


_FIELD = {
    "step": r"(?P<step>\d{2})",
    "block": r"(?P<block>\d{2})",
    "layer": r"(?P<layer>\d+)",
    "half": r"(?P<half>prompt|target)",
}

_LR = "s2mel/length_regulator/{half}"
_STEP = "cfm/step_{step}"
_DIT = _STEP + "/dit"

STAGES: tuple[StageSpec, ...] = (
    # top inputs: everything random is recorded, never drawn again
    StageSpec("inputs/speaker_wav", "B S", doc="speaker recording at the mel sample rate"),
    StageSpec("inputs/prompt_mel", "B C T", doc="speaker mel from the upstream mel function"),
    StageSpec("inputs/prompt_content", "B T C", doc="content features of the speaker (semantic codec embedding)"),
    StageSpec("inputs/target_content", "B T C", doc="content features of the text to speak (codes + GPT latent)"),
    StageSpec("inputs/style", "B C", doc="speaker style vector (CAMPPlus)"),
    StageSpec("inputs/noise", "B C T", doc="CFM start noise z, times temperature"),
    # length regulator, once for the prompt and once for the target
    StageSpec(_LR + "/in", "B T C", doc="content features in"),
    StageSpec(_LR + "/proj", "B T C", doc="content_in_proj"),
    StageSpec(_LR + "/interp", "B C T", doc="nearest interpolation to the mel length"),
    StageSpec(_LR + "/block_{layer}", "B C T", doc="Conv1d k3 -> GroupNorm(1) -> Mish"),
    StageSpec(_LR + "/out_conv", "B C T", doc="final 1x1 Conv1d"),
    StageSpec(_LR + "/out", "B T C", doc="masked output"),
    # CFM set-up
    StageSpec("cfm/mu", "B T C", doc="concat(prompt condition, target condition) along time"),
    StageSpec("cfm/prompt_x", "B C T", doc="zeros with the first prompt frames set to the prompt mel"),
    StageSpec("cfm/x_init", "B C T", doc="noise with the prompt frames zeroed"),
    # one ODE step: estimator inputs (batched CFG, conditional half first)
    StageSpec(_DIT + "/in/x", "B C T", CFG_BOTH, doc="x_t, the same in both halves"),
    StageSpec(_DIT + "/in/prompt_x", "B C T", CFG_BOTH, doc="prompt_x; zeros in the uncond half"),
    StageSpec(_DIT + "/in/t", "B", CFG_BOTH, doc="the time fed to the estimator"),
    StageSpec(_DIT + "/in/style", "B C", CFG_BOTH, doc="style; zeros in the uncond half"),
    StageSpec(_DIT + "/in/mu", "B T C", CFG_BOTH, doc="content condition; zeros in the uncond half"),
    # DiT internals
    StageSpec(_DIT + "/t_embed", "B C", CFG_BOTH, doc="t_embedder: sinusoid of 1000 t (cos, sin) -> MLP"),
    StageSpec(_DIT + "/cond_proj", "B T C", CFG_BOTH, doc="cond_projection(mu)"),
    StageSpec(_DIT + "/x_in", "B T C", CFG_BOTH, doc="concat(x, prompt_x, cond, style) before the merge"),
    StageSpec(_DIT + "/merge", "B T C", CFG_BOTH, doc="cond_x_merge_linear"),
    StageSpec(_DIT + "/block_{block}/skip_in", "B T C", CFG_BOTH, doc="UViT skip merge: Linear(concat(x, skip))"),
    StageSpec(_DIT + "/block_{block}/attn_norm", "B T C", CFG_BOTH, doc="adaptive RMSNorm before attention"),
    StageSpec(_DIT + "/block_{block}/attn_out", "B T C", CFG_BOTH, doc="attention output (before residual)"),
    StageSpec(_DIT + "/block_{block}/ffn_norm", "B T C", CFG_BOTH, doc="adaptive RMSNorm before the FFN"),
    StageSpec(_DIT + "/block_{block}/ffn_out", "B T C", CFG_BOTH, doc="SwiGLU FFN output (before residual)"),
    StageSpec(_DIT + "/block_{block}/out", "B T C", CFG_BOTH, doc="block output"),
    StageSpec(_DIT + "/final_norm", "B T C", CFG_BOTH, doc="adaptive RMSNorm after the last block"),
    StageSpec(_DIT + "/long_skip", "B T C", CFG_BOTH, doc="skip_linear(concat(transformer out, x))"),
    StageSpec(_DIT + "/conv1", "B T C", CFG_BOTH, doc="conv1 (a Linear) into the WaveNet width"),
    StageSpec(_DIT + "/t_embed2", "B C", CFG_BOTH, doc="t_embedder2, the WaveNet condition"),
    StageSpec(_DIT + "/wavenet/layer_{layer}", "B C T", CFG_BOTH, doc="res/skip conv output of one WaveNet layer"),
    StageSpec(_DIT + "/wavenet/out", "B C T", CFG_BOTH, doc="WaveNet skip sum, masked"),
    StageSpec(_DIT + "/res_proj", "B T C", CFG_BOTH, doc="res_projection(long skip), added to the WaveNet output"),
    StageSpec(_DIT + "/final_layer/shift", "B C", CFG_BOTH, doc="first chunk of adaLN_modulation(t1)"),
    StageSpec(_DIT + "/final_layer/scale", "B C", CFG_BOTH, doc="second chunk of adaLN_modulation(t1)"),
    StageSpec(_DIT + "/final_layer/norm", "B T C", CFG_BOTH, doc="LayerNorm without affine, eps 1e-6"),
    StageSpec(_DIT + "/final_layer/modulated", "B T C", CFG_BOTH, doc="norm * (1 + scale) + shift"),
    StageSpec(_DIT + "/final_layer/out", "B T C", CFG_BOTH, doc="weight-normalised Linear"),
    StageSpec(_DIT + "/velocity", "B C T", CFG_BOTH, doc="conv2: the estimator output"),
    # CFG mix and Euler update (inline upstream, so mixed and next x are derived)
    StageSpec(_STEP + "/v_cond", "B C T", CFG_COND, doc="conditional velocity"),
    StageSpec(_STEP + "/v_uncond", "B C T", CFG_UNCOND, doc="unconditional velocity"),
    StageSpec(_STEP + "/v_cfg", "B C T", derived=True, doc="(1 + r) v_cond - r v_uncond"),
    StageSpec(_STEP + "/x_next", "B C T", derived=True, doc="x + dt v_cfg, prompt frames zeroed"),
    StageSpec("cfm/mel_out", "B C T", doc="CFM output, prompt frames included"),
    StageSpec("vocoder/bigvgan_in", "B C T", doc="the generated mel handed to BigVGAN: mel_out minus the prompt frames"),
)

#: Named groups a user can select by one word; anything else is a path prefix.
GROUPS: dict[str, tuple[str, ...]] = {
    "inputs": ("inputs/",),
    "lr": ("s2mel/length_regulator/",),
    "length_regulator": ("s2mel/length_regulator/",),
    "cfm": ("cfm/",),
    "dit": ("cfm/", "vocoder/bigvgan_in"),  # the DiT with what surrounds it: inputs, CFG mix, Euler update, mel
    "vocoder": ("vocoder/",),
}


_COMPILED = [(spec.regex, spec) for spec in STAGES]


@functools.lru_cache(maxsize=65536)
def find_spec(path: str) -> StageSpec | None:
    for regex, spec in _COMPILED:
        if regex.match(path):
            return spec
    return None


def spec_for(path: str) -> StageSpec:
    spec = find_spec(path)
    if spec is None:
        raise UserError(f"{path!r} is not a stage of the schema (see `harness stages --schema`)")
    return spec


def step_path(step: int, name: str) -> str:
    return f"cfm/step_{step:02d}/{name}"


def dit_path(step: int, name: str) -> str:
    return f"cfm/step_{step:02d}/dit/{name}"


def block_path(step: int, block: int, name: str) -> str:
    return f"cfm/step_{step:02d}/dit/block_{block:02d}/{name}"


def lr_path(half: str, name: str) -> str:
    return f"s2mel/length_regulator/{half}/{name}"


def step_of(path: str) -> int | None:
    m = re.search(r"(?:^|/)step_(\d+)(?:/|$)", path)
    return int(m.group(1)) if m else None


def _example_paths(spec: StageSpec, numbers: dict[str, str]) -> list[str]:
    return [spec.template.format(half=h, **numbers) for h in ("prompt", "target")]


def _numbers_in(selection: str) -> dict[str, str]:
    """Step, block and layer numbers named in a selection, so examples can be built to test it."""
    found = {"step": "00", "block": "00", "layer": "0"}
    for word, key in (("step", "step"), ("block", "block"), ("layer", "layer")):
        m = re.search(rf"{word}_(\d+)", selection)
        if m:
            found[key] = f"{int(m.group(1)):02d}" if key != "layer" else str(int(m.group(1)))
    m = re.search(r"block_(\d+)", selection)
    if m and "length_regulator" in selection:
        found["layer"] = str(int(m.group(1)))
    return found


def selector(stage: str | None):
    """Return a predicate on paths for a `--stage` argument; unknown selections are a UserError.

    A selection is a group name (`dit`, `lr`), a glob (`cfm/step_0*/dit/velocity`), or a prefix of
    path segments that may start at any segment (`dit/block_03` selects that block in every step).
    """
    if not stage:
        return lambda path: True
    stage = stage.strip("/")
    if stage in GROUPS:
        prefixes = GROUPS[stage]
        pred = lambda path: path.startswith(prefixes)  # noqa: E731
    elif any(ch in stage for ch in "*?["):
        pred = lambda path: fnmatch.fnmatchcase(path, stage) or fnmatch.fnmatchcase(path, stage + "/*")  # noqa: E731
    else:
        want = stage.split("/")

        def pred(path: str) -> bool:
            parts = path.split("/")
            return any(_segments_match(parts[i : i + len(want)], want) for i in range(len(parts)))

    # a selection must name something the schema can hold, whatever the trace holds
    numbers = _numbers_in(stage)
    examples = [p for spec in STAGES for p in _example_paths(spec, numbers)]
    if not any(pred(p) for p in examples):
        raise UserError(f"unknown stage {stage!r}: no stage of the schema matches it (groups: {', '.join(GROUPS)})")
    return pred


def _segments_match(parts: list[str], want: list[str]) -> bool:
    if len(parts) < len(want):
        return False
    for got, w in zip(parts, want):
        if got == w:
            continue
        # "step_3" or "block_3" selects the zero-padded "step_03"
        m = re.fullmatch(r"(step|block|layer)_(\d+)", w)
        if m and re.fullmatch(rf"{m.group(1)}_0*{int(m.group(2))}", got):
            continue
        return False
    return True
