"""Our capture's glue against the unmodified IndexTTS2 class: the class hooked by our own parts' hook installers,
and our glue run from the same recording with what the class computed at the parts' boundary, both recorded
stage by stage.

    python -m reference_hooks.class_check OUT_DIR [--max-mel-tokens N]    (writes OUT_DIR/class_check.{json,npz})

It runs in a process of its own (upstream_class.prepare); tests/test_glue_equals_class.py reads what it writes.
Two tables decide what is compared, and each part that lands extends them:
- ATTACHED: each of our parts, in pipeline order, with the objects of the class its hook installer is attached
  to. The class's run records these parts' stages; our glue runs the same parts (`driver.run_parts`, after the
  `inputs` part read the recording, as our capture does) and records the same stages.
- GIVEN: the stages our glue consumes that no part of ours computes yet (stand-ins in our capture), with the
  place in the class where they are taken. A part that lands moves from GIVEN to ATTACHED.
The `inputs` part itself (the recording at the file's own rate) is not compared: the class decodes the file
inside `librosa.load` (infer_v2.py:313), where nothing of it is observable; its first observable value is
`_load_and_cut_audio`'s output, frontend/wav. Random draws the class makes inside an attached part (the CFM's
noise) are recorded by that part's installer and handed to our glue as our capture hands them to a replay.
The class's final int16 output (what `infer` returns, [S, 1]) is recorded as vocoder/int16, transposed back to
the stage's [1, S]. Each text is run on both sides (RUNS): one segment, and two (the 200 ms join runs). The
class interleaves parts (the emotion path's load, frontend/emo_wav_16k at :391, comes after the speaker
conditioning at :350-370; with several segments s2mel, cfm and vocoder run per segment) where our glue runs
part after part: the stages of each part come in the same order on both sides, and are compared by name.
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
from reference_hooks import cfm, driver, frontend, official_layout, s2mel, style, upstream_class, vocoder
from reference_hooks.inputs import FIXTURE_WAV, Source
from reference_hooks.recorder import MemoryWriter, Recorder, hooked
from reference_hooks.upstream import import_module

TEXT = "Hello world. This is a small test."
RESULT = "class_check"
#: run name -> (text, max_text_tokens_per_segment): TEXT's sentences are 4 and 6 BPE tokens; at 120 (the
#: class's default) they make one segment, at 8 two (utils/front.py:513-601: 4 + 6 > 8 and > 8 / 2)
RUNS = {"one_segment": (TEXT, 120), "two_segments": (TEXT, 8)}


@dataclass(frozen=True)
class Attached:
    part: str  # our part
    where: str  # the class's objects it hooks, and the infer_v2 lines that call them
    attach: Callable  # (hooks, tts, recorder, config) -> None


@dataclass(frozen=True)
class Given:
    stage: str  # a stage template our glue consumes
    where: str  # what the class computes there
    tap: Callable  # (hooks, tts, keep(path, tensor)) -> None


def _vocoder(hooks, tts, rec: Recorder, config) -> None:
    pos = vocoder.attach(hooks, tts.bigvgan, rec, config.vocoder)
    vocoder.attach_output(hooks, tts, rec, config.vocoder, pos)


def _prompt_content(hooks, tts, keep) -> None:
    quantize = tts.semantic_codec.quantize

    def observed(*args, **kwargs):
        out = quantize(*args, **kwargs)
        keep("inputs/prompt_content", out[1])
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
    Attached("frontend", "_load_and_cut_audio's output (:350 wav; :391 emo_wav_16k; librosa.load's steps inside "
             "it not observable), torchaudio.transforms.Resample as infer_v2 reaches it (:351-352), mel_fn (:360) "
             "with mel_spectrogram's torch.stft/matmul tapped",
             lambda hooks, tts, rec, config: frontend.attach(hooks, tts, rec, config.frontend)),
    Attached("style", "torchaudio.compliance.kaldi.fbank as infer_v2 reaches it (:362-364; inside it kaldi's "
             "_get_strided/_get_window/torch.mm tapped as our capture taps them), campplus_model: its input (the "
             "centred fbank, :365 inline), internals and output (:366)",
             lambda hooks, tts, rec, config: style.attach(hooks, tts.campplus_model, rec, import_module("infer_v2"))),
    Attached("s2mel", 's2mel.models["length_regulator"] (:368-370 prompt, :684-686 each segment)',
             lambda hooks, tts, rec, config: s2mel.attach(hooks, tts.s2mel.models["length_regulator"], rec)),
    Attached("cfm", 's2mel.models["cfm"].inference, its estimator and its noise (:688-696)',
             lambda hooks, tts, rec, config: cfm.attach(hooks, tts.s2mel.models["cfm"], rec)),
    Attached("vocoder", "bigvgan: its input and every stage (:697,701); torch.clamp (:706) and torch.cat of "
             "insert_interval_silence's list (:719-720) in infer_v2's namespace; the int16 infer returns (:746-748)",
             _vocoder),
)
GIVEN = (
    Given("inputs/prompt_content", "S_ref = semantic_codec.quantize(spk_cond_emb)[1] (:359)", _prompt_content),
    Given("inputs/seg_{seg}/target_content", "S_infer = vq2emb(codes) + gpt_layer(latent), the length regulator's "
          "input after the prompt's (:678-681)", _target_content),
)


def compared(path: str) -> bool:
    """The ATTACHED parts' stages; stand-ins are ours alone (the class's real values are handed over, GIVEN)."""
    spec = stages.spec_for(path)
    return spec.part in {a.part for a in ATTACHED} and not spec.stand_in


def record_class(tts, config, speaker: Path, text: str, max_mel_tokens: int, seed: int, max_text_tokens: int):
    """One `infer` of the class with every ATTACHED installer and GIVEN tap: (stages, given, checks, output)."""
    recorder = Recorder(MemoryWriter(), for_config("default", config))
    given: dict[str, torch.Tensor] = {}
    keep = lambda path, t: given.__setitem__(path, t.detach().clone())  # noqa: E731
    with hooked() as hooks:
        for a in ATTACHED:
            a.attach(hooks, tts, recorder, config)
        for g in GIVEN:
            g.tap(hooks, tts, keep)
        _, wav = upstream_class.infer(tts, speaker, text, max_mel_tokens, seed, max_text_tokens)
    # infer_v2.py:746-748: int16 [1, S] made [S, 1] by .numpy().T; the stage holds it as [1, S]
    recorder("vocoder/int16", torch.from_numpy(np.ascontiguousarray(wav.T)))
    items = recorder.writer.items
    given.update({p: torch.from_numpy(a) for p, a in items if stages.spec_for(p).draw})
    return items, given, recorder.checks, wav


def record_glue(config, seed: int, given: dict[str, torch.Tensor], speaker: Path):
    """Our capture's glue (`driver.run_parts`): `inputs` reads the recording, then the ATTACHED parts run from
    it, the class's GIVEN stages in place of the stand-ins, and the class's draws."""
    recorder = Recorder(MemoryWriter(), for_config("default", config))
    weights = {part: driver.seeded_weights(config, part, seed) for part in driver.SEEDED}
    parts = tuple(stages.part(a.part) for a in ATTACHED)
    models = driver.build_parts(config, weights, torch.float32, parts)
    produced = driver.run_parts(models, config, {}, recorder, parts=(stages.part("inputs"),),
                                source=Source(speaker=speaker))
    driver.run_parts(models, config, {**produced, **given}, recorder, parts=parts)
    return [(p, a) for p, a in recorder.writer.items if compared(p)], recorder.checks


def run_both(tts, config, seed: int, text: str, max_text_tokens: int, max_mel_tokens: int, infer_seed: int):
    """The class hooked, then our glue from what it recorded: (arrays, meta, seconds) of one text."""
    t = time.perf_counter()
    class_items, given, class_checks, wav = record_class(tts, config, FIXTURE_WAV, text, max_mel_tokens, infer_seed,
                                                         max_text_tokens)
    seconds = {"infer_hooked": time.perf_counter() - t}
    t = time.perf_counter()
    glue_items, glue_checks = record_glue(config, seed, given, FIXTURE_WAV)
    seconds["glue"] = time.perf_counter() - t
    arrays = {f"class_{i:04d}": a for i, (_, a) in enumerate(class_items)}
    arrays |= {f"glue_{i:04d}": a for i, (_, a) in enumerate(glue_items)}
    arrays["output_hooked"] = wav
    meta = {"class_paths": [p for p, _ in class_items], "glue_paths": [p for p, _ in glue_items],
            "given": sorted(given), "checks": {"class": class_checks, "glue": glue_checks}, "text": text,
            "max_text_tokens_per_segment": max_text_tokens}
    return arrays, meta, seconds


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
    arrays, runs = {}, {}
    for name, (text, max_text_tokens) in RUNS.items():
        run_arrays, runs[name], run_seconds = run_both(tts, config, args.seed, text, max_text_tokens,
                                                       args.max_mel_tokens, args.infer_seed)
        arrays |= {f"{name}.{k}": v for k, v in run_arrays.items()}
        seconds |= {f"{name}.{k}": v for k, v in run_seconds.items()}
    t, (text, max_text_tokens) = time.perf_counter(), RUNS["one_segment"]
    _, arrays["output_plain"] = upstream_class.infer(tts, FIXTURE_WAV, text, args.max_mel_tokens, args.infer_seed,
                                                     max_text_tokens)
    seconds["one_segment.infer_plain"] = time.perf_counter() - t
    meta = {
        "runs": runs, "loaded": loaded, "attached": [(a.part, a.where) for a in ATTACHED],
        "given_from": [(g.stage, g.where) for g in GIVEN], "upstream": upstream.as_dict(), "layout": str(layout.root),
        "speaker": str(FIXTURE_WAV), "max_mel_tokens": args.max_mel_tokens, "seconds": seconds,
        "cpu_seconds": time.process_time(), "threads": torch.get_num_threads(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic(args.out / f"{RESULT}.npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    with atomic(args.out / f"{RESULT}.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
