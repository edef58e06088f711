"""The ``imagelift`` command. Each subcommand lives in ``imagelift.commands.<name>`` and registers itself.

Subcommand modules keep heavy imports (onnxruntime, pandas, boto3) inside their ``run`` functions so that
``imagelift --help`` and argument errors stay instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = ("classify", "evaluate", "report", "simulate", "models", "backfill", "local", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagelift", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"imagelift.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"imagelift.commands.{name}":
                raise
            continue  # not built yet
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
