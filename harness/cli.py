"""`harness`: find the first stage where an IndexTTS2 implementation parts from upstream.

A porter's path: `harness capture -o ref.h5` (upstream, hooked, with its noise floors), `harness
export-inputs ref.h5 -o inputs/` (what a port needs to replay it exactly) and `harness export-weights ref.h5
-o weights/` (the weights it ran), run the port and dump its tensors, then `harness compare ref.h5
port.safetensors --map port.map.toml` (docs/example.map.toml; `harness stages --schema` lists every stage).
With no arguments, `harness compare` runs upstream against our own reimplementation on the embedded default.

Exit codes: 0 every compared stage within tolerance; 1 a divergence found (or nothing compared);
2 bad input or usage (one line, no traceback); 3 an internal error (one line and the path of a crash log).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.commands import cache, capture, compare, export_inputs, export_weights, faults, replay, report, stages
from harness.errors import INTERNAL_ERROR, UserError, crash_log


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors keep exit code 2, in one line
        self.exit(2, f"harness: error: {message} (see `harness --help`)\n")


class _ClosedPipeSafe:
    """stdout that survives a reader going away (`harness compare | head -1`): output is dropped, the
    command goes on and still writes its reports."""

    def __init__(self, stream):
        self._stream, self._closed = stream, False

    def write(self, text: str) -> int:
        if not self._closed:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._closed = True
        return len(text)

    def flush(self) -> None:
        if not self._closed:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._closed = True

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _crash_log(exc: BaseException, argv: list[str]):
    """The crash log goes to the cache; where the cache cannot be written, to the temporary folder."""
    import tempfile

    from harness.cache import folder

    try:
        return crash_log(exc, argv, folder("crashes"))
    except OSError:
        return crash_log(exc, argv, Path(tempfile.gettempdir()))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in (compare, report, capture, replay, stages, faults, export_inputs, export_weights, cache):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TQDM_DISABLE", "1")  # upstream draws a progress bar per CFM call
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    sys.stdout = _ClosedPipeSafe(sys.stdout)
    try:
        return args.run(args)
    except UserError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug of ours: one line, the traceback in a crash log
        log = _crash_log(exc, argv)
        print(f"harness: internal error ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}); "
              f"the traceback is in {log}", file=sys.stderr)
        return INTERNAL_ERROR
    finally:
        if isinstance(sys.stdout, _ClosedPipeSafe):
            sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
