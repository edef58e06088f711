"""The ``imagelift`` command. Each subcommand lives in ``imagelift.commands.<name>`` and registers itself.

Subcommands that need the checkout's tooling (``models``, ``local``, ``demo``) live in the separate
``imagelift-infra`` project and are found through the ``imagelift.commands`` entry-point group, so this library
never imports them. Subcommand modules keep heavy imports (onnxruntime, pandas, boto3) inside their ``run``
functions so that ``imagelift --help`` and argument errors stay instant.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from types import ModuleType

SUBCOMMANDS = (
    "classify",
    "evaluate",
    "report",
    "simulate",
    "backfill",
    "reclassify",
    "categories",
    "correct",
    "review",
    "redrive",
)
PLUGIN_GROUP = "imagelift.commands"


def subcommand_modules() -> list[ModuleType]:
    """The library's own subcommands, then those other installed projects register under ``PLUGIN_GROUP``."""
    modules = [importlib.import_module(f"imagelift.commands.{name}") for name in SUBCOMMANDS]
    for entry in sorted(importlib.metadata.entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        if entry.name not in SUBCOMMANDS:
            modules.append(entry.load())
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagelift", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in subcommand_modules():
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
