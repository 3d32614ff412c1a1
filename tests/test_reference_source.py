"""Where the reference comes from: the installed package, or a user's clone given by path."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import sys
from reference_hooks.upstream import load_upstream, import_module
src = load_upstream({arg})
fm = import_module("s2mel.modules.flow_matching")
print("|".join([src.kind, src.version, fm.__file__, str("indextts.infer_v2" in sys.modules)]))
"""


def _probe(arg: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(arg=arg)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split("|")


def test_installed_package_without_its_heavy_init():
    kind, version, path, heavy = _probe("None")
    assert kind == "installed" and version == "indextts2-inference==2.1.1"
    assert path.endswith("indextts/s2mel/modules/flow_matching.py") and heavy == "False"


def test_a_clone_given_by_path(tmp_path):
    import importlib.metadata

    installed = Path(importlib.metadata.distribution("indextts2-inference").locate_file("indextts"))
    clone = tmp_path / "index-tts"
    shutil.copytree(installed, clone / "indextts")
    kind, version, path, heavy = _probe(repr(str(clone)))
    assert kind == "clone" and version.startswith("unknown") and heavy == "False"
    assert path == str(clone / "indextts" / "s2mel" / "modules" / "flow_matching.py")


def test_not_a_clone_is_user_error(tmp_path):
    from harness.errors import UserError
    from reference_hooks import upstream

    with pytest.raises(UserError, match="no indextts/s2mel"):
        upstream.load_upstream(tmp_path)


def test_torchaudio_python_code_runs_bare():
    """torchaudio's own Resample and kaldi fbank, imported without its __init__ (no C++ extension)."""
    probe = ("import sys, torch\nfrom reference_hooks.upstream import load_torchaudio\nta = load_torchaudio()\n"
             "y = ta.transforms.Resample(22050, 16000)(torch.ones(1, 2205))\n"
             "f = ta.compliance.kaldi.fbank(torch.ones(1, 1600) * 0.1, num_mel_bins=80, dither=0)\n"
             "print(tuple(y.shape), tuple(f.shape), ta.__spec__ is not None)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(1, 1600) (8, 80) True"
