"""The CLI's machine-readable outputs, from real runs: JSON against its documented schema, JUnit in a
JUnit reader, the verdict line first, and exit codes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
from junitparser import JUnitXml

from harness import summary
from harness.compare import compare_traces, open_traces

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "results-schema.json").read_text())


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_fault_run_prints_first_divergence_first_and_exits_1(tmp_path, tiny_short_fault_run):
    out_json, out_xml = tmp_path / "r.json", tmp_path / "r.xml"
    proc = harness("compare", "--stage", "dit", "--config", "tiny", "--steps", "3", "--seed", "1",
                   "--fault", "cfm.final_layer.no_silu", "--json", str(out_json), "--junit", str(out_xml))
    assert proc.returncode == 1, proc.stderr
    first_line = proc.stdout.splitlines()[0]
    assert first_line.startswith("first divergence: cfm/seg_00/step_00/dit/final_layer/silu (cond) - local rel-L2")
    data = json.loads(out_json.read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["first_divergence"] == "cfm/seg_00/step_00/dit/final_layer/silu (cond)" and data["exit_code"] == 1
    xml = JUnitXml.fromfile(str(out_xml))
    cases = [case for suite in xml for case in suite]
    assert len(cases) == len(data["stages"])
    failed = [c for c in cases if c.result]
    assert failed and any("first divergence" == r.type for c in failed for r in c.result)
    first = next(c for c in cases if c.name == "cfm/seg_00/step_00/dit/final_layer/silu (cond)")
    assert first.result[0].message.startswith("cfm/seg_00/step_00/dit/final_layer/silu (cond): local rel-L2")


def test_passing_run_json_roundtrips(tmp_path, tiny_short_run):
    with open_traces(**tiny_short_run.roles()) as traces:
        c = compare_traces(traces, stage="dit")
    path = summary.write(c, tmp_path / "s.json")
    data = json.loads(path.read_text())
    jsonschema.validate(data, SCHEMA)
    back = summary.from_json(data)
    assert back.results == c.results and back.passed and summary.to_json(back) == data


def test_passing_default_exits_0(tmp_path, tiny_short_run):
    proc = harness("compare", "--stage", "dit", "--config", "tiny", "--steps", "3", "--seed", "1",
                   "--json", str(tmp_path / "ok.json"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("PASS: all ")
