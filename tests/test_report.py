"""The HTML report, opened in headless Chromium as a person would: no network, no console errors,
the first-divergence marker and the plots present; screenshots land in the test's temporary folder."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")


def make_report(tmp_path: Path, run, name: str) -> Path:
    out = tmp_path / f"{name}.html"
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(run.reference), str(run.free),
                           "--forced", str(run.forced), "-o", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stderr
    return out


def open_in_chromium(page: Path, tmp_path: Path, screenshot: Path) -> tuple[str, str]:
    """The DOM after the page's script ran, and everything Chromium logged while loading it."""
    common = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    shot = subprocess.run([*common, f"--screenshot={screenshot}", "--window-size=1400,2400", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert screenshot.exists() and screenshot.stat().st_size > 10_000
    return dom.stdout, dom.stderr + shot.stderr


def check_page(html: str, dom: str, log: str) -> None:
    # nothing to fetch: every src/href is inline data or an anchor on the page, and no URL at all
    targets = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert targets and all(t.startswith(("data:", "#")) for t in targets), [t[:40] for t in targets]
    assert "http://" not in html and "https://" not in html
    # the inline script ran to its end without an uncaught error, and nothing failed to load
    assert 'data-ready="1"' in dom
    # Chromium logs every console message (errors included) as INFO:CONSOLE; the page logs none
    assert not re.search(r"CONSOLE|Uncaught|net::ERR_", log), log[-2000:]
    assert len(re.findall(r'class="plot"><img alt="[^"]*" src="data:image/png;base64,', html)) >= 3


def test_passing_report(tmp_path, tiny_short_run):
    page = make_report(tmp_path, tiny_short_run, "pass")
    html = page.read_text()
    dom, log = open_in_chromium(page, tmp_path, tmp_path / "report-pass.png")
    check_page(html, dom, log)
    assert 'class="verdict pass"' in html and 'id="first-divergence"' not in html
    # the pipeline's first and last audio: the speaker recording and the joined output, a player for each
    # side under each heading (a passing run has no failing audio stage to add)
    for stage in ("inputs/speaker_wav", "vocoder/wav"):
        players = re.search(rf"<h3 class='small'>{stage}</h3><div class='plots'>(.*?)</div></div>", html)
        assert players and re.findall(r"<div>(\w+)<br><audio controls", players.group(1) + "</div>") == [
            "reference", "candidate"], stage
    # the pipeline diagram: every part in pipeline order, each passing, none marked
    assert _diagram(dom) == [(p, "pass", False) for p in PIPELINE]
    # both sides' output audio as spectrograms with their difference (three panels: equal lengths)
    assert "output audio (vocoder/wav): log mel spectrograms of both sides and their difference" in html


def test_faulty_report_marks_the_first_divergence(tmp_path, tiny_short_fault_run):
    page = make_report(tmp_path, tiny_short_fault_run, "fault")
    html = page.read_text()
    dom, log = open_in_chromium(page, tmp_path, tmp_path / "report-fault.png")
    check_page(html, dom, log)
    assert 'class="verdict fail"' in html
    row = re.search(r'<tr class="fail" id="first-divergence"><td class="n">\d+</td><td>([^<]+)</td>', html)
    assert row and row.group(1) == "cfm/seg_00/step_00/dit/final_layer/silu (cond)"
    assert "difference histogram: cfm/seg_00/step_00/dit/final_layer/silu (cond)" in html
    # the diagram: the parts before the CFM pass, the CFM fails and carries the first divergence, the vocoder
    # after it only inherits the error
    diagram = _diagram(dom)
    assert [p for p, _, _ in diagram] == PIPELINE
    states = {p: (state, first) for p, state, first in diagram}
    assert all(states[p] == ("pass", False) for p in PIPELINE[: PIPELINE.index("cfm")])
    assert states["cfm"] == ("fail", True) and states["vocoder"] == ("propagated", False)
    assert re.search(r'data-part="cfm".*?first divergence:<br>cfm/seg_00/step_00/dit/final_layer/silu \(cond\)',
                     dom, re.S)


PIPELINE = ["inputs", "frontend", "style", "semantic", "gpt", "s2mel", "cfm", "vocoder"]


def _diagram(dom: str) -> list[tuple[str, str, bool]]:
    """(part, state, marked as holding the first divergence) of every box of the rendered diagram, in order."""
    boxes = re.findall(r'<div class="part (\w+)( first)?" data-part="(\w+)" data-state="(\w+)">', dom)
    assert all(cls == state for cls, _, _, state in boxes)
    return [(part, state, bool(first)) for _, first, part, state in boxes]
