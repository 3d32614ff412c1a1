"""Layering, enforced on the source: the comparison core runs without torch (a port's CI can compare traces
cheaply), the model packages are reached through one place, and our reimplementation never imports upstream.

Every import is checked, nested ones (inside functions) included.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL_PACKAGES = ("torch", "reference_hooks", "reimpl", "indextts", "torchaudio", "transformers")
#: the one module through which harness commands reach the model packages
GATEWAY = ROOT / "harness" / "commands" / "models.py"

NO_TORCH = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # any import of these now fails
from harness.cli import main
sys.exit(main(["compare", {ref!r}, {cand!r}, "--stage", "dit", "--json", {out!r}]))
"""


def _imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, module, nested) for every import in a file; nested = inside a function or class."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, id(node) not in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, id(node) not in top))
            found += [(node.lineno, f"{node.module}.{a.name}", id(node) not in top) for a in node.names]
    return found


def test_compare_runs_without_torch(tmp_path, tiny_short_run):
    code = NO_TORCH.format(blocked=list(MODEL_PACKAGES), ref=str(tiny_short_run.reference),
                           cand=str(tiny_short_run.free), out=str(tmp_path / "s.json"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("PASS: all ")


def test_harness_core_never_reaches_model_code():
    bad = []
    for f in (ROOT / "harness").rglob("*.py"):
        if f == GATEWAY:
            continue
        for line, module, _ in _imports(f):
            if module.split(".")[0] in MODEL_PACKAGES:
                bad.append(f"{f.relative_to(ROOT)}:{line} {module}")
    assert not bad, bad


def test_model_packages_are_reached_through_one_place_lazily():
    users = [(f, line, nested) for f in (ROOT / "harness").rglob("*.py") for line, module, nested in _imports(f)
             if module.startswith("harness.commands.models")]
    assert users, "no command reaches the gateway"
    for f, line, nested in users:
        assert f.parent.name == "commands", f"{f}:{line}: only commands may reach the model packages"
        assert nested, f"{f}:{line}: the gateway must be imported lazily, inside the command's function"


def test_reimpl_never_imports_upstream_or_the_hooks():
    bad = [(str(f), m) for f in (ROOT / "reimpl").rglob("*.py") for _, m, _ in _imports(f)
           if m.split(".")[0] in ("indextts", "reference_hooks")]
    assert not bad, bad


def test_reference_side_never_imports_reimpl():
    bad = [(str(f), m) for f in (ROOT / "reference_hooks").rglob("*.py") for _, m, _ in _imports(f)
           if m.split(".")[0] == "reimpl"]
    assert not bad, bad
