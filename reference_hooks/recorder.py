"""How upstream's tensors reach a trace: one recorder per run, called by hooks and by the glue.

It copies each tensor off the graph at once (a later in-place change upstream must not alter what was
recorded) and hands it to the writer, so memory stays bounded by the largest single tensor. It records
only the stages its detail policy wants, and it keeps the results of the checks of recomputed (derived)
stages against the upstream values that follow them.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from harness.detail import Detail


@dataclass
class Recorder:
    writer: object  # a TraceWriter, or anything with write(path, array, dtype=, note=, sample_rate=) and flush()
    detail: Detail = field(default_factory=lambda: Detail("full"))
    checks: dict[str, str] = field(default_factory=dict)  # derived stage -> "ok ..." / "MISMATCH ..."
    hooking: bool = True  # False: a plain run, nothing hooked or recorded (the benchmark's baseline)

    def wants(self, path: str) -> bool:
        return self.hooking and self.detail.wants(path)

    def __call__(self, path: str, tensor: torch.Tensor, note: str = "", sample_rate: int = 0) -> torch.Tensor:
        if self.hooking and self.detail.wants(path):
            t = tensor.detach()
            # numpy has no bfloat16: reduced precisions (an autocast run) are widened exactly, their dtype kept
            value = t.cpu().float().numpy() if t.dtype in (torch.bfloat16, torch.float16) else t.cpu().numpy()
            self.writer.write(path, value, dtype=str(t.dtype).replace("torch.", ""), note=note, sample_rate=sample_rate)
        return tensor

    def check(self, path: str, computed: torch.Tensor, upstream: torch.Tensor, against: str) -> None:
        """Record whether a recomputed stage equals the upstream value that follows it."""
        if computed.shape != upstream.shape:
            self.checks[path] = f"MISMATCH: shape {tuple(computed.shape)} vs {against} {tuple(upstream.shape)}"
            return
        diff = float((computed.double() - upstream.double()).abs().max()) if computed.numel() else 0.0
        self.checks[path] = f"ok: equals {against}" if diff == 0 else f"MISMATCH: max abs {diff:g} vs {against}"

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()


class MemoryWriter:
    """Enough of TraceWriter for in-process comparisons: every write kept in order."""

    def __init__(self):
        self.items: list[tuple[str, object]] = []

    def write(self, path, array, dtype=None, note="", sample_rate=0):
        self.items.append((path, array.copy()))

    def flush(self):
        pass


_INHERITED = object()  # a patched attribute that was not the owner's own: deleted again on removal


class Hooks:
    """Every hook and patch of one run, registered through one object and all undone by `hooked()`."""

    def __init__(self):
        self._handles: list = []
        self._patches: list[tuple[object, str, object]] = []

    def forward(self, module: torch.nn.Module, fn) -> None:
        self._handles.append(module.register_forward_hook(fn))

    def pre(self, module: torch.nn.Module, fn, with_kwargs: bool = False) -> None:
        """`fn(module, args)`, or `fn(module, args, kwargs)` with_kwargs (for modules called with keywords)."""
        self._handles.append(module.register_forward_pre_hook(fn, with_kwargs=with_kwargs))

    def patch(self, owner: object, name: str, replacement) -> None:
        """Replace an attribute (a function upstream calls, a method hooks cannot see) until the run ends.

        A method patched on an instance is deleted again afterwards, so the class's own is found as before."""
        own = name in getattr(owner, "__dict__", {})
        self._patches.append((owner, name, getattr(owner, name) if own else _INHERITED))
        setattr(owner, name, replacement)

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        for owner, name, original in reversed(self._patches):
            if original is _INHERITED:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._handles.clear()
        self._patches.clear()


@contextlib.contextmanager
def hooked() -> Iterator[Hooks]:
    """A Hooks object whose registrations are removed on exit, whatever happens."""
    hooks = Hooks()
    try:
        yield hooks
    finally:
        hooks.remove()
