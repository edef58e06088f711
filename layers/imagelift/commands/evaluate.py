"""``imagelift evaluate DIR... [--json] [--html DIR]``: how well the cascade sorts photos whose category is known.

Each DIR holds ``cat1_model``, ``cat2_legs`` and ``cat3_product`` folders (or is one of them); the folder is the
label. Prints the confusion matrix, the recall of each class, how many photos landed in review and the accuracy
of the rest, and every wrong photo with its scores (faces, near-miss face score, each net's person score per pass).
Beside the figures measured here it prints the cross-validated estimate that the shipped thresholds were chosen
with (``--cv``, bench/results/vision_tuning.json) and, with the hand stage on, the cascade's estimate with that stage
(``--hand-cv``, bench/results/hands_fusion.json), the face gate's (``--gate-cv``) and the pose stage's
(``--pose-cv``, bench/results/pose_face.json), so a figure from a handful of photos is not taken for the truth.
``--html DIR`` writes a contact sheet of the mistakes with the boxes drawn.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from pathlib import Path
from typing import Any

from imagelift.commands.classify import add_model_arguments, vision_config

DEFAULT_CV = Path("bench") / "results" / "vision_tuning.json"
DEFAULT_HAND_CV = Path("bench") / "results" / "hands_fusion.json"
DEFAULT_GATE_CV = Path("bench") / "results" / "person_gate.json"
DEFAULT_POSE_CV = Path("bench") / "results" / "pose_face.json"
THUMB_LONG_SIDE = 360


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="classify labelled folders (cat1_model, cat2_legs, cat3_product): confusion matrix, recall, mistakes",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="folders holding cat1_model/ cat2_legs/ ...")
    parser.add_argument("--json", action="store_true", help="print the whole evaluation as one JSON object")
    parser.add_argument("--html", type=Path, metavar="DIR", help="write DIR/index.html: the mistakes, boxes drawn")
    parser.add_argument(
        "--cv",
        type=Path,
        default=None,
        help=f"tuning results holding the cross-validated estimate (default: {DEFAULT_CV} when it exists)",
    )
    parser.add_argument(
        "--hand-cv",
        type=Path,
        default=None,
        help=f"the hand stage's tuning results, used when the stage is on (default: {DEFAULT_HAND_CV} when it exists)",
    )
    parser.add_argument(
        "--gate-cv",
        type=Path,
        default=None,
        help=f"the face gate's tuning results, used when the gate is on (default: {DEFAULT_GATE_CV} when it exists)",
    )
    parser.add_argument(
        "--pose-cv",
        type=Path,
        default=None,
        help=f"the pose stage's tuning results, used when the stage is on (default: {DEFAULT_POSE_CV} when it exists)",
    )
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def gate_estimate(path: Path | None) -> dict[str, Any] | None:
    """The CV figures of the cascade with its face gate (bench/person_gate.py), per scheme: model recall, products
    called worn or model, the share of photos whose face stage is skipped, model copies lost and false faces
    removed by the gate."""
    path = path if path is not None else (DEFAULT_GATE_CV if DEFAULT_GATE_CV.is_file() else None)
    if path is None:
        return None
    cv = json.loads(path.read_text(encoding="utf-8"))["cv"]
    keys = ("model_recall", "products_called_worn_or_model", "gated", "model_copies_lost", "false_faces_removed")
    return {"source": str(path), **{scheme: {k: entry["test"][k] for k in keys} for scheme, entry in cv.items()}}


def pose_stage_estimate(path: Path | None) -> dict[str, Any] | None:
    """The CV figures of the cascade with its pose stage (bench/pose_face.py, the shipped ``budget`` fit), per
    scheme: model and worn recall, worn photos called model, products called worn or model."""
    path = path if path is not None else (DEFAULT_POSE_CV if DEFAULT_POSE_CV.is_file() else None)
    if path is None:
        return None
    cv = json.loads(path.read_text(encoding="utf-8"))["modes"]["budget"]["cv"]
    keys = ("model", "worn", "worn_called_model", "products_called_worn_or_model")
    return {"source": str(path), **{scheme: {k: entry["test"][k] for k in keys} for scheme, entry in cv.items()}}


def hand_stage_estimate(path: Path | None) -> dict[str, Any] | None:
    """The CV figures of the cascade with its hand stage (bench/hands_fusion.py, the shipped ``capped_any`` fit), per
    scheme: shares of hand, legs and all worn photos called worn, of products called worn or model."""
    path = path if path is not None else (DEFAULT_HAND_CV if DEFAULT_HAND_CV.is_file() else None)
    if path is None:
        return None
    cv = json.loads(path.read_text(encoding="utf-8"))["modes"]["capped_any"]["cv"]
    return {
        "source": str(path),
        **{
            scheme: {
                "hands": figures["test"]["hands"]["called_worn"],
                "legs": figures["test"]["legs"]["called_worn"],
                "worn_recall": figures["test"]["worn"]["called_worn"],
                "product_called_worn_or_model": figures["test"]["product_called_worn_or_model"],
            }
            for scheme, figures in cv.items()
        },
    }


def cross_validated_estimate(path: Path | None) -> dict[str, Any] | None:
    """The CV figures of the shipped thresholds, from bench/tune_vision.py's results; None when not available."""
    path = path if path is not None else (DEFAULT_CV if DEFAULT_CV.is_file() else None)
    if path is None:
        return None
    tuning = json.loads(path.read_text(encoding="utf-8"))
    return {
        "source": str(path),
        "chosen": tuning.get("chosen"),
        **{
            scheme: {
                key: figures.get(key)
                for key in ("per_kind", "worn_recall", "product_called_worn_or_model", "accuracy", "review_share")
            }
            for scheme, figures in tuning.get("cv", {}).items()
        },
    }


def run(args: argparse.Namespace) -> int:
    from imagelift.vision.cascade import Cascade
    from imagelift.vision.evaluation import labelled_files, summarise
    from imagelift.vision.image_io import ImageDecodeError

    missing = [str(d) for d in args.dirs if not d.is_dir()]
    if missing:
        print(f"error: not a folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    files = labelled_files(args.dirs)
    if not files:
        print("error: no photos under cat1_model/, cat2_legs/ or cat3_product/", file=sys.stderr)
        return 1
    for given in (args.cv, args.hand_cv, args.gate_cv, args.pose_cv):
        if given is not None and not given.is_file():
            print(f"error: {given} does not exist", file=sys.stderr)
            return 2
    config = vision_config(args)
    if config is None:
        return 2
    try:
        cascade = Cascade.load(config)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    results = []
    for item in files:
        try:
            record = cascade.classify_path(item.path).to_record()
        except ImageDecodeError as exc:
            record = {"error": exc.to_record()}
        except OSError as exc:
            record = {"error": {"code": "unreadable", "message": exc.strerror or str(exc)}}
        results.append((item, record))
    summary = summarise(results)
    summary["thresholds"] = dict(cascade.thresholds)
    summary["cross_validated_estimate"] = cross_validated_estimate(args.cv)
    if summary["cross_validated_estimate"] is not None and cascade.hands is not None:
        summary["cross_validated_estimate"]["with_hand_stage"] = hand_stage_estimate(args.hand_cv)
    if summary["cross_validated_estimate"] is not None and cascade.config.face_gate_min_person > 0:
        summary["cross_validated_estimate"]["with_face_gate"] = gate_estimate(args.gate_cv)
    if summary["cross_validated_estimate"] is not None and cascade.pose is not None:
        summary["cross_validated_estimate"]["with_pose_stage"] = pose_stage_estimate(args.pose_cv)
    if args.html:
        write_contact_sheet(args.html, cascade, summary)
        summary["html"] = str(args.html / "index.html")
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
    return 0


def print_summary(summary: dict[str, Any]) -> None:
    from imagelift.records.categories import CATEGORY_NAMES

    names = [CATEGORY_NAMES[i] for i in (1, 2, 3)]
    print(f"{summary['correct']}/{summary['photos']} correct ({summary['accuracy']:.1%})")
    print()
    header = "true \\ predicted"
    print(f"{header:18}" + "".join(f"{n:>9}" for n in names) + f"{'recall':>9}")
    for label, row in zip(names, summary["confusion"]["matrix"], strict=True):
        recall = summary["per_class"][label]["recall"]
        cell = f"{recall:.1%}" if recall is not None else "-"
        print(f"{label:18}" + "".join(f"{v:9d}" for v in row) + f"{cell:>9}")
    review = summary["review"]
    print()
    print(
        f"review: {review['photos']} photos ({(review['share'] or 0):.1%}); accuracy outside review "
        f"{_pct(review['accuracy_outside_review'])}, in review {_pct(review['accuracy_in_review'])}"
    )
    estimate = summary.get("cross_validated_estimate")
    if estimate:
        for scheme in ("photos", "sources"):
            figures = estimate.get(scheme)
            if figures:
                kinds = ", ".join(
                    f"{kind} {v['recall']:.0%}"
                    for kind, v in figures["per_kind"].items()
                    if v.get("recall") is not None
                )
                print(f"cross-validated estimate ({scheme} left out, {estimate['source']}): {kinds}")
        _stage_estimate_lines(
            estimate.get("with_hand_stage"),
            "hand stage",
            lambda f: (
                f"hands {f['hands']:.0%}, legs {f['legs']:.0%}, worn {f['worn_recall']:.0%}, "
                f"products called worn or model {f['product_called_worn_or_model']:.1%}"
            ),
        )
        _stage_estimate_lines(
            estimate.get("with_face_gate"),
            "face gate",
            lambda f: (
                f"model {f['model_recall']:.0%}, products called worn or model {f['products_called_worn_or_model']:.1%}, "
                f"face stage skipped on {f['gated']:.0%} of photos (of their copies: {f['false_faces_removed']} false "
                f"faces removed, {f['model_copies_lost']} model ones lost)"
            ),
        )
        _stage_estimate_lines(
            estimate.get("with_pose_stage"),
            "pose stage",
            lambda f: (
                f"model {f['model']:.0%}, worn {f['worn']:.0%}, worn called model {f['worn_called_model']:.1%}, "
                f"products called worn or model {f['products_called_worn_or_model']:.1%}"
            ),
        )
    if summary["mistakes"]:
        print()
        print("wrong:")
        for m in summary["mistakes"]:
            print(
                f"  {m['path']}: {m['label']} {m['label_name']} called {m['predicted']} {m['predicted_name']} "
                f"({m['decided_by']}); faces {m['faces']} {_face_text(m)}; "
                f"persons {m['persons']} scores {json.dumps(m['person_scores'])}{_pose_text(m)}{_hand_text(m)}"
                f"{' [review]' if m['review'] else ''}"
            )
    for e in summary["errors"]:
        print(f"  {e['path']}: ERROR {e['error']['code']}: {e['error']['message']}")


def _stage_estimate_lines(section: dict[str, Any] | None, stage: str, describe) -> None:
    """One line per CV scheme of a stage's own tuning results (``describe`` words its figures)."""
    for scheme in ("photos", "sources"):
        figures = (section or {}).get(scheme)
        if figures:
            print(f"  with the {stage} ({scheme} left out, {section['source']}): {describe(figures)}")


def _face_text(mistake: dict[str, Any]) -> str:
    """The face near miss, or why there is none: the person gate kept MTCNN from running."""
    gate = mistake.get("face_gate")
    if gate and not gate["open"]:
        return f"no face looked for ({gate['net']} person {gate['person']} < {gate['threshold']})"
    return f"best rejected face {mistake['best_face_score']}"


def _pose_text(mistake: dict[str, Any]) -> str:
    """The pose stage's best head score where it ran."""
    vote = mistake.get("pose_face")
    if not vote:
        return ""
    return f"; pose stage: head {vote['score']} {'>=' if vote['fired'] else '<'} {vote['threshold']}"


def _hand_text(mistake: dict[str, Any]) -> str:
    """The hand stage's votes where it ran (the person vote, then each HandTrack input's best hand score)."""
    vote = mistake.get("hand_vote")
    if not vote:
        return ""
    hands = ", ".join(f"{name} {'not run' if vote[name] is None else vote[name]}" for name in ("stretched", "padded"))
    return f"; hand stage: person {vote['person']}, {hands}{', fired' if vote['fired'] else ''}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def write_contact_sheet(out_dir: Path, cascade, summary: dict[str, Any]) -> None:
    """``out_dir/index.html`` and a thumbnail per mistake, annotated with the boxes the cascade saw."""
    import cv2

    from imagelift.vision.annotate import annotate
    from imagelift.vision.image_io import decode_image

    out_dir.mkdir(parents=True, exist_ok=True)
    cells = []
    for index, mistake in enumerate(summary["mistakes"]):
        path = Path(mistake["path"])
        data = path.read_bytes()
        result = cascade.classify_bytes(data, name=str(path))
        image = annotate(decode_image(data).bgr, result)
        scale = THUMB_LONG_SIDE / max(image.shape[:2])
        if scale < 1:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        thumb = f"{index:04d}_{path.stem[:60]}.jpg"
        cv2.imwrite(str(out_dir / thumb), image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        scores = html.escape(json.dumps(mistake["person_scores"]))
        cells.append(
            f'<figure><img src="{html.escape(thumb)}" alt="{html.escape(path.name)}">'
            f"<figcaption><b>{html.escape(path.name)}</b><br>true {mistake['label_name']}, called "
            f"{mistake['predicted_name']} ({html.escape(str(mistake['decided_by']))})"
            f"{' <i>review</i>' if mistake['review'] else ''}<br>faces {mistake['faces']}, "
            f"{html.escape(_face_text(mistake))}<br>persons {mistake['persons']}<br>person scores {scores}"
            f"{html.escape(_hand_text(mistake)).replace('; ', '<br>', 1)}"
            "</figcaption></figure>"
        )
    matrix = summary["confusion"]["matrix"]
    rows = "".join(
        f"<tr><th>{name}</th>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>"
        for name, row in zip(("model", "worn", "product"), matrix, strict=True)
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>imagelift evaluate: mistakes</title>
<style>body{{font-family:sans-serif}} figure{{display:inline-block;width:380px;vertical-align:top;margin:6px}}
figcaption{{font-size:12px}} td,th{{padding:2px 8px;text-align:right}}</style></head><body>
<h1>{summary["correct"]}/{summary["photos"]} correct</h1>
<table><tr><th>true \\ predicted</th><th>model</th><th>worn</th><th>product</th></tr>{rows}</table>
<h2>{len(summary["mistakes"])} mistakes</h2>
{"".join(cells)}
</body></html>
"""
    (out_dir / "index.html").write_text(page, encoding="utf-8")
