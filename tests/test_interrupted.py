"""An interrupted replay (Ctrl-C or kill -9) leaves the earlier file under its name untouched and a partial
that reads, marked incomplete, and that never compares as a pass."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.trace import Trace

ROOT = Path(__file__).resolve().parent.parent


def _stop_midway(argv: list[str], folder: Path, sig: int) -> subprocess.CompletedProcess:
    """Start a run and send it `sig` once its partial holds a few stages."""
    proc = subprocess.Popen(argv, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, TQDM_DISABLE="1"))
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        parts = list(folder.glob("out.h5.*.partial"))
        if parts and parts[0].stat().st_size > 1_000_000:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_interrupted_replay_keeps_the_earlier_file_and_a_readable_partial(tmp_path, tiny_short_run, sig):
    earlier = tmp_path / "out.h5"
    earlier.write_text("an earlier result\n")
    digest = hashlib.sha256(earlier.read_bytes()).hexdigest()
    proc = _stop_midway([sys.executable, "-m", "harness.cli", "replay", str(tiny_short_run.reference), "-o",
                         str(earlier)], tmp_path, sig)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and proc.stderr.strip().splitlines()[-1] == "harness: interrupted", proc.stderr
    else:
        assert proc.returncode == -signal.SIGKILL
    assert hashlib.sha256(earlier.read_bytes()).hexdigest() == digest
    (partial,) = tmp_path.glob("out.h5.*.partial")
    with Trace(partial) as t:
        assert not t.complete and t.stages()  # stages up to the interruption, flushed as they were written
        for s in t.stages():
            t.read(s.path)
    cmp = subprocess.run([sys.executable, "-m", "harness.cli", "compare", str(tiny_short_run.reference), str(partial),
                          "--json", str(tmp_path / "c.json"), "--no-html"], capture_output=True, text=True, cwd=tmp_path)
    assert cmp.returncode == 1 and cmp.stdout.startswith("NOT A PASS: the candidate trace was interrupted"), cmp.stdout
