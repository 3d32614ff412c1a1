"""Our capture's glue against the unmodified IndexTTS2 class: the class hooked by our own parts' hook installers,
and our glue run on the boundary the class computed, both recorded stage by stage.

    python -m reference_hooks.class_check OUT_DIR [--max-mel-tokens N]    (writes OUT_DIR/class_check.{json,npz})

It runs in a process of its own (upstream_class.prepare); tests/test_glue_equals_class.py reads what it writes.
Two tables decide what is compared, and each part that lands extends them:
- ATTACHED: each of our parts, in pipeline order, with the object of the class its hook installer is attached
  to. The class's run records these parts' stages; our glue runs the same parts (`driver.run_parts`) and
  records the same stages.
- GIVEN: the stages our glue consumes that no part of ours computes yet (stand-ins in our capture), with the
  place in the class where they are taken. A part that lands moves from GIVEN to ATTACHED.
Random draws the class makes inside an attached part (the CFM's noise) are recorded by that part's installer
and handed to our glue as our capture hands them to a replay. The text is one segment: with several, the class
runs every part per segment while our glue runs part after part, so the orders would differ by design.
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness import stages
from harness.detail import for_config
from harness.files import atomic
from harness.stages.vocoder import SEG as VOCODER_SEG
from reference_hooks import cfm, driver, official_layout, s2mel, upstream_class
from reference_hooks.inputs import FIXTURE_WAV, Source
from reference_hooks.recorder import MemoryWriter, Recorder, hooked

TEXT = "Hello world. This is a small test."
RESULT = "class_check"


@dataclass(frozen=True)
class Attached:
    part: str  # our part
    where: str  # the class's object it hooks, and the infer_v2 lines that call it
    attach: Callable  # (hooks, tts, recorder) -> None


@dataclass(frozen=True)
class Given:
    stage: str  # a stage template our glue consumes
    where: str  # what the class computes there
    tap: Callable  # (hooks, tts, keep(path, tensor)) -> None


def _inputs(hooks, tts, rec: Recorder) -> None:
    mel_fn = tts.mel_fn

    def observed(audio):
        rec("inputs/speaker_wav", audio)
        return rec("inputs/prompt_mel", mel_fn(audio))

    hooks.patch(tts, "mel_fn", observed)


def _vocoder(hooks, tts, rec: Recorder) -> None:
    segments = itertools.count()
    hooks.pre(tts.bigvgan, lambda _m, args: rec(stages.seg_path(VOCODER_SEG, next(segments)) + "/bigvgan_in", args[0]))


def _prompt_content(hooks, tts, keep) -> None:
    quantize = tts.semantic_codec.quantize

    def observed(*args, **kwargs):
        out = quantize(*args, **kwargs)
        keep("semantic/codec/emb", out[1])
        return out

    hooks.patch(tts.semantic_codec, "quantize", observed)


def _target_content(hooks, tts, keep) -> None:
    calls = itertools.count()

    def observed(_m, args):
        n = next(calls)
        if n > 0:  # call 0 is the prompt half
            keep(stages.seg_path("inputs/seg_{seg}/target_content", n - 1), args[0])

    hooks.pre(tts.s2mel.models["length_regulator"], observed)


ATTACHED = (
    Attached("inputs", "mel_fn: its input audio_22k and its output ref_mel (infer_v2.py:351,360)", _inputs),
    Attached("s2mel", 's2mel.models["length_regulator"] (infer_v2.py:368-370 prompt, :684-686 each segment)',
             lambda hooks, tts, rec: s2mel.attach(hooks, tts.s2mel.models["length_regulator"], rec)),
    Attached("cfm", 's2mel.models["cfm"].inference, its estimator and its noise (infer_v2.py:688-696)',
             lambda hooks, tts, rec: cfm.attach(hooks, tts.s2mel.models["cfm"], rec)),
    Attached("vocoder", "bigvgan's input (infer_v2.py:697,701)", _vocoder),
)
GIVEN = (
    Given("semantic/codec/emb", "S_ref = semantic_codec.quantize(spk_cond_emb)[1] (infer_v2.py:359)", _prompt_content),
    Given("inputs/style", "campplus_model(fbank - mean) (infer_v2.py:362-366)",
          lambda hooks, tts, keep: hooks.forward(tts.campplus_model, lambda _m, _a, out: keep("inputs/style", out))),
    Given("inputs/seg_{seg}/target_content", "S_infer = vq2emb(codes) + gpt_layer(latent), the length regulator's "
          "input after the prompt's (infer_v2.py:678-681)", _target_content),
)


def compared(path: str) -> bool:
    """Stand-ins are ours alone (the class computes the real thing, handed to our glue through GIVEN)."""
    return not stages.spec_for(path).stand_in


def record_class(tts, config, speaker: Path, text: str, max_mel_tokens: int, seed: int):
    """One `infer` of the class with every ATTACHED installer and GIVEN tap: (stages, given, checks, output)."""
    recorder = Recorder(MemoryWriter(), for_config("default", config))
    given: dict[str, torch.Tensor] = {}
    keep = lambda path, t: given.__setitem__(path, t.detach().clone())  # noqa: E731
    with hooked() as hooks:
        for a in ATTACHED:
            a.attach(hooks, tts, recorder)
        for g in GIVEN:
            g.tap(hooks, tts, keep)
        _, wav = upstream_class.infer(tts, speaker, text, max_mel_tokens, seed)
    items = recorder.writer.items
    given.update({p: torch.from_numpy(a) for p, a in items if stages.spec_for(p).draw})
    return items, given, recorder.checks, wav


def record_glue(config, seed: int, given: dict[str, torch.Tensor], speaker: Path):
    """Our capture's glue (`driver.run_parts`) over the ATTACHED parts, from the class's GIVEN and draws."""
    recorder = Recorder(MemoryWriter(), for_config("default", config))
    weights = {part: driver.seeded_weights(config, part, seed) for part in driver.SEEDED}
    parts = tuple(stages.part(a.part) for a in ATTACHED)
    models = driver.build_parts(config, weights, torch.float32, parts)
    produced = {}
    if parts[0].name == "inputs":  # it reads the recording itself; its stand-ins give way to the class's values
        produced = driver.run_parts(models, config, {}, recorder, parts=parts[:1], source=Source(speaker=speaker))
        parts = parts[1:]
    driver.run_parts(models, config, {**produced, **given}, recorder, parts=parts)
    return [(p, a) for p, a in recorder.writer.items if compared(p)], recorder.checks


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--max-mel-tokens", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0, help="the seeded weights' seed")
    ap.add_argument("--infer-seed", type=int, default=1234, help="torch, random and numpy seed before each infer")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (both sides run in this process with the "
                    "same number; on a shared 2-core machine two threads wait on each other, 5x slower here)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    config, seconds, t = official_layout.CLASS_CONFIG, {}, time.perf_counter()
    if (config.cfm.steps, config.cfm.cfg_rate) != (25, 0.7):
        raise SystemExit("the class always runs 25 steps at CFG rate 0.7 (infer_v2.py:676-677)")
    layout = official_layout.locate(config, args.seed)
    upstream = upstream_class.prepare(layout)
    official_layout.ensure(config, args.seed)
    seconds["layout"], t = time.perf_counter() - t, time.perf_counter()
    tts = upstream_class.build(layout)
    seconds["build"], t = time.perf_counter() - t, time.perf_counter()
    loaded = [c.to_dict() for c in upstream_class.check_loaded(tts, layout)]
    run = (FIXTURE_WAV, TEXT, args.max_mel_tokens, args.infer_seed)
    class_items, given, class_checks, wav = record_class(tts, config, *run)
    seconds["infer_hooked"], t = time.perf_counter() - t, time.perf_counter()
    _, plain = upstream_class.infer(tts, *run)
    seconds["infer_plain"], t = time.perf_counter() - t, time.perf_counter()
    glue_items, glue_checks = record_glue(config, args.seed, given, FIXTURE_WAV)
    seconds["glue"] = time.perf_counter() - t
    arrays = {f"class_{i:04d}": a for i, (_, a) in enumerate(class_items)}
    arrays |= {f"glue_{i:04d}": a for i, (_, a) in enumerate(glue_items)}
    arrays |= {"output_hooked": wav, "output_plain": plain}
    meta = {
        "class_paths": [p for p, _ in class_items], "glue_paths": [p for p, _ in glue_items],
        "given": sorted(given), "checks": {"class": class_checks, "glue": glue_checks}, "loaded": loaded,
        "attached": [(a.part, a.where) for a in ATTACHED], "given_from": [(g.stage, g.where) for g in GIVEN],
        "upstream": upstream.as_dict(), "layout": str(layout.root), "text": TEXT, "speaker": str(FIXTURE_WAV),
        "max_mel_tokens": args.max_mel_tokens, "seconds": seconds, "cpu_seconds": time.process_time(),
        "threads": torch.get_num_threads(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic(args.out / f"{RESULT}.npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    with atomic(args.out / f"{RESULT}.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
