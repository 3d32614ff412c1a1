"""The cache keeps to its budget: least recently used entries go first, recent ones (in use) stay, and a
folder the harness did not make is never cleaned."""
from __future__ import annotations

import os
import sys
import time

from harness.cache import TAG, TAG_TEXT
from tests.hostile_support import mini_stages, run_capped, write_trace


def _entry(path, size: int, age_hours: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix:
        path.write_bytes(b"\0" * size)
        stamped = [path]
    else:
        path.mkdir()
        (path / "reference.h5").write_bytes(b"\0" * size)
        stamped = [path, path / "reference.h5"]
    when = time.time() - age_hours * 3600
    for p in stamped:
        os.utime(p, (when, when))
    return path


def _cache(tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    (root / TAG).write_text(TAG_TEXT)
    old = _entry(root / "runs" / "tiny-old", 3 << 20, age_hours=30)
    mid = _entry(root / "weights" / "tiny-cfm.safetensors", 3 << 20, age_hours=20)
    new = _entry(root / "foreign" / "port-new.h5", 3 << 20, age_hours=10)
    return root, old, mid, new


def _harness(tmp_path, root, *args, budget="7M"):
    return run_capped([sys.executable, "-m", "harness.cli", *args], tmp_path,
                      env={"INDEXTTS_PARITY_CACHE": str(root), "INDEXTTS_PARITY_CACHE_BUDGET": budget})


def test_clean_removes_least_recently_used_until_within_budget(tmp_path):
    root, old, mid, new = _cache(tmp_path)
    listed = _harness(tmp_path, root, "cache", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [str(old), str(mid), str(new)] == [line.split()[-1] for line in lines[:3]]  # least recently used first
    assert "3 entries, 9.0 MB of a 7.0 MB budget" in lines[-1]
    proc = _harness(tmp_path, root, "cache", "clean")
    assert proc.returncode == 0, proc.stderr
    assert not old.exists() and mid.exists() and new.exists()  # 9 MB -> 6 MB: one entry, the oldest
    proc = _harness(tmp_path, root, "cache", "clean", "--all")
    assert proc.returncode == 0 and not mid.exists() and not new.exists() and (root / TAG).exists()


def test_a_command_that_adds_to_the_cache_evicts_but_never_what_is_in_use(tmp_path):
    """Converting a port's dump adds an entry; the budget then removes the stale entries, not the fresh one,
    nor one used within the hour (another process may be reading it)."""
    root, old, mid, new = _cache(tmp_path)
    os.utime(mid)  # in use right now
    ref = write_trace(tmp_path / "ref.h5", mini_stages())
    cand = tmp_path / "port.npz"
    import numpy as np

    np.savez(cand, mel=mini_stages()["cfm/seg_00/mel_out"])
    (tmp_path / "m.toml").write_text('[[tensor]]\nname = "mel"\nstage = "cfm/seg_00/mel_out"\nlayout = "B C T"\n'
                                     'half = "none"\n')
    proc = _harness(tmp_path, root, "compare", ref, cand, "--map", tmp_path / "m.toml", "--json", tmp_path / "o.json",
                    budget="4M")  # 9 MB + the conversion: the two stale entries go, the one in use stays over budget
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("PASS: all 1 compared stages (8 not provided)")  # the map promised only the mel
    converted = [p for p in (root / "foreign").iterdir() if p.name.startswith("port-") and p != new]
    assert converted and not old.exists() and not new.exists() and mid.exists()


def test_budget_must_be_a_size(tmp_path):
    root, *_ = _cache(tmp_path)
    proc = _harness(tmp_path, root, "cache", "list", budget="lots")
    assert proc.returncode == 2 and "is not a size" in proc.stderr and "Traceback" not in proc.stderr
