"""The emotion-vector mode (infer's emo_vector and use_random, infer_v2.py:497-541, :606-607) through the harness.

Its glue is proven equal to the unmodified class in tests/test_glue_equals_class.py (the emotion_vector run, with
use_random); its faults are found in tests/test_faults.py. Here: our reimplementation passes upstream in both
modes, rows by cosine (the GPT part fed the reference's boundary) and rows drawn (the whole pipeline from the CLI,
the draws recorded in the reference and replayed), and the flags' bad combinations are one line and exit 2.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.compare import compare_traces, open_traces
from harness.configs import TINY
from harness.trace import Trace

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = (0.29, 0.0, 0.2, 0.0, 0.0, 0.1, 0.0, 0.15)  # as the faults' run (harness/stages/gpt.py _EMO_VECTOR_RUN)


def harness(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT)


def test_rows_by_cosine_pass_in_the_gpt_part():
    """The faults' vector-mode reference (3 steps, seed 1, 2 tokens), the GPT part replayed without a fault."""
    from harness.commands import models

    cfg = TINY.with_(steps=3, gpt__emo_vector=WEIGHTS, gpt__emo_alpha=0.6, gpt__max_tokens=2)
    run = models.ensure(cfg, seed=1, log=lambda *_: None, part="gpt")
    with open_traces(**run.roles()) as traces:
        c = compare_traces(traces, stage="gpt")
    assert c.passed, c.first_divergence
    status = {r.label: r.status for r in c.results}
    assert status["gpt/emo_vector/rows"] == status["gpt/emo_vector/emovec"] == "pass"
    with Trace(run.reference) as ref:
        rows = ref.read("gpt/emo_vector/rows").reshape(-1)
        assert "gpt/emo_vector/random_rows" not in ref
        style = ref.read("style/style").reshape(-1)
    # the rows nearest the style, by a cosine written here in numpy, and not simply the first of each block
    spk = models.seeded_weights(cfg, 1, parts=("gpt",))[0]["gpt"]["spk_matrix"]
    blocks = np.split(spk, np.cumsum(cfg.gpt.emo_num)[:-1])
    nearest = [int(np.argmax(b @ style / (np.linalg.norm(b, axis=1) * np.linalg.norm(style)))) for b in blocks]
    assert rows.tolist() == nearest and any(nearest)


def test_drawn_rows_are_recorded_and_replayed_through_the_whole_pipeline(tmp_path):
    out = tmp_path / "v.json"
    proc = harness("compare", "--steps", "1", "--max-tokens", "2", "--emo-vector", ",".join(map(str, WEIGHTS)),
                   "--emo-random", "--emo-alpha", "0.6", "--rows", "0", "--no-html", "--json", out)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads(out.read_text())
    status = {s["path"]: s["status"] for s in summary["stages"]}
    assert status["gpt/emo_vector/random_rows"] == status["gpt/emo_vector/rows"] == "pass"
    assert {p.split("/")[0] for p in status} >= {"frontend", "style", "semantic", "gpt", "s2mel", "cfm", "vocoder"}
    with Trace(summary["traces"]["reference"]) as ref:
        gpt = ref.provenance["config_json"]["gpt"]
        assert gpt["emo_vector"] == list(WEIGHTS) and gpt["emo_random"] and gpt["emo_alpha"] == 0.6
        drawn = ref.read("gpt/emo_vector/random_rows").reshape(-1)
        assert all(0 <= r < n for r, n in zip(drawn, TINY.gpt.emo_num))
    with Trace(summary["traces"]["candidate"]) as cand:
        assert np.array_equal(cand.read("gpt/emo_vector/rows").reshape(-1), drawn)


@pytest.mark.parametrize(("args", "needle"), [
    (("--emo-vector", "0.1,x"), "comma-separated numbers"),
    (("--emo-vector", "0.1,0.2"), "has 2 weights"),
    (("--emo-random",), "give --emo-vector too"),
    (("--emo-vector", "0,0,0,0,0,0,0,0", "--emo-wav", ROOT / "fixtures" / "speaker_odd.wav"), "give one of them"),
    (("--emo-vector", "nan,0,0,0,0,0,0,0"), "between -1000 and 1000"),
], ids=["not-numbers", "wrong-count", "random-alone", "with-emo-wav", "nan"])
def test_emotion_vector_flags_refused_in_one_line(tmp_path, args, needle):
    proc = harness("capture", "--steps", "1", "--no-floors", "-o", tmp_path / "t.h5", *args)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr
    assert not (tmp_path / "t.h5").exists()
