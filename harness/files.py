"""Writing files so that nothing is lost: unique temporaries created exclusively, renamed into place.

Every output of the harness (traces, reports, exported inputs, cached weights) goes through here, so an
interrupted run never leaves a half-written file under a final name and never writes through a symlink
or over one of its own inputs.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness.errors import UserError


def temporary_beside(final: Path) -> Path:
    """A new, empty, uniquely named file next to `final` (`NAME.<random>.partial`), created exclusively."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=final.name + ".", suffix=".partial", dir=final.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes it private; an output is as readable as any new file
    os.close(fd)
    return Path(name)


def check_target(final: Path) -> None:
    """An output may replace a regular file, never a directory, a device, a FIFO or a symlink."""
    try:
        st = os.lstat(final)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UserError(f"{final} is a symbolic link; refusing to write through it (give another output path)")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{final} exists and is not a regular file; refusing to replace it")


def publish(tmp: Path, final: Path) -> Path:
    """Move a finished temporary into place atomically."""
    check_target(final)
    os.replace(tmp, final)
    return final


@contextlib.contextmanager
def atomic(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it becomes `final`, on failure it is removed."""
    final = Path(final)
    check_target(final)
    tmp = temporary_beside(final)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    publish(tmp, final)


def _is_device(path: Path) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def write_text(text: str, final: str | Path) -> Path:
    """Write a text output atomically; a character device (`/dev/stdout`, `/dev/null`) is written through."""
    final = Path(final)
    if _is_device(final):
        with open(final, "w") as f:
            f.write(text)
        return final
    with atomic(final) as tmp:
        tmp.write_text(text)
    return final


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def input_file(path: str | Path, what: str, *, folder_ok: bool = False, max_bytes: int | None = None) -> Path:
    """An input the harness may open: a regular file (or, `folder_ok`, a folder), never a FIFO or device.

    A FIFO would block the run forever and a device would feed it without end, so both are refused by
    what `stat` says before anything is opened; `max_bytes` bounds a file read whole (maps, tolerances).
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode) and folder_ok:
        return path
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        raise UserError(f"{what} {path} is {kind}; give a regular file")
    if max_bytes is not None and st.st_size > max_bytes:
        from harness.limits import limit_error

        raise limit_error(f"{what} {path}", st.st_size, max_bytes, "MAX_TEXT_BYTES", "bytes")
    return path


def read_text(path: str | Path, what: str) -> str:
    """A small text input (a map, a tolerance file), read whole after `input_file` checked it."""
    from harness.limits import MAX_TEXT_BYTES

    path = input_file(path, what, max_bytes=MAX_TEXT_BYTES)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot be read ({exc.strerror})") from None


def folder_files(folder: Path | None, what: str) -> dict[str, Path]:
    """The files directly in an input folder, named for refuse_overlap (an output must be none of them)."""
    if folder is None or not Path(folder).is_dir():
        return {}
    return {f"{what} file {p.name}": p for p in sorted(Path(folder).iterdir()) if p.is_file()}


def same_file(a: Path, b: Path) -> bool:
    """True when two paths reach the same file (through a symlink, a hard link or `..`)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def refuse_overlap(outputs: dict[str, Path | None], inputs: dict[str, Path | None]) -> None:
    """Bad input when an output would overwrite an input, or two outputs name the same file."""
    outs = [(k, Path(v)) for k, v in outputs.items() if v is not None]
    ins = [(k, Path(v)) for k, v in inputs.items() if v is not None]
    for name, out in outs:
        for in_name, inp in ins:
            if same_file(out, inp):
                raise UserError(f"{name} {out} is the same file as the {in_name} {inp}; choose another output path")
    for name, out in outs:  # before any work: an output that cannot be written is bad input now, not later
        if not _is_device(out):
            try:
                check_target(out)
            except UserError as exc:
                raise UserError(f"{name}: {exc}") from None
    for i, (name, out) in enumerate(outs):
        for other, path in outs[i + 1 :]:
            if same_file(out, path) and not _is_device(out):  # two outputs into /dev/null are fine
                raise UserError(f"{name} and {other} are the same file ({out}); give them different paths")
