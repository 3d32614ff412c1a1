"""`--checkpoints DIR` reads IndexTTS2's official checkpoint layout, and `export-weights --layout official` writes one.

The layout is generated in exactly the official shape from the embedded default's seeded weights
(reference_hooks/official_layout.py: config.yaml, gpt.pth, s2mel.pth, bpe.model, feat1.pt, feat2.pt, the w2v
statistics, and a Hugging Face cache with w2v-bert, the codec, CAMPPlus and BigVGAN): the same folder the class
check runs the unmodified `IndexTTS2` class on (so this file shares its worker, and the layout is written once).
What is checked against what:
- reading it back gives every part's weights exactly as the seeded files our capture loads hold them (the same
  names, dtypes and values, part by part), so the digest a trace records is the same;
- a capture from it (the CLI, `--checkpoints` and `--hf-cache`) runs every part and equals the seeded capture
  stage by stage, bit for bit (`harness compare`), and its provenance says which files it read and how many
  tensors each part had;
- `export-weights --layout official` writes that layout for a trace, every file as its manifest's sha256 says;
- a layout of an architecture we have no config for, a cache without the hub's models, and a --config that
  disagrees with the layout are one line and exit 2, before any weight is read.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from harness.configs import TINY

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.xdist_group("test_glue_equals_class")]
RUN = ("--steps", "1", "--max-tokens", "2", "--detail", "boundary", "--no-floors")


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT)


def one_line_exit_2(proc: subprocess.CompletedProcess, *needles: str) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="session")  # not module: xdist may interleave modules, and a module fixture is made again
def layout():
    from reference_hooks import official_layout

    return official_layout.ensure(TINY, 0, log=lambda *_: None)


def provenance(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["provenance"])


def test_reading_the_layout_gives_the_seeded_weights_exactly(layout):
    from harness.commands import models

    read, record = models.real_weights(layout.model_dir, layout.hf_home / "hub")
    seeded, seeded_record = models.seeded_weights(TINY, 0)
    assert sorted(read) == sorted(seeded)
    for part, ours in seeded.items():
        assert sorted(read[part]) == sorted(ours), part
        for name, value in ours.items():
            got = np.asarray(read[part][name])
            assert got.dtype == np.asarray(value).dtype and np.array_equal(got, value), f"{part}: {name}"
        assert record["tensors"][part] == len(ours)
    assert record["config"] == "tiny" and record["layout"] == "official"
    assert record["digest"] == seeded_record["digest"]


@pytest.fixture(scope="session")
def captures(layout, tmp_path_factory):
    folder = tmp_path_factory.mktemp("official")
    seeded, official = folder / "seeded.h5", folder / "official.h5"
    proc = harness("capture", *RUN, "-o", seeded)
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = harness("capture", *RUN, "--checkpoints", layout.model_dir, "--hf-cache", layout.hf_home / "hub",
                   "-o", official)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return seeded, official


def test_a_capture_from_the_layout_equals_the_seeded_capture(captures, tmp_path):
    seeded, official = captures
    out = tmp_path / "c.json"
    proc = harness("compare", seeded, official, "--no-html", "--json", out)
    assert proc.returncode == 0, proc.stdout[-2000:]
    stages = json.loads(out.read_text())["stages"]
    assert {s["path"].split("/")[0] for s in stages} >= {"frontend", "style", "semantic", "gpt", "s2mel", "cfm",
                                                         "vocoder"}
    assert any(s["path"].startswith("vocoder/") and s["path"].endswith("wav") for s in stages)
    assert all(s["propagated"]["max_abs"] == 0.0 for s in stages), [s["path"] for s in stages
                                                                      if s["propagated"]["max_abs"]][:5]
    ckpt = provenance(official)["checkpoint"]
    assert ckpt["kind"] == "real" and ckpt["layout"] == "official" and ckpt["config"] == "tiny"
    assert Path(ckpt["files"]["gpt.pth"]) == (Path(ckpt["path"]) / "gpt.pth")
    assert ckpt["digest"] == provenance(seeded)["checkpoint"]["digest"]


def test_export_weights_writes_the_official_layout(captures, tmp_path):
    seeded, _ = captures
    out = tmp_path / "exported"
    proc = harness("export-weights", seeded, "-o", out, "--layout", "official")
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())["files"]
    for name in ("model/config.yaml", "model/gpt.pth", "model/s2mel.pth", "model/bpe.model", "model/feat1.pt",
                 "model/feat2.pt", "model/wav2vec2bert_stats.pt"):
        assert name in manifest
    for rel, sha in manifest.items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == sha, rel
    assert provenance(seeded)["checkpoint"]["digest"] in proc.stdout


def test_a_layout_of_another_architecture_is_refused(layout, tmp_path):
    import yaml

    cfg = yaml.safe_load((layout.model_dir / "config.yaml").read_text())
    cfg["s2mel"]["DiT"]["depth"] += 1
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    one_line_exit_2(harness("compare", "--checkpoints", tmp_path, "--hf-cache", layout.hf_home / "hub"),
                    "none of the embedded configs", "config.yaml s2mel.DiT.depth")


def test_a_vocoder_that_is_no_repository_id_is_refused(layout, tmp_path):
    import yaml

    cfg = yaml.safe_load((layout.model_dir / "config.yaml").read_text())
    cfg["vocoder"]["name"] = "not a/valid/repository id"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    one_line_exit_2(harness("compare", "--checkpoints", tmp_path, "--hf-cache", layout.hf_home / "hub"),
                    "not a Hugging Face repository id")


def test_a_cache_without_the_hub_models_is_refused(layout, tmp_path):
    one_line_exit_2(harness("compare", "--checkpoints", layout.model_dir, "--hf-cache", tmp_path),
                    "facebook/w2v-bert-2.0", "--hf-cache")


def test_a_config_other_than_the_layouts_is_refused(layout):
    one_line_exit_2(harness("capture", "--config", "full", "--checkpoints", layout.model_dir, "--hf-cache",
                            layout.hf_home / "hub"), "describes the tiny architecture", "--config full")


def test_hf_cache_needs_checkpoints(tmp_path):
    one_line_exit_2(harness("compare", "--hf-cache", tmp_path), "--hf-cache", "--checkpoints")
