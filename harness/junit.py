"""JUnit XML of a comparison: one test case per stage (per CFG half), failure message = the verdict
line of that stage, so any CI that reads JUnit shows where a port diverges."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.compare import Comparison
from harness.console import failure_detail, verdict_line
from harness.summary import write_text


def to_xml(c: Comparison, suite: str = "indextts-parity") -> str:
    """Stages the candidate does not provide are skipped (never passed); a run that compared nothing adds
    one failing case with the verdict, so a CI that reads JUnit never shows it green."""
    failures = [r for r in c.results if r.failed]
    skipped = [r for r in c.results if r.status == "missing"]
    nothing = not c.compared
    tests, failed = len(c.results) + nothing, len(failures) + nothing
    root = ET.Element("testsuites", name=suite, tests=str(tests), failures=str(failed))
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(tests), failures=str(failed),
                       errors="0", skipped=str(len(skipped)))
    if nothing:
        msg = verdict_line(c)
        case = ET.SubElement(ts, "testcase", classname="indextts-parity", name="nothing compared")
        ET.SubElement(case, "failure", message=msg, type="nothing compared").text = msg
    first = c.first_divergence
    for r in c.results:
        group = r.path.rsplit("/", 1)[0]
        case = ET.SubElement(ts, "testcase", classname=group.replace("/", "."), name=r.label)
        if r.failed:
            role = "first divergence" if r is first else ("inherited error" if r.status == "propagated" else "diverges")
            msg = f"{r.label}: {failure_detail(r)}"
            el = ET.SubElement(case, "failure", message=msg, type=role)
            el.text = msg
        elif r.status == "missing":
            ET.SubElement(case, "skipped", message=r.problem)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write(c: Comparison, path: Path) -> Path:
    return write_text(to_xml(c), path)
