"""The two kinds of failure the CLI tells apart.

A `UserError` is bad input or usage: the CLI prints its one line and exits 2. Anything else is a bug
in the harness and keeps its traceback.
"""


class UserError(Exception):
    """Bad input or usage: a missing or corrupt file, an unknown stage, config or layout."""

    exit_code = 2
