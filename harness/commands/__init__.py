"""One module per `harness` subcommand; each module's docstring is its help text."""
