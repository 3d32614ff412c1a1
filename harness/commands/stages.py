"""List the stages a trace holds (path, shape, layout, CFG arrangement, dtype), or the schema itself."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import stages as schema
from harness.commands.common import PORTER_PATH
from harness.errors import UserError
from harness.trace import Trace


def add_parser(sub) -> None:
    p = sub.add_parser("stages", help="list the stages of a trace, or of the schema", description=__doc__,
                       epilog=PORTER_PATH, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trace", nargs="?", type=Path)
    p.add_argument("--stage", default=None, help="only stages matching this selection")
    p.add_argument("--schema", action="store_true", help="list the schema's stage templates instead")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # piped output is never cut to 80 columns: a stage name or number is never truncated
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 250)
    table = Table(box=None, header_style="bold")
    if args.schema or args.trace is None:
        if args.trace is None and not args.schema:
            raise UserError("give a TRACE, or --schema")
        for col in ("template", "layout", "cfg", "derived", "kind", "detail", "meaning"):
            table.add_column(col, no_wrap=col != "meaning")
        for s in schema.STAGES:
            kind = s.kind + (", draw" if s.draw else "") + (f", stand-in for {s.stand_in}" if s.stand_in else "")
            table.add_row(s.template, s.layout, s.cfg, "yes" if s.derived else "", kind, s.detail, s.doc)
        console.print(table)
        return 0
    select = schema.selector(args.stage)
    with Trace(args.trace) as trace:
        for col in ("#", "stage", "shape", "layout", "cfg", "dtype", "derived"):
            table.add_column(col, no_wrap=True)
        shown = [s for s in trace.stages() if select(s.path)]
        for i, s in enumerate(shown):
            table.add_row(str(i), s.path, "x".join(map(str, s.shape)), s.layout, s.cfg, s.dtype, "yes" if s.derived else "")
        p = trace.provenance
        console.print(f"{trace.path}: {len(shown)} stages; {p.get('implementation', '?')} "
                      f"({p.get('reference_version') or p.get('mode', '')}), config {p.get('config')}, "
                      f"seed {p.get('seed')}, {p.get('dtype')}, detail {(p.get('detail') or {}).get('level', 'full')}, "
                      f"noise floors {'yes' if trace.has_floors else 'no'}"
                      + ("" if trace.complete else "; INCOMPLETE (interrupted)"))
        console.print(table)
    return 0
