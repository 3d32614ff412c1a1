"""Import the upstream `indextts` modules (and torchaudio's Python code) without their heavy `__init__`s.

`indextts/__init__.py` imports `infer_v2`, which needs the whole inference stack (transformers,
torchaudio, a hub download). Each part's modules need much less, so we register a bare package object
whose `__path__` points at the real folder and import submodules through it. torchaudio 2.9.1 (the
version upstream's front end was written against) is a CUDA wheel whose C++ extension cannot load with
CPU torch 2.13, but the Python code upstream calls (`transforms.Resample`, `compliance.kaldi.fbank`,
`functional`) needs no extension: it is installed `--no-deps` and registered the same way, with a stub
`torchaudio._extension` that says the extension is absent. Both bare packages carry a real `__spec__`
(transformers calls `importlib.util.find_spec`). The code that runs is upstream's and torchaudio's own,
unmodified.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
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
        _bare_package("indextts", pkg_dir)
    _loaded = source
    return source


def _bare_package(name: str, folder: Path) -> types.ModuleType:
    """A package object for `folder` that does not run its `__init__.py`, with a real `__spec__`."""
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    package = importlib.util.module_from_spec(spec)
    package.__path__ = [str(folder)]
    package.__file__ = str(folder / "__init__.py")
    sys.modules[name] = package
    return package


def _extension_absent(func):
    """Stands in for torchaudio's decorators of functions that need its C++ extension."""

    def unavailable(*_args, **_kwargs):
        raise RuntimeError(f"torchaudio.{func.__name__} needs torchaudio's C++ extension, which is absent here")

    return unavailable


def load_torchaudio() -> types.ModuleType:
    """`torchaudio` with `compliance.kaldi`, `functional` and `transforms` bound, its C++ extension absent."""
    existing = sys.modules.get("torchaudio")
    if existing is not None and getattr(existing, "_bare_for_indextts_parity", False):
        return existing
    try:
        dist = importlib.metadata.distribution("torchaudio")
    except importlib.metadata.PackageNotFoundError:
        raise UserError("torchaudio's Python code is not installed: pip install --no-deps torchaudio==2.9.1 "
                        "(make setup does it)") from None
    folder = Path(dist.locate_file("torchaudio"))
    ta = _bare_package("torchaudio", folder)
    ta._bare_for_indextts_parity = True
    ext = types.ModuleType("torchaudio._extension")
    ext.__spec__ = importlib.machinery.ModuleSpec("torchaudio._extension", None)
    ext._IS_TORCHAUDIO_EXT_AVAILABLE = False
    ext._IS_RIR_AVAILABLE = False
    ext._IS_ALIGN_AVAILABLE = False
    ext.fail_if_no_align = _extension_absent
    ext.fail_if_no_rir = _extension_absent
    sys.modules["torchaudio._extension"] = ext
    ta._extension = ext
    for sub in ("compliance", "compliance.kaldi", "functional", "transforms"):
        importlib.import_module(f"torchaudio.{sub}")
    ta.compliance = sys.modules["torchaudio.compliance"]
    ta.functional = sys.modules["torchaudio.functional"]
    ta.transforms = sys.modules["torchaudio.transforms"]
    return ta


def import_module(name: str):
    """Import `indextts.<name>` after `load_upstream`; a missing dependency is a UserError."""
    if _loaded is None:
        load_upstream()
    try:
        return importlib.import_module(f"indextts.{name}")
    except ImportError as exc:
        raise UserError(f"cannot import upstream module indextts.{name}: {exc}") from None
    except SyntaxError as exc:  # a clone given with --reference-src that does not parse
        raise UserError(f"upstream module indextts.{name} does not parse: {exc.filename}:{exc.lineno}: {exc.msg}"
                        ) from None
