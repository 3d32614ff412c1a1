"""Our capture's glue against the unmodified IndexTTS2 class: the class hooked by our own parts' hook installers,
and our glue run from the same recording with what the class computed at the parts' boundary, both recorded
stage by stage.

    python -m reference_hooks.class_check OUT_DIR [--max-mel-tokens N]    (writes OUT_DIR/class_check.{json,npz})

It runs in a process of its own (upstream_class.prepare); tests/test_glue_equals_class.py reads what it writes.
Two tables decide what is compared, and each part that lands extends them:
- ATTACHED: each of our parts, in pipeline order, with the objects of the class its hook installer is attached
  to. The class's run records these parts' stages; our glue runs the same parts (`driver.run_parts`, after the
  `inputs` part read the recording and the text, as our capture does) and records the same stages.
- GIVEN: the stages our glue consumes that no part of ours computes yet (stand-ins in our capture: the semantic
  part's S_ref and w2v-bert features), with the place in the class where they are taken. A part that lands
  moves from GIVEN to ATTACHED.
Our glue runs with the class's generation settings (`run_config`: its segment size and max_mel_tokens) and our
parts' seeded weights, which the class's modules hold too (`ours_in_class` reads them back).
The `inputs` part itself (the recording at the file's own rate) is not compared: the class decodes the file
inside `librosa.load` (infer_v2.py:313), where nothing of it is observable; its first observable value is
`_load_and_cut_audio`'s output, frontend/wav. Random draws the class makes inside an attached part (the GPT's
multinomial noise, the CFM's start noise) are recorded by that part's installer and handed to our glue as our
capture hands them to a replay.
The class's final int16 output (what `infer` returns, [S, 1]) is recorded as vocoder/int16, transposed back to
the stage's [1, S]. Each text is run on both sides (RUNS): one segment, and two (the 200 ms join runs). The
class interleaves parts (the emotion path's load, frontend/emo_wav_16k at :391, comes after the speaker
conditioning at :350-370; with several segments gpt, s2mel, cfm and vocoder run per segment) where our glue runs
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
from reference_hooks import cfm, driver, frontend, gpt, gpt_weights, official_layout, s2mel, style, upstream_class, vocoder
from reference_hooks.inputs import FIXTURE_WAV, Source
from reference_hooks.recorder import MemoryWriter, Recorder, hooked
from reference_hooks.upstream import import_module

TEXT = "Hello world. This is a small test."
RESULT = "class_check"
#: run name -> (text, max_text_tokens_per_segment, emo_audio_prompt or None, emo_alpha): with the GPT part's
#: tokenizer TEXT's sentences are 7 and 11 BPE tokens; at 120 (the class's default) they make one segment, at 16 two
#: (utils/front.py:513-601: 7 + 11 > 16 and > 16 / 2). The class's NeMo normaliser leaves TEXT as it is (checked on
#: every run, gpt.attach). The emotion run gives the class another recording for its emotion path (infer_v2.py:391,
#: :521-525) and an alpha for merge_emovec (:598-604)
EMOTION_WAV = FIXTURE_WAV.with_name("speaker_odd.wav")


@dataclass(frozen=True)
class Run:
    """One `infer` of the class: its text and segment size, and its emotion inputs."""

    text: str
    max_text_tokens: int
    emo: Path | None = None
    emo_alpha: float = 1.0
    emo_vector: tuple[float, ...] = ()
    emo_random: bool = False


#: the emotion-vector run: infer's emo_vector with use_random (its rows drawn by the class's random.randint, handed to
#: our glue as the GPT's draws are) and alpha 0.6 (the weights scaled and truncated, :509-515; merge at 1.0)
RUNS = {"one_segment": Run(TEXT, 120), "two_segments": Run(TEXT, 16),
        "emotion_recording": Run(TEXT, 120, EMOTION_WAV, 0.6),
        "emotion_vector": Run(TEXT, 120, None, 0.6, (0.29, 0.0, 0.2, 0.0, 0.0, 0.1, 0.0, 0.15), True)}


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
        keep("semantic/codec/emb", out[1])
        return out

    hooks.patch(tts.semantic_codec, "quantize", observed)


def _semantic_features(call: int, path: str) -> Callable:
    """A tap of get_emb's output at its `call`-th call: 0 is the speaker's (:357), 1 the emotion reference's (:395)."""

    def tap(hooks, tts, keep) -> None:
        get_emb, calls = tts.get_emb, itertools.count()

        def observed(*args, **kwargs):
            out = get_emb(*args, **kwargs)
            if next(calls) == call:
                keep(path, out)
            return out

        hooks.patch(tts, "get_emb", observed)

    return tap


def _s2mel(hooks, tts, rec: Recorder, config) -> None:
    s2mel.attach(hooks, tts.s2mel.models["length_regulator"], rec, tts.s2mel.models["gpt_layer"],
                 tts.semantic_codec.quantizer)


ATTACHED = (
    Attached("frontend", "_load_and_cut_audio's output (:350 wav; :391 emo_wav_16k; librosa.load's steps inside "
             "it not observable), torchaudio.transforms.Resample as infer_v2 reaches it (:351-352), mel_fn (:360) "
             "with mel_spectrogram's torch.stft/matmul tapped",
             lambda hooks, tts, rec, config: frontend.attach(hooks, tts, rec, config.frontend)),
    Attached("style", "torchaudio.compliance.kaldi.fbank as infer_v2 reaches it (:362-364; inside it kaldi's "
             "_get_strided/_get_window/torch.mm tapped as our capture taps them), campplus_model: its input (the "
             "centred fbank, :365 inline), internals and output (:366)",
             lambda hooks, tts, rec, config: style.attach(hooks, tts.campplus_model, rec, import_module("infer_v2"))),
    Attached("gpt", "tokenizer.tokenize/split_segments (:545-552, after its NeMo normaliser, checked to leave the "
             "text as it is), gpt: merge_emovec (:598), inference_speech with every multinomial draw (:606-624), "
             "its conformers, perceivers and GPT-2 blocks, the latent pass (:654-668); with an emotion vector, "
             "random.randint and find_most_similar_cosine in infer_v2's namespace (:533, :535) and the emo_vec "
             "inference_speech is given (:606-607)",
             lambda hooks, tts, rec, config: gpt.attach(hooks, tts.gpt, tts.tokenizer, rec, config.gpt)),
    Attached("s2mel", 's2mel.models["gpt_layer"] (:678), semantic_codec.quantizer.vq2emb (:679), '
             's2mel.models["length_regulator"] (:368-370 prompt, :684-686 each segment, its input S_infer :681)',
             _s2mel),
    Attached("cfm", 's2mel.models["cfm"].inference, its estimator and its noise (:688-696)',
             lambda hooks, tts, rec, config: cfm.attach(hooks, tts.s2mel.models["cfm"], rec)),
    Attached("vocoder", "bigvgan: its input and every stage (:697,701); torch.clamp (:706) and torch.cat of "
             "insert_interval_silence's list (:719-720) in infer_v2's namespace; the int16 infer returns (:746-748)",
             _vocoder),
)
GIVEN = (
    Given("semantic/codec/emb", "S_ref = semantic_codec.quantize(spk_cond_emb)[1] (:359)", _prompt_content),
    Given("semantic/spk_cond", "spk_cond_emb = get_emb(...) of the speaker (:354-357)",
          _semantic_features(0, "semantic/spk_cond")),
    Given("semantic/emo/cond", "emo_cond_emb = get_emb(...) of the emotion reference, the speaker (:391-395)",
          _semantic_features(1, "semantic/emo/cond")),
)


def compared(path: str) -> bool:
    """The ATTACHED parts' stages; stand-ins are ours alone (the class's real values are handed over, GIVEN)."""
    spec = stages.spec_for(path)
    return spec.part in {a.part for a in ATTACHED} and not spec.stand_in


def ours_in_class(tts, config, seed: int) -> dict[str, dict]:
    """Whether the class's modules hold our parts' seeded weights (what our glue loads), tensor by tensor, and its
    tokenizer our GPT part's: {part: {"total": n, "differing": [names]}}. The layout writes them (official_layout);
    this reads them back from the objects the class computes with."""
    modules = {"gpt": {"": tts.gpt},
               "s2mel": {"length_regulator.": tts.s2mel.models["length_regulator"],
                         "gpt_layer.": tts.s2mel.models["gpt_layer"],
                         "semantic_codec.quantizer.": tts.semantic_codec.quantizer},
               "cfm": {"cfm.": tts.s2mel.models["cfm"]}}
    out = {}
    for part, owners in modules.items():
        ours, states = driver.seeded_weights(config, part, seed), {q: m.state_dict() for q, m in owners.items()}
        differing = []
        for name, value in ours.items():
            if part == "gpt" and name == gpt_weights.TOKENIZER:
                if tts.tokenizer.sp_model.serialized_model_proto() != gpt_weights.tokenizer_bytes(ours):
                    differing.append(name)
                continue
            if part == "gpt" and name in (gpt_weights.SPK_MATRIX, gpt_weights.EMO_MATRIX):  # split by emo_num (:231-240)
                held = torch.cat(getattr(tts, name))
                if not torch.equal(held, torch.from_numpy(np.asarray(value))):
                    differing.append(name)
                continue
            prefix = next((q for q in owners if name.startswith(q)), None)
            held = states[prefix].get(name[len(prefix):]) if prefix is not None else None
            if held is None or not torch.equal(held, torch.from_numpy(np.asarray(value))):
                differing.append(name)
        out[part] = {"total": len(ours), "differing": differing}
    return out


def record_class(tts, config, speaker: Path, max_mel_tokens: int, seed: int, run: Run):
    """One `infer` of the class with every ATTACHED installer and GIVEN tap: (stages, given, checks, output)."""
    recorder = Recorder(MemoryWriter(), for_config("default", config))
    given: dict[str, torch.Tensor] = {}
    keep = lambda path, t: given.__setitem__(path, t.detach().clone())  # noqa: E731
    with hooked() as hooks:
        for a in ATTACHED:
            a.attach(hooks, tts, recorder, config)
        for g in GIVEN:
            g.tap(hooks, tts, keep)
        _, wav = upstream_class.infer(tts, speaker, run.text, max_mel_tokens, seed, run.max_text_tokens, run.emo,
                                      run.emo_alpha, run.emo_vector, run.emo_random)
    # infer_v2.py:746-748: int16 [1, S] made [S, 1] by .numpy().T; the stage holds it as [1, S]
    recorder("vocoder/int16", torch.from_numpy(np.ascontiguousarray(wav.T)))
    items = recorder.writer.items
    given.update({p: torch.from_numpy(a) for p, a in items if stages.spec_for(p).draw})
    return items, given, recorder.checks, wav


def run_config(config, run: Run, max_mel_tokens: int):
    """Our config for one `infer` of the class: its segment size, its cap on generated codes (infer_v2.py:
    563-570, max_mel_tokens is inference_speech's max_generate_length) and its emotion settings; none changes a
    weight."""
    return config.with_(gpt__max_text_tokens_per_segment=run.max_text_tokens, gpt__max_tokens=max_mel_tokens,
                        gpt__emo_alpha=run.emo_alpha, gpt__emo_vector=run.emo_vector, gpt__emo_random=run.emo_random)


def record_glue(config, seed: int, given: dict[str, torch.Tensor], speaker: Path, text: str, emo: Path | None = None):
    """Our capture's glue (`driver.run_parts`): `inputs` reads the recording and the text, then the ATTACHED
    parts run from them, the class's GIVEN stages in place of the stand-ins, and the class's draws."""
    recorder = Recorder(MemoryWriter(), for_config("default", config))
    weights = {part: driver.seeded_weights(config, part, seed) for part in driver.SEEDED}
    parts = tuple(stages.part(a.part) for a in ATTACHED)
    models = driver.build_parts(config, weights, torch.float32, parts)
    produced = driver.run_parts(models, config, {}, recorder, parts=(stages.part("inputs"),),
                                source=Source(speaker=speaker, text=text, emo=emo))
    driver.run_parts(models, config, {**produced, **given}, recorder, parts=parts)
    return [(p, a) for p, a in recorder.writer.items if compared(p)], recorder.checks


def run_both(tts, config, seed: int, run: Run, max_mel_tokens: int, infer_seed: int):
    """The class hooked, then our glue from what it recorded: (arrays, meta, seconds) of one run (RUNS). Both sides
    record with this run's config (its last token decides which tokens' internals are recorded)."""
    config = run_config(config, run, max_mel_tokens)
    t = time.perf_counter()
    class_items, given, class_checks, wav = record_class(tts, config, FIXTURE_WAV, max_mel_tokens, infer_seed, run)
    seconds = {"infer_hooked": time.perf_counter() - t}
    t = time.perf_counter()
    glue_items, glue_checks = record_glue(config, seed, given, FIXTURE_WAV, run.text, run.emo)
    seconds["glue"] = time.perf_counter() - t
    arrays = {f"class_{i:04d}": a for i, (_, a) in enumerate(class_items)}
    arrays |= {f"glue_{i:04d}": a for i, (_, a) in enumerate(glue_items)}
    arrays["output_hooked"] = wav
    meta = {"class_paths": [p for p, _ in class_items], "glue_paths": [p for p, _ in glue_items],
            "given": sorted(given), "checks": {"class": class_checks, "glue": glue_checks}, "text": run.text,
            "max_text_tokens_per_segment": run.max_text_tokens, "emo_wav": str(run.emo) if run.emo else None,
            "emo_alpha": run.emo_alpha, "emo_vector": list(run.emo_vector), "emo_random": run.emo_random}
    return arrays, meta, seconds


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--max-mel-tokens", type=int, default=6)
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
    ours = ours_in_class(tts, config, args.seed)
    arrays, runs = {}, {}
    for name, run in RUNS.items():
        run_arrays, runs[name], run_seconds = run_both(tts, config, args.seed, run, args.max_mel_tokens,
                                                       args.infer_seed)
        arrays |= {f"{name}.{k}": v for k, v in run_arrays.items()}
        seconds |= {f"{name}.{k}": v for k, v in run_seconds.items()}
    t, plain = time.perf_counter(), RUNS["one_segment"]
    _, arrays["output_plain"] = upstream_class.infer(tts, FIXTURE_WAV, plain.text, args.max_mel_tokens, args.infer_seed,
                                                     plain.max_text_tokens)
    seconds["one_segment.infer_plain"] = time.perf_counter() - t
    meta = {
        "runs": runs, "loaded": loaded, "ours_in_class": ours, "attached": [(a.part, a.where) for a in ATTACHED],
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
