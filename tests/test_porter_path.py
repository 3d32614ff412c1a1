"""What a porter sees, checked as they would meet it: where outputs go, names that never collide, a table that
never cuts a name or a number, the rows around the first divergence, the fallback rule said everywhere, and
a capture that stores its floors unless told not to."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np

from harness.trace import Trace
from tests.hostile_support import mini_stages, run_capped, velocity, write_trace

LONG = "cfm/seg_00/step_02/dit/velocity"


def _harness(folder, *args, env=None):
    return run_capped([sys.executable, "-m", "harness.cli", *map(str, args)], folder, env=env)


def _uncapped(folder, *args):
    env = dict(os.environ, INDEXTTS_PARITY_CACHE=str(folder))
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=folder, env=env, timeout=900)


def _pair(folder, off_step=1):
    ref = write_trace(folder / "ref.h5", mini_stages())
    bad = mini_stages() | {f"cfm/seg_00/step_{off_step:02d}/dit/velocity": velocity(off_step, scale=1.5)}
    return ref, write_trace(folder / "cand.h5", bad)


def test_reports_go_to_the_current_folder_under_names_that_differ(tmp_path):
    ref, cand = _pair(tmp_path)
    first = _harness(tmp_path, "compare", ref, cand)
    second = _harness(tmp_path, "compare", ref, cand, "--stage", "cfm")
    assert first.returncode == second.returncode == 1, first.stderr + second.stderr
    names = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert len(names) == 4 and all(n.startswith("compare-cand-") for n in names), names  # json + html, twice
    assert not (tmp_path / ".cache" / "runs").exists()  # comparing traces makes nothing to cache


def test_table_never_cuts_and_shows_the_rows_around_the_first_divergence(tmp_path):
    ref, cand = _pair(tmp_path, off_step=2)
    proc = _harness(tmp_path, "compare", ref, cand, "--rows", "3", "--json", tmp_path / "o.json",
                    env={"COLUMNS": "40"})  # a narrow terminal: names and numbers must still be whole
    lines = proc.stdout.splitlines()
    assert proc.returncode == 1 and lines[0].startswith(f"first divergence: {LONG} (cond) - ")
    rows = [x for x in lines if re.match(r"\s*\d+  (inputs|cfm)/", x)]
    assert len(rows) == 3 and any(f"{LONG} (cond)" in x and "FAIL <- first divergence" in x for x in rows), lines
    assert all(len(x.split()) >= 9 for x in rows)  # every number whole in its column
    assert any(x.startswith("6 more rows in the JSON summary") for x in lines), lines
    piped = _harness(tmp_path, "compare", ref, cand, "--json", tmp_path / "p.json")  # not a terminal: capped at 40
    assert "more rows in the JSON" not in piped.stdout  # 9 rows fit the cap


def test_fallback_rule_is_said_in_console_json_and_html(tmp_path):
    ref = write_trace(tmp_path / "ref.h5", mini_stages())
    cand = write_trace(tmp_path / "cand.h5", mini_stages())
    proc = _harness(tmp_path, "compare", ref, cand, "--json", tmp_path / "o.json")
    assert proc.returncode == 0
    assert "within the fallback rule rel-L2 <= 0.0001" in proc.stdout.splitlines()[0]
    assert "capture it with `harness capture` to get them" in proc.stdout.splitlines()[0]
    data = json.loads((tmp_path / "o.json").read_text())
    assert data["rule"] == "fallback" and "fallback rule" in data["verdict"]
    html = (tmp_path / "o.html").read_text()
    assert "fallback rule rel-L2 &lt;= 0.0001" in html and "`harness capture` stores floors" in html


def test_capture_without_floors_and_in_float64(tmp_path):
    """Floors are stored unless --no-floors; --dtype float64 captures the float64 run itself; --max-tokens caps
    the generated codes. (The default, with floors, is what every session fixture captures.)"""
    # whole-pipeline captures with their own weights: run uncapped (the caps are the hostile corpus's)
    plain = _uncapped(tmp_path, "capture", "--steps", "1", "--no-floors", "--max-tokens", "3")
    wide = _uncapped(tmp_path, "capture", "--steps", "1", "--max-tokens", "2", "--dtype", "float64", "-o", tmp_path / "f64.h5")
    assert plain.returncode == 0 and wide.returncode == 0, plain.stderr[-2000:] + wide.stderr[-2000:]
    (trace,) = (tmp_path / "reports" / "traces").iterdir()
    assert trace.name == "reference-tiny-1steps-seed0-3tokens-nofloors.h5"
    with Trace(trace) as t, Trace(tmp_path / "f64.h5") as w:
        assert not t.has_floors and t.complete and t.provenance["dtype"] == "float32"
        # --max-tokens: the cap, stated in the provenance, and every segment's codes (random weights never stop)
        assert t.provenance["config_json"]["gpt"]["max_tokens"] == 3
        assert [t.info(f"gpt/seg_{s:02d}/codes").shape[-1] for s in (0, 1)] == [3, 3]
        assert w.provenance["dtype"] == "float64" and w.read("cfm/seg_00/mel_out").dtype == np.float64


def test_junit_tells_skipped_from_passed_and_fails_nothing_compared(tmp_path):
    ref = write_trace(tmp_path / "ref.h5", mini_stages())
    part = write_trace(tmp_path / "part.h5", {"frontend/mel/out": mini_stages()["frontend/mel/out"]})
    ok = _harness(tmp_path, "compare", ref, part, "--json", tmp_path / "a.json", "--junit", tmp_path / "a.xml")
    xml = (tmp_path / "a.xml").read_text()
    assert ok.returncode == 0 and 'tests="9" failures="0"' in xml and 'skipped="8"' in xml
    (tmp_path / "m.toml").write_text('[[tensor]]\nname = "mel"\nstage = "cfm/seg_00/mel_out"\nlayout = "B C T"\n'
                                     'half = "none"\n')
    np.savez(tmp_path / "port.npz", other=np.zeros(3, np.float32))
    none = _harness(tmp_path, "compare", ref, tmp_path / "port.npz", "--map", tmp_path / "m.toml",
                    "--json", tmp_path / "b.json", "--junit", tmp_path / "b.xml")
    xml = (tmp_path / "b.xml").read_text()
    assert none.returncode == 1 and none.stdout.startswith("NOTHING COMPARED")
    assert 'failures="1"' in xml and 'name="nothing compared"' in xml
