"""Where upstream's own code rejects what a user handed it (a clone given with --reference-src, real
checkpoints), the answer is exit 2 quoting upstream's message in one line, not an internal error.

The clone here is upstream with one added check in the length regulator's forward, as a user's fork or a
newer upstream might validate its input; nothing else changes.
"""
from __future__ import annotations

import importlib.metadata
import shutil
import sys
from pathlib import Path

from tests.hostile_support import TORCH_MEM_CAP, assert_one_line, run_capped

MESSAGE = "ylens must be positive frame counts"


def test_upstream_rejection_is_exit_2_with_its_message(tmp_path):
    installed = Path(importlib.metadata.distribution("indextts2-inference").locate_file("indextts"))
    clone = tmp_path / "fork"
    shutil.copytree(installed, clone / "indextts", ignore=shutil.ignore_patterns("__pycache__"))
    lr = clone / "indextts" / "s2mel" / "modules" / "length_regulator.py"
    head = "    def forward(self, x, ylens=None, n_quantizers=None, f0=None):\n"
    text = lr.read_text()
    assert head in text
    lr.write_text(text.replace(head, head + f"        raise ValueError({MESSAGE!r})\n"))
    proc = run_capped([sys.executable, "-m", "harness.cli", "capture", "--reference-src", str(clone), "--steps", "1",
                       "--no-floors", "-o", str(tmp_path / "out.h5")], tmp_path, mem=TORCH_MEM_CAP)
    assert_one_line(proc, 2, "upstream rejects this input (length_regulator.py:", f"ValueError: {MESSAGE}")
    assert not (tmp_path / "out.h5").exists()
