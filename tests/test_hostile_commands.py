"""Our hostile corpus, part 2: every other command (replay, stages, export-inputs, capture, faults, cache), the
command line itself, and the pytest plugin, each fed what a user may get wrong.

Same contract as part 1: capped in time and memory, the exit code, one stderr line without a traceback for
bad input, the words naming the problem, and every pre-existing file byte-identical afterwards.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest

from tests.hostile_support import (
    MINI_MAP,
    TORCH_MEM_CAP,
    Case,
    assert_one_line,
    assert_unchanged,
    mel,
    mini_stages,
    port_dump,
    run_capped,
    snapshot,
    write_trace,
)


class RunsCode:
    """A pickle that would create a file if anything unpickled it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_checkpoints(f):
    folder = f / "ckpt"
    folder.mkdir()
    (folder / "s2mel.pth").write_bytes(pickle.dumps({"net": RunsCode(str(f / "EXECUTED"))}))
    return folder


def _fifo_checkpoints(f):
    folder = f / "ckpt-fifo"
    folder.mkdir()
    os.mkfifo(folder / "s2mel.pth")
    return folder


def _official_config(f, text: bytes):
    """A folder in the official layout's shape whose config.yaml holds `text`."""
    folder = f / "official"
    folder.mkdir()
    (folder / "config.yaml").write_bytes(text)
    return folder


def _export_into_link(f, ref):
    out = f / "out"
    out.mkdir()
    (out / "inputs.npz").symlink_to(ref)
    return ["export-inputs", ref, "-o", out]


def _export_weights_into_link(f, ref):
    out = f / "w"
    out.mkdir()
    (out / "weights.json").symlink_to(ref)
    return ["export-weights", ref, "-o", out]


def _bytes(path, data: bytes):
    path.write_bytes(data)
    return path


def _untagged_cache(f):
    (f / "notacache").mkdir()
    (f / "notacache" / "runs").mkdir()
    (f / "notacache" / "runs" / "precious.txt").write_text("keep me")
    return ["cache", "clean", "--all"]


CASES = [
    # replay
    Case("replay-output-is-ref-symlink", lambda f, r: ["replay", r, "-o", (f / "l.h5").symlink_to(r) or f / "l.h5"], 2,
         ("is the same file as the REF",)),
    Case("replay-output-is-ref-dotdot", lambda f, r: ["replay", r, "-o", f / ".." / f.name / "ref.h5"], 2,
         ("is the same file as the REF",)),
    Case("replay-unknown-part", lambda f, r: ["replay", r, "--part", "dits"], 2, ("unknown part",)),
    Case("replay-unknown-fault", lambda f, r: ["replay", r, "--fault", "cfm.final_layer.no_silo"], 2,
         ("did you mean cfm.final_layer.no_silu?",)),
    Case("replay-no-checkpoint-named", lambda f, r: ["replay", r, "-o", f / "out.h5"], 2, ("names no checkpoint",),
         mem=TORCH_MEM_CAP),
    # stages
    Case("stages-garbage", lambda f, r: ["stages", _bytes(f / "g.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 50)], 2,
         ("not a readable HDF5",)),
    Case("stages-nothing-given", lambda f, r: ["stages"], 2, ("give a TRACE, or --schema",)),
    Case("stages-unknown-selection", lambda f, r: ["stages", r, "--stage", "cfm/stepp_1"], 2, ("unknown stage",)),
    # export-inputs
    Case("export-into-a-file", lambda f, r: ["export-inputs", r, "-o", r], 2, ("is not a folder",)),
    Case("export-over-the-trace", _export_into_link, 2, ("is the same file as the trace",)),
    Case("export-nothing-to-export", lambda f, r: ["export-inputs", write_trace(f / "m.h5", {"cfm/seg_00/mel_out": mel()}),
                                                   "-o", f / "x", "--part", "cfm"], 2, ("holds none of the stages",)),
    # export-weights
    Case("export-weights-into-a-file", lambda f, r: ["export-weights", r, "-o", r], 2, ("not a folder",)),
    Case("export-weights-over-the-trace", _export_weights_into_link, 2, ("is the same file as the TRACE",)),
    Case("export-weights-no-checkpoint-named", lambda f, r: ["export-weights", r, "-o", f / "w"], 2,
         ("names no checkpoint",)),
    # capture: bounds and user checkpoints, all refused before any model runs
    Case("capture-steps-zero", lambda f, r: ["capture", "--steps", "0"], 2, ("MAX_STEPS",)),
    Case("capture-steps-huge", lambda f, r: ["capture", "--steps", "100000"], 2, ("MAX_STEPS",)),
    Case("capture-tokens-zero", lambda f, r: ["capture", "--max-tokens", "0"], 2, ("--max-tokens must be",)),
    Case("capture-tokens-beyond-positions", lambda f, r: ["capture", "--max-tokens", "251"], 2, ("mel positions",)),
    Case("capture-detail-unknown-part", lambda f, r: ["capture", "--detail", "full:gtp"], 2, ("unknown part",)),
    Case("capture-seed-negative", lambda f, r: ["capture", "--seed", "-1"], 2, ("MAX_SEED",)),
    Case("capture-unknown-config", lambda f, r: ["capture", "--config", "huge"], 2, ("unknown config",)),
    Case("capture-output-is-a-folder", lambda f, r: ["capture", "-o", f, "--steps", "1"], 2, ("not a regular file",)),
    Case("capture-checkpoints-missing", lambda f, r: ["capture", "--config", "full", "--checkpoints", f / "none"], 2,
         ("--checkpoints not found",)),
    Case("capture-checkpoints-need-full", lambda f, r: ["capture", "--checkpoints", f], 2, ("use it with --config full",)),
    Case("capture-pickle-that-runs-code", lambda f, r: ["capture", "--config", "full", "--checkpoints",
                                                        _evil_checkpoints(f)], 2, ("weights_only=True",),
         mem=TORCH_MEM_CAP),
    Case("capture-checkpoint-fifo", lambda f, r: ["capture", "--config", "full", "--checkpoints", _fifo_checkpoints(f)],
         2, ("is a FIFO",), mem=TORCH_MEM_CAP),
    Case("capture-official-config-not-text", lambda f, r: ["capture", "--checkpoints", _official_config(f, b"\xff\x00")],
         2, ("not UTF-8 text",)),
    Case("capture-official-config-a-list", lambda f, r: ["capture", "--checkpoints", _official_config(f, b"- a\n- b\n")],
         2, ("no mapping at the top",)),
    Case("capture-official-vocoder-not-a-mapping", lambda f, r: ["capture", "--checkpoints",
                                                                 _official_config(f, b"vocoder: bigvgan\n")],
         2, ("its vocoder section is str",)),
    Case("capture-official-config-too-large", lambda f, r: ["capture", "--checkpoints",
                                                            _official_config(f, b"#" * (17 << 20))], 2, ("MAX_TEXT_BYTES",)),
    # the command line itself
    Case("no-command", lambda f, r: [], 2, ("required",)),
    Case("unknown-command", lambda f, r: ["comapre"], 2, ("invalid choice",)),
    Case("faults-unknown-config", lambda f, r: ["faults", "--config", "huge"], 2, ("unknown config",)),
    Case("compare-default-with-map", lambda f, r: ["compare", "--map", f / "m.toml"], 2, ("explicit REF CAND",)),
    Case("compare-fault-with-traces", lambda f, r: ["compare", r, r, "--fault", "cfm.final_layer.no_silu"], 2,
         ("--fault applies to the embedded default",)),
    Case("compare-map-with-traces", lambda f, r: ["compare", r, r, "--map", f / "m.toml"], 2, ("drop --map",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_command(tmp_path, case):
    reference = write_trace(tmp_path / "ref.h5", mini_stages())
    case.run(tmp_path, reference)
    assert not (tmp_path / "EXECUTED").exists()  # nothing a checkpoint held was ever run


def test_cache_clean_refuses_a_folder_it_did_not_make(tmp_path):
    argv = _untagged_cache(tmp_path)
    before = snapshot(tmp_path)
    proc = run_capped([sys.executable, "-m", "harness.cli", *argv], tmp_path,
                      env={"INDEXTTS_PARITY_CACHE": str(tmp_path / "notacache")})
    assert_one_line(proc, 2, "refusing to delete anything there")
    assert_unchanged(before)


# ---- the pytest plugin ------------------------------------------------------------------------------------

def _pytest(folder, *args):
    return run_capped([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, args)], folder)


def _plugin_usage_error(proc, *needles):
    """pytest's usage error: exit 4, one `ERROR: indextts-parity: ...` line, no INTERNALERROR, no items run."""
    where = f"exit {proc.returncode}\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"
    assert proc.returncode == 4, where
    assert "INTERNALERROR" not in proc.stdout + proc.stderr and "Traceback" not in proc.stdout + proc.stderr, where
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("ERROR: indextts-parity: "), where
    assert "passed" not in proc.stdout and "failed" not in proc.stdout, where
    for n in needles:
        assert n in lines[0], where


PLUGIN_FIXTURE_TEST = """
import pytest
from harness.pytest_plugin import stage_groups

@pytest.mark.parametrize("group", stage_groups({ref!r}))
def test_parity(parity, group):
    parity({ref!r}, {cand!r}).check(group)
"""


@pytest.mark.parametrize("name,args,needles", [
    ("map-alone", lambda f, r: ["--parity-map", f / "m.toml"], ("--parity-map needs --parity-ref",)),
    ("ref-alone", lambda f, r: ["--parity-ref", r], ("go together",)),
    ("ref-missing", lambda f, r: ["--parity-ref", f / "no.h5", "--parity-cand", r], ("trace not found",)),
    ("stage-unknown", lambda f, r: ["--parity-ref", r, "--parity-cand", r, "--parity-stage", "dit/blok"],
     ("unknown stage",)),
    ("map-broken", lambda f, r: ["--parity-ref", r, "--parity-cand", port_dump(f / "p.npz"), "--parity-map",
                                 (f / "m.toml").write_text("[[tensor]]\nlayuot = 1\n") and f / "m.toml"],
     ("did you mean layout?",)),
    ("different-runs", lambda f, r: ["--parity-ref", r, "--parity-cand",
                                     write_trace(f / "c.h5", mini_stages(), {"seed": 7})], ("provenance field seed",)),
])
def test_plugin_bad_options_are_one_usage_error(tmp_path, name, args, needles):
    reference = write_trace(tmp_path / "ref.h5", mini_stages())
    argv = args(tmp_path, reference)
    before = snapshot(tmp_path)
    _plugin_usage_error(_pytest(tmp_path, *argv), *needles)
    assert_unchanged(before)


def test_plugin_fixture_with_an_unreadable_file_is_a_usage_error(tmp_path):
    (tmp_path / "test_port.py").write_text(PLUGIN_FIXTURE_TEST.format(ref=str(tmp_path / "gone.h5"), cand="x.h5"))
    before = snapshot(tmp_path)
    proc = _pytest(tmp_path, "test_port.py")
    assert proc.returncode == 4 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert "indextts-parity: trace not found" in proc.stdout + proc.stderr
    assert_unchanged(before)


def test_plugin_nothing_compared_is_one_failure_never_a_pass(tmp_path):
    reference = write_trace(tmp_path / "ref.h5", mini_stages())
    (tmp_path / "m.toml").write_text(MINI_MAP)
    dump = port_dump(tmp_path / "p.npz", {"unrelated": mel()})
    before = snapshot(tmp_path)
    proc = _pytest(tmp_path, "--parity-ref", reference, "--parity-cand", dump, "--parity-map", tmp_path / "m.toml",
                   "--junitxml", tmp_path / "j.xml")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed" in proc.stdout and "passed" not in proc.stdout and "NOTHING COMPARED" in proc.stdout
    assert 'failures="1"' in (tmp_path / "j.xml").read_text()
    assert_unchanged(before)


def test_plugin_group_not_provided_is_skipped_with_its_reason(tmp_path):
    reference = write_trace(tmp_path / "ref.h5", mini_stages())
    cand = write_trace(tmp_path / "c.h5", {k: v for k, v in mini_stages().items() if "step" not in k})
    proc = _pytest(tmp_path, "--parity-ref", reference, "--parity-cand", cand, "-rs")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 skipped" in proc.stdout and "the candidate provides none of the 2 stage(s)" in proc.stdout


# ---- exit 3 and a closed pipe ---------------------------------------------------------------------------

def test_internal_error_is_one_line_and_a_crash_log(tmp_path):
    code = ("import sys; from harness.commands import faults\n"
            "faults.run = lambda args: 1 / 0\n"
            "from harness.cli import main; sys.exit(main(['faults']))")
    proc = run_capped([sys.executable, "-c", code], tmp_path)
    assert_one_line(proc, 3, "internal error (ZeroDivisionError", "the traceback is in")
    log = proc.stderr.strip().rsplit(" ", 1)[-1]
    assert "Traceback" in open(log).read() and str(tmp_path / ".cache" / "crashes") in log


def test_output_into_a_closed_pipe_is_no_error(tmp_path):
    reference = write_trace(tmp_path / "ref.h5", mini_stages())
    cand = write_trace(tmp_path / "c.h5", mini_stages())
    env = dict(os.environ, INDEXTTS_PARITY_CACHE=str(tmp_path / ".cache"))
    shell = (f"{sys.executable} -m harness.cli compare {reference} {cand} --json {tmp_path / 'o.json'} | head -c 10; "
             "exit ${PIPESTATUS[0]}")
    proc = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout == "PASS: all ", proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Broken pipe" not in proc.stderr, proc.stderr
    assert (tmp_path / "o.json").is_file() and (tmp_path / "o.html").is_file()
