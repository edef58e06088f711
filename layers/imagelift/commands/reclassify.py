"""``imagelift reclassify [--all] [--run-id ID] [--bucket B] [--stack S | --table T] [--prefix images/]``: classify
again the recorded photos whose models or thresholds are not the current ones."""

from __future__ import annotations

import argparse

from imagelift.commands.backfill import TARGET_HELP, add_target_arguments, run_over_photos


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reclassify",
        help="classify again the recorded photos decided by other models or thresholds (or --all); safe to rerun",
        description="Lists the current photos under --prefix and classifies again each one whose record names other "
        "model ids or thresholds than the classifier loaded now (IMAGELIFT_* settings, the models directory), or "
        "every recorded photo with --all. Each record is rewritten as a new revision of itself, the reason and the "
        "replaced outcome appended to its reclassifications. Up-to-date records are skipped, so a rerun finishes "
        "what is left; an --all run is resumed with --run-id. Photos with no record are left to backfill. "
        f"{TARGET_HELP} Exit status 1 when some photos hit an error (rerun to finish them).",
    )
    add_target_arguments(parser)
    parser.add_argument(
        "--all", dest="all_records", action="store_true", help="every recorded photo, not only stale ones"
    )
    parser.add_argument("--run-id", default=None, help="resume this earlier run (printed in its summary)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imagelift.services.reclassify import ReclassifyService

    return run_over_photos(
        args,
        ReclassifyService,
        lambda service, bucket, prefix, progress: service.run(
            bucket,
            prefix,
            all_records=args.all_records,
            run_id=args.run_id,
            concurrency=args.concurrency,
            progress=progress,
        ),
        progress_label="reclassified",
        rerun_hint=lambda summary: f" --run-id {summary.run_id}" if args.all_records else "",
    )
