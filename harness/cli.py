"""`harness`: find the first stage where an IndexTTS2 implementation parts from upstream.

Exit codes: 0 all stages within tolerance, 1 a divergence found, 2 bad input or usage.
"""
from __future__ import annotations

import argparse
import os
import sys

from harness.commands import capture, compare, export_inputs, faults, replay, report, stages
from harness.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors keep exit code 2, in one line
        self.exit(2, f"harness: error: {message} (see `harness --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in (compare, report, capture, replay, stages, faults, export_inputs):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TQDM_DISABLE", "1")  # upstream draws a progress bar per CFM call
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UserError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
