"""``imagelift classify PATH... [--json] [--annotate DIR] [--threads N]``: sort photos into model / worn / product.

Folders are searched recursively. Every file found gets a line: image files (by extension, or by their first bytes
when the extension says nothing) are classified; a file of a refused kind (GIF, TIFF, PDF, ...) or a broken one gets
an ``error`` line; OS metadata (``.DS_Store``, ``Thumbs.db``, ``._*``), hidden files and files that are not images
get a ``skipped`` line with the reason. The run always goes on; the exit status is 1 at the end if any file
failed (skips are not failures).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagelift.progress import ProgressBar

if TYPE_CHECKING:  # the config module is imported when a command runs, not for --help
    from imagelift.config import VisionConfig

IMAGE_SUFFIXES = {
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".png",
    ".webp",
    ".heic",
    ".heif",
    ".avif",
    # Refused formats, listed so that they are reported, not silently skipped:
    ".gif",
    ".bmp",
    ".tif",
    ".tiff",
}
PROGRESS_MIN_FILES = 20


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classify",
        help="classify photos: 1 model (face), 2 worn (person, no face), 3 product",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders (recursive)")
    parser.add_argument("--json", action="store_true", help="one JSON object per image per line")
    parser.add_argument("--annotate", type=Path, metavar="DIR", help="write copies with boxes and landmarks drawn")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--threads`` and ``--models-dir``: the options of every command that runs the cascade here."""
    parser.add_argument(
        "--threads", type=int, default=None, metavar="N", help="ONNX Runtime threads (default: IMAGELIFT_THREADS or 1)"
    )
    parser.add_argument(
        "--models-dir", type=Path, default=None, help="models directory (default: IMAGELIFT_MODELS_DIR or ./models)"
    )


def vision_config(args: argparse.Namespace) -> VisionConfig | None:
    """VisionConfig from the environment with the command's ``--threads`` / ``--models-dir``; None (said) if bad."""
    from imagelift.config import VisionConfig

    overrides: dict[str, Any] = {}
    if args.threads is not None:
        if args.threads < 0:
            print("error: --threads must be >= 0", file=sys.stderr)
            return None
        overrides["threads"] = args.threads
    if args.models_dir is not None:
        overrides["models_dir"] = args.models_dir
    return VisionConfig.from_env(**overrides)


def collect(paths: list[Path]) -> tuple[list[Path], list[dict]]:
    """Files to classify (as given, and from folders, sorted; missing paths kept to report) and the skip rows of
    the folders' other files."""
    from imagelift.records.keys import OS_METADATA_FILES

    files: list[Path] = []
    skipped: list[dict] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        for p in sorted(p for p in path.rglob("*") if p.is_file()):
            if p.name.lower() in OS_METADATA_FILES or p.name.startswith("._"):
                skipped.append(_skip(p, "os_metadata", "a file the operating system writes, not a photo"))
            elif any(part.startswith(".") for part in p.relative_to(path).parts):
                skipped.append(_skip(p, "hidden", "a hidden file or folder"))
            elif p.suffix.lower() in IMAGE_SUFFIXES or _looks_like_a_photo(p):
                files.append(p)
            else:
                skipped.append(_skip(p, "not_an_image", _what_it_is(p)))
    return files, skipped


def _skip(path: Path, code: str, message: str) -> dict:
    return {"path": str(path), "skipped": {"code": code, "message": message}}


def _head(path: Path) -> bytes | None:
    try:
        with path.open("rb") as handle:
            return handle.read(512)
    except OSError:
        return None


def _looks_like_a_photo(path: Path) -> bool:
    """An image without an image extension (``IMG_0001``, ``photo.jpg.download``): decided by its first bytes."""
    from imagelift.vision.image_io import ImageDecodeError, sniff_format

    head = _head(path)
    if not head:
        return False
    try:
        sniff_format(head)
    except ImageDecodeError as exc:
        return exc.code == "truncated"  # a signature cut at 512 bytes cannot be, but keep the rule total
    return True


def _what_it_is(path: Path) -> str:
    from imagelift.vision.image_io import ImageDecodeError, sniff_format

    head = _head(path)
    if head is None:
        return "cannot be read"
    try:
        sniff_format(head)
    except ImageDecodeError as exc:
        return f"not an image: {exc.message}"
    return "not an image"


def run(args: argparse.Namespace) -> int:
    from imagelift.vision.cascade import Cascade
    from imagelift.vision.image_io import ImageDecodeError

    config = vision_config(args)
    if config is None:
        return 2
    files, skipped = collect(args.paths)
    for row in skipped:
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"skipped {row['path']}: {row['skipped']['message']}", file=sys.stderr)
    if not files:
        print("error: no image files found", file=sys.stderr)
        return 1
    try:
        cascade = Cascade.load(config)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.annotate:
        args.annotate.mkdir(parents=True, exist_ok=True)

    rows: list[dict] = []
    failures = 0
    progress = ProgressBar(len(files), verb="classified", enabled=len(files) >= PROGRESS_MIN_FILES)
    for index, path in enumerate(files):
        started = time.perf_counter()
        try:
            data = path.read_bytes()
            result = cascade.classify_bytes(data, name=str(path))
            if args.annotate:
                write_annotated(args.annotate, path, files, data, result, config)
            row = {
                "path": str(path),
                **result.to_record(),
                "ms": round((time.perf_counter() - started) * 1000, 1),
            }
        except ImageDecodeError as exc:
            row = {"path": str(path), "error": exc.to_record()}
        except MemoryError:  # this photo is too much for this machine; the next may not be
            row = {"path": str(path), "error": {"code": "too_large", "message": "ran out of memory"}}
        except OSError as exc:
            row = {"path": str(path), "error": {"code": "unreadable", "message": exc.strerror or str(exc)}}
        failures += "error" in row
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
        progress.update(index + 1, name=path.name)
    progress.finish()
    if not args.json:
        print_table(rows)
    return 1 if failures else 0


def write_annotated(out_dir: Path, path: Path, files: list[Path], data: bytes, result, config) -> None:
    import cv2

    from imagelift.vision.annotate import annotate
    from imagelift.vision.image_io import DecodeLimits, decode_image

    full = decode_image(data, limits=DecodeLimits.from_config(config)).bgr
    # Names from different folders may clash: keep the path below the common folder, flattened.
    name = "__".join(path.resolve().parts[-3:]) if len({f.name for f in files}) < len(files) else path.name
    target = out_dir / (Path(name).stem + ".annotated.jpg")
    cv2.imwrite(str(target), annotate(full, result), [cv2.IMWRITE_JPEG_QUALITY, 90])


def print_table(rows: list[dict]) -> None:
    from imagelift.records.categories import CATEGORY_NAMES

    width = min(60, max((len(r["path"]) for r in rows), default=4))
    print(f"{'path':{width}}  {'category':10}  {'by':5}  {'faces':>5}  {'persons':>7}  {'ms':>7}")
    for r in rows:
        path = r["path"] if len(r["path"]) <= width else "..." + r["path"][-(width - 3) :]
        if "error" in r:
            print(f"{path:{width}}  ERROR {r['error']['code']}: {r['error']['message']}")
        else:
            category = f"{r['category']} {r['category_name']}"
            print(
                f"{path:{width}}  {category:10}  {r['decided_by']:5}  {len(r['faces']):5d}  "
                f"{len(r['persons']):7d}  {r['ms']:7.1f}"
            )
    counts = Counter(r["category"] for r in rows if "error" not in r)
    errors = Counter(r["error"]["code"] for r in rows if "error" in r)
    print()
    for number, name in CATEGORY_NAMES.items():
        print(f"{number} {name:8} {counts.get(number, 0):5d}")
    if errors:
        print(f"{'errors':10} {sum(errors.values()):5d}  ({', '.join(f'{k} {v}' for k, v in sorted(errors.items()))})")
    classified = [r["ms"] for r in rows if "error" not in r]
    if classified:
        classified.sort()
        print(f"{len(classified)} classified, median {classified[len(classified) // 2]:.1f} ms per photo")
