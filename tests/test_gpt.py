"""The GPT part on the embedded default: its comparison, its pins, its tokenizer, its KV cache, its bad text.

The comparison test reads the shared 3-step run (tests/conftest.py); the tokenizer and KV-cache tests run
upstream's own modules in process, the GPT alone.
"""
from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.compare import compare_traces, open_traces
from harness.configs import TINY

ROOT = Path(__file__).resolve().parent.parent

#: its module fixture is expensive: under `make test`'s two workers, one worker runs this whole file
pytestmark = pytest.mark.xdist_group("test_gpt")


def test_transformers_is_the_pinned_version():
    # 5.18-5.23 crash in generation (model_v2.py:133: attention_mask None), 5.24 silently drops the KV cache
    # (a renamed argument): both change what upstream computes. constraints.txt pins 5.17.0.
    assert importlib.metadata.version("transformers") == "5.17.0"


def test_reimpl_never_imports_the_libraries_it_reimplements():
    bad = []
    for f in (ROOT / "reimpl").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            bad += [f"{f.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in ("transformers", "sentencepiece")]
    assert not bad, bad


@pytest.fixture(scope="module")
def gpt_comparison(tiny_short_run):
    with open_traces(**tiny_short_run.roles()) as traces:
        return compare_traces(traces, stage="gpt")


def test_compare_gpt_passes_with_codes_identical_and_floats_at_the_floor(gpt_comparison):
    c = gpt_comparison
    assert c.passed and c.rule == "floors", c.first_divergence and c.first_divergence.label
    by = {r.label: r for r in c.results}
    assert len(c.results) >= 20
    segments = sorted({label.split("/")[1] for label in by if label.startswith("gpt/seg_")})
    assert segments == ["seg_00", "seg_01"]  # the default text's two sentences are two segments
    for seg in segments:
        codes = by[f"gpt/{seg}/codes"]
        assert codes.propagated.max_abs == 0 and codes.propagated.n >= 1  # exact, free-running
        latent = by[f"gpt/{seg}/latent/out"]
        assert latent.propagated.rmse <= latent.propagated_allowed and latent.local.rmse <= latent.local_allowed
        logits = [r for label, r in by.items() if label.startswith(f"gpt/{seg}/token_") and label.endswith("/logits")]
        assert len(logits) == TINY.gpt.max_tokens  # random weights never draw the stop code: the cap decides
        for r in logits:  # teacher-forced: the recorded codes fed through the KV path, one at a time
            assert r.local is not None and r.local.rmse <= r.local_allowed, r.label
            # measured: 0 (the same row of the same batch shape as upstream's, reimpl/gpt/generate.py)
            assert r.local.rmse == 0, r.label


def test_every_draw_is_recorded_and_the_cap_is_stated(tiny_short_run):
    from harness.trace import Trace

    with Trace(tiny_short_run.reference) as ref:
        noise = [s for s in ref.stages() if s.path.endswith("/noise") and s.path.startswith("gpt/")]
        assert noise and all(s.draw and s.shape == (1, TINY.gpt.num_beams * TINY.gpt.number_mel_codes) for s in noise)
        assert ref.provenance["config_json"]["gpt"]["max_tokens"] == TINY.gpt.max_tokens
        checks = {p: m for p, m in ref.provenance["derived_checks"].items() if p.startswith("gpt/")}
    # one per token and segment: the KV cache was used at every step after the prefill
    assert len(checks) == len(noise) and all(m.startswith("ok: ") for m in checks.values()), checks


def _semantic_stand_ins(seed: int = 0) -> dict:
    """The GPT's conditioning inputs for a GPT run alone: seeded w2v-bert-shaped features (1024 wide), the
    speaker's and the emotion's, so these tests need neither the front end nor the semantic part."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return {"semantic/spk_cond": torch.randn(1, 57, 1024, generator=g),
            "semantic/emo/cond": torch.randn(1, 57, 1024, generator=g)}


def _upstream_gpt(text: str, seed: int = 0):
    """Upstream's GPT part alone, in process, on the tiny config: its recorded stages, its checks, and the
    semantic stand-ins it was given."""
    import torch

    from harness import stages
    from harness.detail import Detail
    from reference_hooks import driver
    from reference_hooks.inputs import Source
    from reference_hooks.recorder import MemoryWriter, Recorder
    from reference_hooks.upstream import load_upstream

    load_upstream()
    cfg = TINY.with_(gpt__max_tokens=4)
    weights = {"gpt": driver.seeded_weights(cfg, "gpt", seed)}
    parts = (stages.part("inputs"), stages.part("gpt"))
    writer = MemoryWriter()
    recorder = Recorder(writer, Detail("full"))
    torch.manual_seed(0)  # upstream draws from the global generator, as a seeded user run
    semantic = _semantic_stand_ins(seed)
    driver.run_parts(driver.build_parts(cfg, weights, torch.float32, parts), cfg, dict(semantic), recorder, parts,
                     source=Source(seed=seed, text=text))
    return cfg, weights, writer.items, recorder.checks, semantic


def test_the_kv_cache_is_used():
    """Upstream's forward calls during generate: one prefill, then ONE id per step over a growing cache at mel
    positions 2, 3, ... (what 5.24 silently breaks). The checks are made by the capture's hooks from each call's
    input ids, attention mask and cache length (reference_hooks/gpt_hooks.py)."""
    _, _, items, checks, _ = _upstream_gpt("Did you hear the bells?")
    positions = [int(v[0]) for p, v in items if p.endswith("/position")]
    assert positions == [0, 2, 3, 4]
    kv = [checks[p] for p, _ in items if p.endswith("/position")]
    assert kv[0].startswith("ok: prefill of ")
    prefill = int(kv[0].split()[3])
    assert kv[1:] == [f"ok: one id over a KV cache of {prefill + t}" for t in range(3)]


@pytest.mark.parametrize("text", ["!?", "Ünïcödé 日本語 €5", "a", "x" * 40],
                         ids=["punctuation", "outside-the-vocabulary", "one-character", "one-long-word"])
def test_odd_texts_are_captured_faithfully_and_replayed_bit_for_bit(text):
    """What upstream does with them is what we capture (no special case): <unk> ids (0) are dropped from the
    prompt but kept in the latent pass, a one-character text is not upper-cased, a long word is cut into
    fixed chunks. Our side, given upstream's draws, computes every stage bit for bit."""
    import numpy as np
    import torch

    from harness import stages
    from reimpl import driver as ours
    from reimpl.tap import MemoryTap

    cfg, weights, items, _, semantic = _upstream_gpt(text)
    given = {**semantic, **{p: torch.from_numpy(v) for p, v in items if stages.is_given(p)}}
    tap = MemoryTap()
    ours.run_parts(ours.load_part_params(weights, torch.float32), cfg, given, tap,
                   (stages.part("inputs"), stages.part("gpt")))
    assert [p for p, _ in tap.items] == [p for p, _ in items]
    for (path, mine), (_, theirs) in zip(tap.items, items):
        assert np.array_equal(mine, theirs), path


def _harness(*args: str, cache: str) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, INDEXTTS_PARITY_CACHE=cache)
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=600)


@pytest.mark.parametrize("text, needle", [("", "is empty"), ("   ", "is empty"),
                                          (" ".join(["The weather today is mild."] * 8), "makes 8 segments")])
def test_bad_text_is_one_line_and_exit_2(text, needle):
    from harness.paths import cache_dir

    with tempfile.TemporaryDirectory() as out:
        proc = _harness("capture", "--text", text, "-o", f"{out}/t.h5", cache=str(cache_dir()))
        assert not list(Path(out).iterdir())  # nothing written
    # the one error line; progress lines (seeded weights made on first use) may come before it
    errors = [line for line in proc.stderr.splitlines() if line.startswith("harness:")]
    assert proc.returncode == 2 and len(errors) == 1 and needle in errors[0], proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == errors[0] and "Traceback" not in proc.stderr


def test_the_text_is_recorded_in_the_provenance_and_the_inputs_digest(tiny_short_run):
    from harness.stages.inputs import DEFAULT_TEXT
    from harness.trace import Trace
    from reference_hooks.inputs import Source

    assert Source(text="One.").digest() != Source(text="Two.").digest()
    with Trace(tiny_short_run.reference) as ref:
        assert ref.provenance["text"] == DEFAULT_TEXT
        assert ref.provenance["inputs_digest"] == Source(seed=1).digest()
        assert "".join(map(chr, ref.read("inputs/text").reshape(-1))) == DEFAULT_TEXT


def test_a_sampler_fault_is_named_at_the_first_code_that_differs_with_its_margin():
    """penalty_on_logits shows first at the processed scores of token 0 (tests/test_faults.py); the codes of
    the final sequence differ only later. Selecting the codes names the first one with upstream's logit margin
    there. The expected figures are read from the two traces (the codes each side chose, upstream's logits),
    never from the harness's own output."""
    import numpy as np

    from harness.commands import models
    from harness.console import verdict_line
    from harness.trace import Trace

    run = models.ensure(TINY.with_(steps=3), seed=1, faults=("gpt.sampler.penalty_on_logits",), log=lambda *_: None)
    with Trace(run.reference) as ref, Trace(run.free) as cand:
        tokens = sorted(s.path for s in ref.stages() if s.path.startswith("gpt/seg_00/token_") and s.path.endswith("/code"))
        differ = [p for p in tokens if not np.array_equal(ref.read(p), cand.read(p))]
        assert differ, "the fault changes no code of the first segment"
        at = differ[0]
        ours, theirs = int(ref.read(at)[0]), int(cand.read(at)[0])
        logits = ref.read(at.replace("/code", "/logits"))[0].astype(np.float64)
    with open_traces(**run.roles()) as traces:
        c = compare_traces(traces, stage="code")
    first = c.first_divergence
    assert first.label == at, first.label
    line = verdict_line(c)
    rank = 1 + int(np.sum(logits > logits[theirs]))
    assert "hint [exact]" in line and f"reference {ours}, candidate {theirs}" in line, line
    assert f"margin {logits[ours] - logits[theirs]:.3g}" in line, line
    assert f"the candidate's code ranks {rank} of {logits.size}" in line, line
    earlier = [r for r in c.results if r.path < first.path and r.path.startswith("gpt/seg_00/")]
    assert earlier and all(r.status == "pass" for r in earlier)
