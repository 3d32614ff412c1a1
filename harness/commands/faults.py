"""List the porting faults our reimplementation can switch on (`harness compare --fault NAME`)."""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table


def add_parser(sub) -> None:
    p = sub.add_parser("faults", help="list the switchable porting faults", description=__doc__)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from reimpl.faults import CATALOGUE

    table = Table(box=None, header_style="bold")
    for col in ("fault", "what the port got wrong", "where it shows first", "hint"):
        table.add_column(col, no_wrap=col != "what the port got wrong")
    for f in CATALOGUE:
        table.add_row(f.name, f.summary, f.stage.replace("{first_receiver}", "N/2+1"), f.hint or "")
    Console(highlight=False, width=200).print(table)
    return 0
