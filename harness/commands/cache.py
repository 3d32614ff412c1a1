"""Show or clean the cache: seeded weights, reference traces with their floors, replays, converted dumps.

The cache lives in $INDEXTTS_PARITY_CACHE (else $XDG_CACHE_HOME/indextts-parity, else
~/.cache/indextts-parity) and keeps to a budget ($INDEXTTS_PARITY_CACHE_BUDGET, default 10G) by removing the
least recently used entries after each command that adds to it; entries used in the last hour are kept.

  harness cache list           every entry, least recently used first, with its size; the total and budget
  harness cache clean          remove least recently used entries until the cache fits its budget
  harness cache clean --all    remove every entry
"""
from __future__ import annotations

import argparse
import time

from harness import cache
from harness.paths import cache_dir


def add_parser(sub) -> None:
    p = sub.add_parser("cache", help="list or clean the cache (budget, least-recently-used eviction)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("list", "clean"))
    p.add_argument("--all", action="store_true", help="with clean: remove every entry")
    p.set_defaults(run=run)


def _mb(n: int) -> str:
    return f"{n / (1 << 20):9.1f} MB"


def run(args: argparse.Namespace) -> int:
    limit = cache.budget()
    if args.action == "clean":
        removed = cache.clean(everything=args.all)
        print(f"removed {len(removed)} entries ({_mb(sum(e.size for e in removed)).strip()}) from {cache_dir()}")
    found = cache.entries()
    if args.action == "list":
        for e in found:
            print(f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(e.used))}  {_mb(e.size)}  {e.path}")
    total = sum(e.size for e in found)
    print(f"{cache_dir()}: {len(found)} entries, {_mb(total).strip()} of a {_mb(limit).strip()} budget "
          f"(${cache.ENV_BUDGET})")
    return 0
