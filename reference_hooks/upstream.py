"""Import the upstream `indextts` s2mel modules without running the package's heavy `__init__`.

`indextts/__init__.py` imports `infer_v2`, which needs the whole inference stack (transformers,
torchaudio, a hub download). The s2mel modules need only torch, munch, einops and tqdm, so we
register a bare package object whose `__path__` points at the real folder and import submodules
through it. The code that runs is upstream's own, unmodified.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError

DISTRIBUTION = "indextts2-inference"


@dataclass(frozen=True)
class UpstreamSource:
    """Where the reference code came from; recorded in every trace."""

    kind: str  # "installed" or "clone"
    location: str
    version: str

    def as_dict(self) -> dict:
        return {"reference_kind": self.kind, "reference_location": self.location, "reference_version": self.version}


_loaded: UpstreamSource | None = None


def _package_dir_installed() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("indextts")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"the upstream package is not installed: pip install --no-deps {DISTRIBUTION}==2.1.1 "
            "(or pass --reference-src PATH to a clone of the official repository)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _clone_version(root: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            return "git:" + out.stdout.strip()
    except OSError:
        pass
    return "unknown (not a git checkout)"


def load_upstream(reference_src: str | Path | None = None) -> UpstreamSource:
    """Make `indextts.s2mel.*` importable from the installed package or from a clone.

    Idempotent for the same source; switching sources inside one process is refused because the
    modules are already bound.
    """
    global _loaded
    if _loaded is not None and reference_src is None:
        return _loaded
    if reference_src is not None:
        root = Path(reference_src).expanduser().resolve()
        pkg_dir = root / "indextts" if (root / "indextts").is_dir() else root
        if not (pkg_dir / "s2mel" / "modules" / "flow_matching.py").is_file():
            raise UserError(f"--reference-src {reference_src}: no indextts/s2mel/modules/flow_matching.py there")
        source = UpstreamSource("clone", str(pkg_dir), _clone_version(pkg_dir.parent))
    else:
        pkg_dir = _package_dir_installed()
        try:
            version = importlib.metadata.version(DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        source = UpstreamSource("installed", str(pkg_dir), f"{DISTRIBUTION}=={version}")
    if _loaded is not None:
        if _loaded.location != source.location:
            raise UserError(f"upstream already loaded from {_loaded.location}; start a new process for {source.location}")
        return _loaded
    existing = sys.modules.get("indextts")
    if existing is None or list(getattr(existing, "__path__", [])) != [str(pkg_dir)]:
        for name in [n for n in sys.modules if n == "indextts" or n.startswith("indextts.")]:
            del sys.modules[name]
        package = types.ModuleType("indextts")
        package.__path__ = [str(pkg_dir)]
        package.__file__ = str(pkg_dir / "__init__.py")
        sys.modules["indextts"] = package
    _loaded = source
    return source


def import_module(name: str):
    """Import `indextts.<name>` after `load_upstream`; a missing dependency is a UserError."""
    if _loaded is None:
        load_upstream()
    try:
        return importlib.import_module(f"indextts.{name}")
    except ImportError as exc:
        raise UserError(f"cannot import upstream module indextts.{name}: {exc}") from None
