"""JUnit XML of a comparison: one test case per stage (per CFG half), failure message = the verdict
line of that stage, so any CI that reads JUnit shows where a port diverges."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.compare import Comparison
from harness.console import failure_detail
from harness.summary import write_text


def to_xml(c: Comparison, suite: str = "indextts-parity") -> str:
    failures = [r for r in c.results if r.failed]
    skipped = [r for r in c.results if r.status == "missing"]
    root = ET.Element("testsuites", name=suite, tests=str(len(c.results)), failures=str(len(failures)))
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(c.results)), failures=str(len(failures)),
                       errors="0", skipped=str(len(skipped)))
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
