"""The machinery of our hostile corpus: run a command the way a user would, capped, and check what it left.

Every case runs `harness ...` (or pytest with the plugin) in a subprocess under a time limit and an
address-space limit, with its own cache folder, in a scratch folder that holds only tiny hand-written
files. It checks the exit code, that stderr is one line with no traceback (for exit 2 and 3), and that
every file that existed before (the scratch folder's and any shared trace it read) is byte-identical after.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.trace import TraceWriter

ROOT = Path(__file__).resolve().parent.parent
TIME_CAP = 90  # seconds per case (wall); a case that hangs (a FIFO read, a decompression bomb) fails here
MEM_CAP = 1536 << 20  # address space per case: a run that believes a declared terabyte fails here
TORCH_MEM_CAP = 6 << 30  # for the commands that import torch (its address space reservation alone is large)

#: provenance fields that name one run (harness/runs.py)
RUN = {"config": "tiny", "config_digest": "d0", "seed": 1, "checkpoint_digest": "c0", "inputs_digest": "i0"}


def _limits(mem: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (TIME_CAP, TIME_CAP))

    return apply


def run_capped(argv: list[str], cwd: Path, *, mem: int = MEM_CAP, env: dict | None = None,
               stdin=None) -> subprocess.CompletedProcess:
    environ = dict(os.environ, INDEXTTS_PARITY_CACHE=str(cwd / ".cache"), TQDM_DISABLE="1", COLUMNS="200")
    environ.update(env or {})
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=TIME_CAP, env=environ,
                          preexec_fn=_limits(mem), stdin=stdin if stdin is not None else subprocess.DEVNULL)


def harness(*args: str, cwd: Path, mem: int = MEM_CAP, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_capped([sys.executable, "-m", "harness.cli", *map(str, args)], cwd, mem=mem, env=env)


def snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every regular file under the roots (FIFOs and devices are not read)."""
    out = {}
    for root in roots:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
        for p in files:
            if ".cache" in p.parts:
                continue
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_unchanged(before: dict[str, str]) -> None:
    changed = [p for p, h in before.items() if not Path(p).is_file()
               or hashlib.sha256(Path(p).read_bytes()).hexdigest() != h]
    assert not changed, f"pre-existing files changed or removed: {changed}"


PROGRESS = ("generating seeded weights",)


def assert_one_line(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    """Exit code `code`, no traceback anywhere; for 2 and 3 exactly one stderr line holding the needles.

    Progress lines (work the command did before it failed, e.g. generating seeded weights) are not part
    of the error and are left out of the count."""
    where = f"exit {proc.returncode}\nstdout: {proc.stdout[-1500:]}\nstderr: {proc.stderr[-1500:]}"
    assert proc.returncode == code, where
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, where
    if code in (2, 3):
        lines = [x for x in proc.stderr.splitlines() if x.strip() and not x.startswith(PROGRESS)]
        assert len(lines) == 1, where
        text = lines[0]
    else:
        text = proc.stdout
    for n in needles:
        assert n in text, f"{n!r} not in: {text[:2000]}"


@dataclass(frozen=True)
class Case:
    """One hostile case: what to build and run, and the exit code and words it must answer with."""

    name: str
    build: object  # (folder, reference) -> argv after "harness"
    code: int
    needles: tuple[str, ...] = ()
    mem: int = MEM_CAP

    def run(self, folder: Path, reference: Path) -> None:
        argv = self.build(folder, reference)
        before = snapshot(folder)
        proc = harness(*argv, cwd=folder, mem=self.mem)
        assert_one_line(proc, self.code, *self.needles)
        assert_unchanged(before)


# ---- tiny hand-written traces ---------------------------------------------------------------------------

def velocity(step: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(step)
    return (scale * rng.standard_normal((2, 80, 8))).astype(np.float32)


def mel() -> np.ndarray:
    return np.random.default_rng(9).standard_normal((1, 80, 8)).astype(np.float32)


def write_trace(path: Path, stages: dict[str, np.ndarray], provenance: dict | None = None, **cfg) -> Path:
    """A trace of our schema holding exactly these stages (in this order)."""
    with TraceWriter(path, dict(RUN, **(provenance or {}))) as w:
        for stage, value in stages.items():
            w.write(stage, value, cfg=cfg.get(stage))
    return path


def mini_stages() -> dict[str, np.ndarray]:
    out = {"frontend/mel/out": mel(), "cfm/seg_00/t_span": np.linspace(0, 1, 4, dtype=np.float32)}
    for k in range(3):
        out[f"cfm/seg_00/step_{k:02d}/dit/velocity"] = velocity(k)
    out["cfm/seg_00/mel_out"] = mel()
    return out


MINI_MAP = """
[[tensor]]
name = "step{step}.v"
stage = "cfm/seg_00/step_{step}/dit/velocity"
layout = "B C T"
half = "both"

[[tensor]]
name = "mel"
stage = "cfm/seg_00/mel_out"
layout = "B C T"
half = "none"
"""


def port_dump(path: Path, tensors: dict[str, np.ndarray] | None = None) -> Path:
    """A port's npz: the mini run's tensors under the port's names."""
    if tensors is None:
        tensors = {f"step{k}.v": velocity(k) for k in range(3)} | {"mel": mel()}
    np.savez(path, **tensors)
    return path


def npy_bytes(shape, descr: str = "<f4") -> bytes:
    """An .npy header declaring any shape, followed by no data at all."""
    header = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def safetensors_bytes(header: dict | bytes, data: bytes = b"", declared: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(text) if declared is None else declared
    return n.to_bytes(8, "little") + text + data
