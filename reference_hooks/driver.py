"""The reference side's driver: upstream's parts, built per part, chained as infer_v2 chains them.

Each part's module here (`reference_hooks/<part>.py`) builds upstream's module from our config and runs it
with its hooks, citing the `infer_v2` lines its glue mirrors; the chaining through boundary stages is
`harness/pipeline.py`, shared with our side. `IndexTTS2` itself is not used here (it downloads its
models and loads all parts at once); a test proves this glue equal to the unmodified class.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

from harness import stages
from harness.configs import PipelineConfig
from harness.detail import Detail
from harness.pipeline import chain
from harness.trace import Trace, TraceWriter
from reference_hooks import cfm, frontend, gpt, gpt_weights, inputs, s2mel, semantic, style, vocoder
from reference_hooks.recorder import Recorder
from reference_hooks.upstream import UpstreamSource
from reference_hooks.weights import seeded_from

RUNNERS = {"inputs": inputs.run, "frontend": frontend.run, "style": style.run, "semantic": semantic.run,
           "gpt": gpt.run, "s2mel": s2mel.run, "cfm": cfm.run, "vocoder": vocoder.run}
BUILDERS = {"style": style.build, "semantic": semantic.build, "gpt": gpt.build, "s2mel": s2mel.build, "cfm": cfm.build,
            "vocoder": vocoder.build}
#: per part with weights: its upstream module (random init), the prefix of its names, buffers kept as computed,
#: and optionally the part's own adjustment of the drawn values (weights, part config) -> weights; or a function
#: (part config, seed) -> weights, for a part with its own scales or several modules
SEEDED = {"style": (style.unbuilt_module, style.PREFIX, ()),
          "semantic": (semantic.unbuilt_module, semantic.PREFIX, semantic.KEEP),
          "gpt": gpt.seeded, "s2mel": s2mel.seeded,
          "cfm": (cfm.unbuilt_module, "cfm", ("freqs", "input_pos")),
          "vocoder": (vocoder.unbuilt_module, vocoder.PREFIX, (".filter",), vocoder.seeded_levels)}
#: parts whose seeded values follow their own rule (CAMPPlus: valid batch-norm running statistics; semantic:
#: layer scales, codebook, and the statistics shipped in the wheel)
GENERATORS = {"style": style.generate, "semantic": semantic.generate}
#: stages a float64 run of the noise floors is handed besides the recorded inputs and draws: the sampled path
#: (the GPT's candidates), so rounding cannot send it down other beams at a near tie
FOLLOWED = ("gpt/seg_{seg}/token_{token}/candidates",)


#: upstream's modules the parts are built from, imported before a build on the meta device: a module first imported
#: inside the meta context keeps meta tensors as its globals (torchaudio's kaldi EPSILON did, and fbank failed)
BUILT_FROM = ("s2mel.modules.campplus.DTDNN", "utils.maskgct_utils", "gpt.model_v2", "s2mel.modules.length_regulator",
              "utils.maskgct.models.codec.amphion_codec.quantize.residual_vq", "s2mel.modules.flow_matching",
              "s2mel.modules.bigvgan.env", "s2mel.modules.bigvgan.bigvgan")


def weight_names(config: PipelineConfig, part: str) -> list[str]:
    """The names a part's checkpoint must hold, read off its modules built on the meta device (no values drawn:
    cheap at real size); the GPT's include its tokenizer's."""
    from reference_hooks.upstream import import_module, load_torchaudio

    load_torchaudio()
    import transformers  # noqa: F401  (its lazy module map, outside the meta context too)
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertModel  # noqa: F401

    for name in BUILT_FROM:
        import_module(name)
    entry = SEEDED[part]
    with torch.device("meta"):
        if part == "gpt":
            return [*gpt_weights.meta_module(config.gpt).state_dict(), *gpt_weights.NOT_IN_GPT_PTH]
        if part == "s2mel":
            return list(s2mel.S2Mel(config.s2mel).state_dict())
        make, prefix, *_ = entry
        return [f"{prefix}.{k}" for k in make(config.part(part)).state_dict()]


def seeded_weights(config: PipelineConfig, part: str, seed: int) -> dict[str, np.ndarray]:
    """A part's seeded checkpoint: upstream's parameter names and shapes, our generator's values."""
    entry = SEEDED[part]
    if callable(entry):
        return entry(config.part(part), seed)
    make, prefix, keep, *adjust = entry
    kw = {"generator": GENERATORS[part]} if part in GENERATORS else {}
    weights = seeded_from(make(config.part(part)), prefix, seed, keep, **kw)
    return adjust[0](weights, config.part(part)) if adjust else weights


def build_parts(config: PipelineConfig, weights: dict[str, dict[str, np.ndarray]], dtype: torch.dtype,
                parts=stages.PARTS) -> dict[str, object]:
    """Upstream's module of every part that has one, weights loaded, in `dtype`."""
    return {p.name: BUILDERS[p.name](config.part(p.name), weights[p.name], dtype)
            for p in parts if p.name in BUILDERS}


class OneAtATime:
    """Upstream's module of each part, built when the part runs and dropped once it has run: at real size the
    parts are never all in memory at once (6.9 GB at float32, twice that in float64 for the noise floors).
    Building draws throw-away initial values from torch's global generator before the seeded weights replace
    them; it runs with that generator's state saved and restored, so the run's own draws (the CFM's noise, the
    GPT's sampling) are those of upstream building everything first, as `IndexTTS2.__init__` does."""

    def __init__(self, config: PipelineConfig, weights: dict[str, dict[str, np.ndarray]], dtype: torch.dtype):
        self.config, self.weights, self.dtype = config, weights, dtype

    def get(self, name: str, default=None):
        if name not in BUILDERS:
            return default
        with torch.random.fork_rng(devices=[]):
            return BUILDERS[name](self.config.part(name), self.weights[name], self.dtype)


#: the parts a precision profile's capture runs under CPU autocast: the networks after the GPT's sampled
#: codes. Upstream's own fp16 mode autocasts the GPT (infer_v2.py:597, :658), but its codes under reduced
#: precision are other codes (other lengths): nothing after them would be comparable, so the GPT, like the
#: front end, style and w2v-bert, stays float32 there (harness/floors.py compute_reduced still floors every
#: stage at its own rounding to the reduced type)
AUTOCAST_PARTS = ("s2mel", "cfm", "vocoder")


def run_parts(models, config: PipelineConfig, given: dict, recorder: Recorder,
              parts=stages.PARTS, source: inputs.Source | None = None, autocast: torch.dtype | None = None) -> dict:
    """Every part in order through the shared chain; `autocast`: the reduced dtype of a precision profile's run."""
    followed = [stages.StageSpec(t, "").regex for t in FOLLOWED]

    def run_part(part, part_inputs):
        model = source if part.name == "inputs" else models.get(part.name)
        path = {p: v for p, v in given.items() if p.startswith(part.name + "/") and any(r.match(p) for r in followed)}
        reduced = autocast is not None and part.name in AUTOCAST_PARTS
        with torch.autocast("cpu", dtype=autocast, enabled=reduced):
            return RUNNERS[part.name](model, config.part(part.name), {**part_inputs, **path}, recorder)

    return chain(parts, run_part, given)


def provenance(config: PipelineConfig, upstream: UpstreamSource, source: inputs.Source, dtype: torch.dtype,
               checkpoint: dict, detail: Detail) -> dict:
    return {
        "implementation": "upstream", **upstream.as_dict(), "torch_version": torch.__version__,
        "config": config.name, "config_json": config.to_dict(), "config_digest": config.digest(),
        "checkpoint": checkpoint, "checkpoint_digest": checkpoint.get("digest"), "seed": source.seed,
        "speaker": str(source.speaker), "text": source.text, "inputs_digest": source.digest(),
        "emo_wav": None if source.emo is None else str(source.emo),
        "dtype": str(dtype).replace("torch.", ""), "threads": torch.get_num_threads(), "detail": detail.to_json(),
        "command": " ".join(sys.argv), "pid": os.getpid(),
    }


def given_from(trace: Trace, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """A trace's recorded inputs and draws, and the path it sampled, cast to `dtype` (a float64 run replays the
    float32 run's)."""
    followed = [stages.StageSpec(t, "").regex for t in FOLLOWED]
    out = {}
    for info in trace.stages():
        if stages.is_given(info.path) or any(r.match(info.path) for r in followed):
            t = torch.from_numpy(trace.read(info.path))
            out[info.path] = t.to(dtype) if t.is_floating_point() else t
    return out


def capture(config: PipelineConfig, weights: dict, source: inputs.Source, out: Path, prov: dict, *,
            dtype: torch.dtype = torch.float32, detail: Detail | None = None, given: dict | None = None,
            publish: bool = True, models: dict | None = None, autocast: torch.dtype | None = None) -> Path:
    """Run the reference once with every hook and write its trace; returns the trace (its temporary name
    when `publish` is False, for a caller that adds noise floors first). `models`: already built parts;
    `autocast`: a precision profile's run (AUTOCAST_PARTS under CPU autocast in that dtype)."""
    detail = detail or Detail("full")
    if not given:
        inputs.check(source.speaker, config.frontend, config.style)
        if source.emo is not None:
            inputs.check_emotion(source.emo)
    models = models if models is not None else OneAtATime(config, weights, dtype)
    torch.manual_seed(source.seed)  # upstream draws its noise from the global generator, as a seeded user run
    writer = TraceWriter(out, prov)
    try:
        recorder = Recorder(writer, detail)
        run_parts(models, config, dict(given or {}), recorder, source=source, autocast=autocast)
        writer.update_provenance(derived_checks=recorder.checks, draws=_draws_note(writer.paths, given))
    except BaseException as exc:
        writer.close(complete=False, reason=f"{type(exc).__name__}: {exc}")
        raise
    return writer.close(complete=True, publish_now=publish)


def _draws_note(recorded: list[str], given: dict | None) -> str:
    drawn = [p for p in recorded if (s := stages.find_spec(p)) is not None and s.draw]
    if given and any(p in given for p in drawn):
        return f"injected: {len(drawn)} recorded draw(s) given to upstream in place of its own"
    return f"recorded: {len(drawn)} draw(s) made by upstream"


def run_plain(models: dict, config: PipelineConfig, source: inputs.Source) -> dict:
    """The same parts with nothing hooked or recorded: what the benchmark times the capture against."""
    torch.manual_seed(source.seed)
    return run_parts(models, config, {}, Recorder(None, Detail("boundary"), hooking=False), source=source)
