"""How the port runners (`ports/run_*.py`) end: bad input as the harness answers it, one line and its exit code."""
from __future__ import annotations

import sys
from collections.abc import Callable

from harness.errors import UserError


def run(main: Callable[[], int], prog: str) -> int:
    """`main()`, with a UserError (a missing or unusable recording, a refused checkpoint) as one line on stderr."""
    try:
        return main()
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
