"""``imagelift demo``: the whole flow on this machine, no AWS account and no Docker (``make demo`` runs it).

Starts moto on 127.0.0.1, creates every resource of template.yaml in it, uploads sample photos under
images/<product>/<listing>/, runs ClassifyImageFunction on each S3 notification, puts a simulated sales export
with planted effects under sales/, runs InfluenceReportFunction, prints each photo's category and each effect
beside the planted value, writes out/report.html, and stops everything it started.
Photos: scikit-image's bundled photographs, or IMAGES=DIR (folders named cat1/cat2/cat3 or model/worn/product
give the labels).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole flow locally: photos in, categories out, the weekly report at the end",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "--images",
        type=Path,
        default=Path(os.environ["IMAGES"]) if os.environ.get("IMAGES") else None,
        metavar="DIR",
        help="photos to upload (default: env IMAGES, else scikit-image's bundled photos)",
    )
    parser.add_argument("--products", type=int, default=48, help="simulated products, ~3 listings each (default 48)")
    parser.add_argument("--weeks", type=int, default=52, help="weeks of simulated sales (default 52)")
    parser.add_argument("--out", type=Path, default=Path("out"), metavar="DIR", help="where report.html goes")
    parser.add_argument(
        "--concurrency", type=int, default=2, help="classify function instances on the queue (default 2)"
    )
    parser.add_argument(
        "--runner",
        choices=("auto", "rie", "in-process"),
        default="auto",
        help="how functions run: the Lambda Runtime Interface Emulator (auto: where it can) or in this process",
    )
    parser.add_argument("--seed", type=int, default=3, help="seed of the simulated catalogue and sales")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from infra.localstack.demo import DemoOptions, ElapsedLog, run_demo

    if args.products < 1 or args.weeks < 4 or args.concurrency < 1:
        print("imagelift demo: --products >= 1, --weeks >= 4 and --concurrency >= 1 are needed", file=sys.stderr)
        return 2
    models_dir = Path(os.environ.get("IMAGELIFT_MODELS_DIR") or "models")
    if not (models_dir / "manifest.json").is_file():
        print(
            f"imagelift demo: no models at {models_dir}: run `make models` (or `imagelift models build`)",
            file=sys.stderr,
        )
        return 2
    options = DemoOptions(
        products=args.products,
        weeks=args.weeks,
        images_dir=args.images,
        out_dir=args.out,
        concurrency=args.concurrency,
        runner=args.runner,
        seed=args.seed,
        models_dir=models_dir.resolve(),
    )
    # `kill` (SIGTERM) unwinds like Ctrl-C, so the function processes and the moto server are stopped either way.
    signal.signal(signal.SIGTERM, _interrupt)
    say = ElapsedLog()
    say("imagelift demo: the whole flow on this machine (moto on 127.0.0.1, no AWS account, no Docker)")
    try:
        result = run_demo(options, say)
    except FileNotFoundError as exc:
        print(f"imagelift demo: {exc}", file=sys.stderr)
        return 2
    print()
    print(render_summary(result.to_dict()))
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def render_summary(summary: dict) -> str:
    """The demo's closing text: each photo's category, each effect beside the planted value, where the files are."""
    lines = ["Photos (each uploaded under several listings) and the category ClassifyImageFunction gave them:"]
    width = max((len(p["photo"]) for p in summary["photos"]), default=10)
    for photo in summary["photos"]:
        given = ", ".join(f"{name} x{count}" for name, count in photo["categories"].items())
        how = photo.get("decided_by")
        evidence = ""
        if how == "mtcnn":
            evidence = f" (face {photo.get('top_score', 0):.2f})"
        elif how == "yolo":
            evidence = f" (person {photo.get('top_score', 0):.2f})"
        agree = "" if set(photo["categories"]) == {photo["label"]} or photo["label"] == "unlabelled" else "  <- differs"
        lines.append(f"  {photo['photo']:{width}s}  label {photo['label']:8s} -> {given}{evidence}{agree}")
    statuses = ", ".join(f"{k} {v}" for k, v in summary["records_by_status"].items())
    lines.append(f"ImageCategories: {summary['records']} records ({statuses}) for {summary['uploads']} uploads")
    lines.append("")
    lines.append("Effect on weekly units against product-only photos (PPML, product and week fixed effects, 95% CI):")
    for effect in summary["effects"]:
        planted = effect.get("planted_pct")
        planted_text = f"planted {planted:+.1f}%" if planted is not None else ""
        if effect.get("effect_pct") is None:
            lines.append(
                f"  {effect['category_name']:6s} no estimate: {effect.get('note') or 'not estimable'}  {planted_text}"
            )
            continue
        lo, hi = effect["effect_pct_ci"]
        inside = "inside" if planted is not None and lo <= planted <= hi else "OUTSIDE"
        lines.append(
            f"  {effect['category_name']:6s} {effect['effect_pct']:+6.1f}%  [{lo:+.1f}%, {hi:+.1f}%]   "
            f"{planted_text} ({inside} the interval)"
        )
    el = summary["price_elasticity"]
    if el.get("estimate") is not None:
        lo, hi = el["ci"]
        inside = "inside" if lo <= el["planted"] <= hi else "OUTSIDE"
        lines.append(
            f"  price elasticity {el['estimate']:+.2f}  [{lo:+.2f}, {hi:+.2f}]   planted {el['planted']:+.2f} ({inside})"
        )
    for note in summary.get("notes", []):
        lines.append(f"note: {note}")
    lines.append("")
    files = summary["files"]
    lines.append(
        f"Report: {files['report.html']}  (also {files['influence.csv']}, {files['influence.json']}, "
        f"{files['categories.jsonl']})"
    )
    timings = summary["timings_s"]
    lines.append(
        f"Done in {summary['wall_s']:.1f} s (stack {timings.get('stack', 0):.1f} s, classification "
        f"{timings.get('classify', 0):.1f} s, report {timings.get('report', 0):.1f} s; functions ran "
        f"{'under the Lambda Runtime Interface Emulator' if summary['runner'] == 'rie' else 'in process'})."
    )
    return "\n".join(lines)
