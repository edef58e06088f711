"""One module per ``imagelift`` subcommand: ``add_parser(subparsers)`` sets ``func`` to a ``run(args) -> int``."""
