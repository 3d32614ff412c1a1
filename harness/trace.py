"""The trace file: one HDF5 dataset per stage, written as the stage runs.

Why HDF5: a trace of a real-size run holds gigabytes; a reader must be able to open one stage, or one
slice of it, without loading the rest, and a writer must be able to stream stage after stage with
memory bounded by the largest single tensor.

A writer never exposes a half-written file under its final name: it writes `NAME.partial`, and only
a run that ends cleanly is renamed to `NAME`. An interrupted run leaves `NAME.partial`, readable,
with `complete = False`.
"""
from __future__ import annotations

import json
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
import h5py
import numpy as np

from harness import schema
from harness.errors import UserError

FORMAT = "indextts-parity-trace"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class StageInfo:
    """What a trace says about one stored stage, without its data."""

    path: str
    shape: tuple[int, ...]
    dtype: str  # the dtype the stage was computed in
    layout: str
    cfg: str
    derived: bool
    order: int
    note: str = ""


def partial_path(final: Path) -> Path:
    return final.with_name(final.name + ".partial")


class TraceWriter:
    """Streams stages into a trace; use as a context manager so the file is always closed.

    Writing happens on a background thread, so the disk works while the model computes: a capture
    costs the copy of each tensor, not its write. The queue is short (`QUEUE` tensors), so memory
    stays bounded by a few of the largest tensors whatever the number of stages or steps.
    """

    QUEUE = 4

    def __init__(self, path: str | Path, provenance: dict):
        self.path = Path(path)
        self.tmp = partial_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = h5py.File(self.tmp, "w")
        self._order = 0
        self._seen: set[str] = set()
        self._file.attrs["format"] = FORMAT
        self._file.attrs["format_version"] = FORMAT_VERSION
        self._file.attrs["complete"] = False
        self._provenance = dict(provenance, start_time=_now())
        self._file.attrs["provenance"] = json.dumps(self._provenance, sort_keys=True, default=str)
        self._file.flush()
        self._queue: queue.Queue = queue.Queue(maxsize=self.QUEUE)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="trace-writer", daemon=True)
        self._thread.start()

    def write(self, path: str, value: np.ndarray, *, dtype: str | None = None, cfg: str | None = None,
              note: str = "") -> None:
        """Store one stage; the schema gives its layout, CFG arrangement and derived flag."""
        self._raise_pending()
        spec = schema.spec_for(path)
        if path in self._seen:
            raise ValueError(f"stage {path} written twice")
        self._seen.add(path)
        value = np.asarray(value)
        computed = dtype or str(value.dtype)
        # a private copy: the caller's tensor may be changed in place once this returns
        kind = np.float64 if value.dtype == np.float64 else (np.float32 if value.dtype.kind == "f" else value.dtype)
        value = np.array(value, dtype=kind, copy=True)
        attrs = {"layout": spec.layout, "cfg": cfg or spec.cfg, "derived": spec.derived, "dtype": computed,
                 "order": self._order}
        if note:
            attrs["note"] = note
        self._order += 1
        self._queue.put(("write", path, value, attrs))

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item[0] == "stop":
                    return
                if self._error is None:
                    self._apply(item)
            except BaseException as exc:  # kept and raised in the caller's thread
                self._error = exc
            finally:
                self._queue.task_done()

    def _apply(self, item) -> None:
        if item[0] == "write":
            _, path, value, attrs = item
            ds = self._file.create_dataset(path, data=value)  # contiguous: the fastest to stream out
            ds.attrs.update(attrs)
        elif item[0] == "flush":
            self._file.flush()

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def update_provenance(self, **fields) -> None:
        self._provenance.update(fields)
        self._queue.join()
        self._file.attrs["provenance"] = json.dumps(self._provenance, sort_keys=True, default=str)

    def flush(self) -> None:
        self._queue.put(("flush",))

    def close(self, complete: bool, reason: str = "") -> Path:
        """Finish the file; only a complete trace takes its final name (atomically)."""
        self._queue.put(("stop",))
        self._thread.join()
        failed, self._error = self._error, None
        complete = complete and failed is None
        if failed is not None and not reason:
            reason = f"{type(failed).__name__}: {failed}"
        self._provenance.update(end_time=_now(), **({"interrupted": reason} if reason else {}))
        self._file.attrs["provenance"] = json.dumps(self._provenance, sort_keys=True, default=str)
        self._file.attrs["complete"] = complete
        self._file.close()
        if failed is not None:
            raise failed
        if complete:
            os.replace(self.tmp, self.path)
            return self.path
        return self.tmp

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close(complete=True)
        else:
            self.close(complete=False, reason=f"{exc_type.__name__}: {exc}")


class Trace:
    """A read-only trace. Opening checks the format; data is read stage by stage, on demand."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"trace not found: {self.path}")
        try:
            self._file = h5py.File(self.path, "r")
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.path}: not a readable HDF5 trace ({_short(exc)})") from None
        attrs = self._file.attrs
        if attrs.get("format") != FORMAT:
            self._file.close()
            raise UserError(f"{self.path}: not an indextts-parity trace (no format mark)")
        version = int(attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
            self._file.close()
            raise UserError(
                f"{self.path}: trace format version {version}, this harness reads {FORMAT_VERSION}; "
                "capture it again with `harness capture`"
            )
        try:
            self.provenance: dict = json.loads(attrs.get("provenance", "{}"))
            self.complete = bool(attrs.get("complete", False))
            self._stages = self._index()
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            self._file.close()
            raise UserError(f"{self.path}: corrupt trace ({_short(exc)})") from None

    def _index(self) -> dict[str, StageInfo]:
        found: list[StageInfo] = []

        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Dataset):
                a = obj.attrs
                found.append(
                    StageInfo(
                        path=name,
                        shape=tuple(obj.shape),
                        dtype=str(a.get("dtype", obj.dtype)),
                        layout=str(a.get("layout", "")),
                        cfg=str(a.get("cfg", schema.CFG_NONE)),
                        derived=bool(a.get("derived", False)),
                        order=int(a.get("order", 1 << 30)),
                        note=str(a.get("note", "")),
                    )
                )

        self._file.visititems(visit)
        found.sort(key=lambda s: (s.order, s.path))
        return {s.path: s for s in found}

    def stages(self) -> list[StageInfo]:
        """Every stored stage, in the order it was written (pipeline order)."""
        return list(self._stages.values())

    def __contains__(self, path: str) -> bool:
        return path in self._stages

    def info(self, path: str) -> StageInfo:
        try:
            return self._stages[path]
        except KeyError:
            raise UserError(f"{self.path}: no stage {path!r}") from None

    def dataset(self, path: str) -> h5py.Dataset:
        self.info(path)
        return self._file[path]

    def read(self, path: str, index=()) -> np.ndarray:
        try:
            return np.asarray(self.dataset(path)[index])
        except (OSError, RuntimeError) as exc:
            raise UserError(f"{self.path}: cannot read {path} ({_short(exc)}); the file looks truncated") from None

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "Trace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
