"""Layering: the comparison core runs without torch (a port's CI can compare traces cheaply), and
our reimplementation never imports upstream."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NO_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now fails
from harness.cli import main
sys.exit(main(["compare", {ref!r}, {cand!r}, "--stage", "dit", "--json", {out!r}]))
"""


def test_compare_runs_without_torch(tmp_path, tiny_short_run):
    code = NO_TORCH.format(ref=str(tiny_short_run.reference), cand=str(tiny_short_run.free),
                           out=str(tmp_path / "s.json"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("PASS: all ")


def _imports(folder: str) -> set[str]:
    found = set()
    for f in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
    return found


def test_reimpl_never_imports_upstream_or_the_hooks():
    bad = {m for m in _imports("reimpl") if m.split(".")[0] in ("indextts", "reference_hooks")}
    assert not bad, bad


def test_core_modules_do_not_import_torch_at_top_level():
    core = ["trace", "metrics", "compare", "console", "summary", "junit", "diagnosis", "schema", "tolerance",
            "foreign", "configs", "cli", "weights"]
    for name in core:
        tree = ast.parse((ROOT / "harness" / f"{name}.py").read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        mods = {a.name for n in top if isinstance(n, ast.Import) for a in n.names} | {
            n.module for n in top if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(m.split(".")[0] == "torch" for m in mods), name
