"""A port's own tensors, in its own names and layouts, mapped back onto our stages.

The candidate is our reimplementation's real output rewritten the way a port would dump it: other
names, time-major `B T C` where we use `B C T`, and the two CFG halves as separate tensors.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import stages
from harness.compare import TraceSet, compare_traces
from harness.foreign import convert
from harness.trace import Trace

ROOT = Path(__file__).resolve().parent.parent


def port_name(path: str) -> str:
    return "port." + path.replace("/", ".")


def write_foreign(native: Path, out: Path) -> None:
    """Dump a trace as a port would: B T C instead of B C T, CFG halves apart, its own names."""
    tensors = {}
    with Trace(native) as t:
        for s in t.stages():
            data = t.read(s.path)
            if s.layout == "B C T":
                data = np.ascontiguousarray(np.swapaxes(data, 1, 2))
            if s.cfg == stages.CFG_BOTH:
                n = data.shape[0] // 2
                tensors[port_name(s.path) + ".c"], tensors[port_name(s.path) + ".u"] = data[:n], data[n:]
            else:
                tensors[port_name(s.path)] = data
    np.savez(out, **tensors)


def write_map(out: Path) -> None:
    lines = []
    for spec in stages.STAGES:
        for stage in [spec.template]:
            layout = "B T C" if spec.layout == "B C T" else spec.layout
            if spec.cfg == stages.CFG_BOTH:
                for suffix, half in ((".c", "cond"), (".u", "uncond")):
                    lines += ["[[tensor]]", f'name = "{port_name(stage)}{suffix}"', f'stage = "{stage}"',
                              f'layout = "{layout}"', f'half = "{half}"', ""]
            else:
                lines += ["[[tensor]]", f'name = "{port_name(stage)}"', f'stage = "{stage}"', f'layout = "{layout}"',
                          'half = "none"', ""]
    out.write_text("\n".join(lines))


def verdict(ref: Path, cand: Path):
    with Trace(ref) as r, Trace(cand) as c:
        comp = compare_traces(TraceSet(r, c), stage="dit")
    return comp.passed, comp.first_divergence.label if comp.first_divergence else None, [
        (x.label, x.status) for x in comp.results]


@pytest.mark.parametrize("run_name", ["tiny_short_run", "tiny_short_fault_run"])
def test_foreign_layout_maps_back_to_the_native_verdict(tmp_path, request, run_name):
    run = request.getfixturevalue(run_name)
    cand, map_path = tmp_path / "port.npz", tmp_path / "port.map.toml"
    write_foreign(run.free, cand)
    write_map(map_path)
    with Trace(run.reference) as ref:
        converted, notes = convert(ref, cand, map_path, tmp_path / "converted.h5")
    assert not notes  # every tensor mapped, every stage provided
    assert verdict(run.reference, converted) == verdict(run.reference, run.free)


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_compare_command_with_map(tmp_path, tiny_short_fault_run):
    run = tiny_short_fault_run
    cand, map_path = tmp_path / "port.npz", tmp_path / "port.map.toml"
    write_foreign(run.free, cand)
    write_map(map_path)
    proc = harness("compare", str(run.reference), str(cand), "--map", str(map_path), "--stage", "dit",
                   "--json", str(tmp_path / "r.json"))
    assert proc.returncode == 1, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("first divergence: cfm/seg_00/step_00/dit/final_layer/silu (cond) - propagated rel-L2")
    assert "no teacher-forced run: propagated error decides" in first


@pytest.mark.parametrize("edit,needle", [
    (lambda m: m.replace('stage = "cfm/seg_{seg}/mel_out"', 'stage = "cfm/seg_{seg}/mel_outt"', 1),
     "not a stage of the schema (did you mean cfm/seg_{seg}/mel_out?)"),
])
def test_wrong_map_is_one_line_exit_2(tmp_path, tiny_short_run, edit, needle):
    cand, map_path = tmp_path / "port.npz", tmp_path / "port.map.toml"
    write_foreign(tiny_short_run.free, cand)
    write_map(map_path)
    map_path.write_text(edit(map_path.read_text()))
    report = tmp_path / "compare-port.json"
    report.write_text("earlier")
    proc = harness("compare", str(tiny_short_run.reference), str(cand), "--map", str(map_path), "--json", str(report))
    assert proc.returncode == 2
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr
    assert report.read_text() == "earlier"


def test_shape_that_differs_after_the_map_is_a_divergence_there(tmp_path, tiny_short_run):
    """A layout that says B C T where the port wrote B T C: the mel's shape differs from the reference's; that
    is a finding at that stage (exit 1), said first on the verdict line, not a refusal of the run."""
    cand, map_path = tmp_path / "port.npz", tmp_path / "port.map.toml"
    write_foreign(tiny_short_run.free, cand)
    write_map(map_path)
    map_path.write_text(map_path.read_text().replace('stage = "cfm/seg_{seg}/mel_out"\nlayout = "B T C"',
                                                     'stage = "cfm/seg_{seg}/mel_out"\nlayout = "B C T"', 1))
    proc = harness("compare", str(tiny_short_run.reference), str(cand), "--map", str(map_path), "--stage", "dit",
                   "--json", str(tmp_path / "r.json"), "--no-html")
    assert proc.returncode == 1, proc.stderr
    first = proc.stdout.splitlines()[0]
    with Trace(tiny_short_run.reference) as ref:
        frames = ref.info("cfm/seg_00/mel_out").shape[-1]  # set by the GPT's codes: read, never assumed
    over = frames - 80
    assert first.startswith(f"first divergence: cfm/seg_00/mel_out - shape (1, {frames}, 80) (B C T) vs the "
                            f"reference's (1, 80, {frames}) (B C T): C {frames} vs 80 ({over} over), "
                            f"T 80 vs {frames} ({over} short)"), first


def test_documented_example_map_loads():
    from harness.foreign import load_map

    entries = load_map(ROOT / "docs" / "example.map.toml")
    assert len(entries) == 11
    assert entries[4].pattern().match("step7.cond.velocity").group("step") == "7"
    assert entries[4].stage_for({"step": "7"}) == "cfm/seg_00/step_07/dit/velocity"


def test_export_inputs_for_a_port(tmp_path, tiny_short_run):
    import json

    from safetensors.numpy import load_file

    proc = harness("export-inputs", str(tiny_short_run.reference), "-o", str(tmp_path / "in"))
    assert proc.returncode == 0, proc.stderr
    st = load_file(str(tmp_path / "in" / "inputs.safetensors"))
    with np.load(tmp_path / "in" / "inputs.npz") as npz:
        assert sorted(npz.files) == sorted(st)
    meta = json.loads((tmp_path / "in" / "inputs.json").read_text())
    with Trace(tiny_short_run.reference) as ref:
        assert np.array_equal(st["cfm.seg_00.noise"], ref.read("cfm/seg_00/noise"))
        assert np.array_equal(st["cfm.seg_00.mu"], ref.read("cfm/seg_00/mu"))
        t_span = ref.read("cfm/seg_00/t_span")
        assert st["cfm.t_fed"].tolist() == [float(ref.read(f"cfm/seg_00/step_{k:02d}/dit/in/t")[0]) for k in range(3)]
        assert st["cfm.dt"].tolist() == [float(np.float32(t_span[k + 1]) - np.float32(t_span[k])) for k in range(3)]
    assert meta["tensors"]["cfm.seg_00.noise"]["layout"] == "B C T"
    assert meta["tensors"]["frontend.mel.out"]["parts"] == ["s2mel", "cfm", "vocoder"]
    assert meta["config"]["cfm"]["steps"] == 3
    # float inputs as float32; the discrete ones (text code points, codes) keep their integer dtype
    assert all(v.dtype == np.float32 if v.dtype.kind == "f" else v.dtype.kind in "iub" for v in st.values())


def test_export_weights_for_a_port(tmp_path, tiny_short_run):
    """The weights a port loads are the reference's to the last bit: read back from the exported files, they
    have the digest the trace's provenance recorded when upstream ran them."""
    import hashlib
    import json

    from harness import weights as W
    from harness.commands.models import key

    out = tmp_path / "w"
    proc = harness("export-weights", str(tiny_short_run.reference), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "weights.json").read_text())
    with Trace(tiny_short_run.reference) as ref:
        recorded = ref.provenance["checkpoint"]
    assert sorted(manifest["parts"]) == sorted(recorded["files"])
    digests = {}
    for part, entry in manifest["parts"].items():
        path = out / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        loaded = W.load(path)
        assert entry["tensors"] == len(loaded) and sorted(entry["names"]) == sorted(loaded)
        assert all(entry["names"][k]["shape"] == list(v.shape) for k, v in loaded.items())
        if "tokenizer" in entry:  # the GPT's sentencepiece model, stored with its weights as bytes
            loaded["bpe.model"] = np.frombuffer((out / entry["tokenizer"]["file"]).read_bytes(), dtype=np.uint8)
        digests[part] = W.digest(loaded)
    assert key(dict(sorted(digests.items()))) == recorded["digest"]
    # upstream's names, as its checkpoints hold them (weight norm unfolded: weight_g and weight_v)
    assert any(n.startswith("cfm.estimator.") for n in manifest["parts"]["cfm"]["names"])
    assert any(n.endswith(".weight_g") for n in manifest["parts"]["vocoder"]["names"])
    # an output that is a file, or an input that is not a trace: one line, exit 2
    bad = harness("export-weights", str(tiny_short_run.reference), "-o", str(out / "weights.json"))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    bad = harness("export-weights", str(out / "weights.json"), "-o", str(tmp_path / "w2"))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_forced_dump_through_the_map_gives_local_error(tmp_path, tiny_short_fault_run):
    """A port's teacher-forced dump goes through the same map as its free-running one: the verdict is then
    the local error, at the fault's own stage."""
    run = tiny_short_fault_run
    cand, forced, map_path = tmp_path / "port.npz", tmp_path / "port-forced.npz", tmp_path / "port.map.toml"
    write_foreign(run.free, cand)
    write_foreign(run.forced, forced)
    write_map(map_path)
    proc = harness("compare", str(run.reference), str(cand), "--forced", str(forced), "--map", str(map_path),
                   "--stage", "dit", "--json", str(tmp_path / "r.json"), "--no-html")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("first divergence: cfm/seg_00/step_00/dit/final_layer/silu (cond) - local rel-L2")


def test_port_counting_steps_from_one(tmp_path, tiny_short_run):
    """A port that numbers its ODE steps from 1: with count_from = {step = 1} in the map, the same verdict as
    our own trace; without it, the verdict names the fix."""
    import re

    cand, map_path = tmp_path / "port.npz", tmp_path / "port.map.toml"
    write_foreign(tiny_short_run.free, tmp_path / "zero-based.npz")
    with np.load(tmp_path / "zero-based.npz") as z:
        np.savez(cand, **{re.sub(r"step_(\d+)", lambda m: f"step_{int(m.group(1)) + 1:02d}", k): z[k] for k in z.files})
    write_map(map_path)
    plain = map_path.read_text()
    map_path.write_text(re.sub(r'(name = "[^"]*\{step\}[^"]*"\n)', r"\1count_from = {step = 1}\n", plain))
    with Trace(tiny_short_run.reference) as ref:
        converted, notes = convert(ref, cand, map_path, tmp_path / "converted.h5")
    assert not notes
    assert verdict(tiny_short_run.reference, converted) == verdict(tiny_short_run.reference, tiny_short_run.free)
    map_path.write_text(plain)
    proc = harness("compare", str(tiny_short_run.reference), str(cand), "--map", str(map_path), "--stage", "dit",
                   "--json", str(tmp_path / "r.json"), "--no-html")
    assert proc.returncode == 1 and "add count_from = {step = 1} to its entry" in proc.stdout.splitlines()[0], proc.stdout
