"""List the porting faults our reimplementation can switch on (`harness compare --fault NAME`).

Each fault is declared by its part (`harness/stages/<part>.py`): what the port got wrong, the stage where
the harness must show it first, and the hint expected there. `<part>.<module>.<what>` lives in
`reimpl/<part>/<module>.py`.
"""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from harness import stages
from harness.configs import get_config


def add_parser(sub) -> None:
    p = sub.add_parser("faults", help="list the switchable porting faults", description=__doc__)
    p.add_argument("--config", default="tiny", help="the config whose stage numbers to show (default tiny)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cfg = get_config(args.config)
    table = Table(box=None, header_style="bold")
    for col in ("fault", "what the port got wrong", "where it shows first", "hint"):
        table.add_column(col, no_wrap=col != "what the port got wrong")
    for f in stages.FAULTS:
        table.add_row(f.name, f.summary, stages.expected_stage(f, cfg), f.hint or "no known pattern")
    Console(highlight=False, width=200).print(table)
    return 0
