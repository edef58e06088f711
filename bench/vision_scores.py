"""Raw scores of every person net and pass, and the best face score, for every tuning photo and each of its copies.

    OMP_NUM_THREADS=1 .venv/bin/python bench/vision_scores.py [--models DIR] [--limit N]

For each photo of ../shared/data/images + ../shared/data/pool (bench/vision_data.py) and each copy (original,
mirror, 90% centre crop, 2000 px rescale, JPEG q=60), decoded the way the cascade decodes an upload (one decode
for ``max(decode_long_side, face_max_side)``):
- ``face``: the best O-Net score of the shipped cascade's face stage (``Cascade.detect_faces`` at the shipped
  ``face_max_side`` / ``face_min_size``; 0 when MTCNN reports nothing);
- ``persons``: for each net (yolov3-tiny, yolov4-tiny) and each pass (``full<N>``: the photo letterboxed to N;
  ``padded<N>``: the photo shrunk to half of an N x N grey canvas) the best person score, its box as fractions of
  the photo, and the next best boxes (``top``: up to TOP_BOXES of [score, x, y, w, h]), on the person stage's own
  reduced decode (``Cascade.person_view``: decoded for ``decode_long_side`` alone);
- ``persons_shared`` (only when the two decodes differ): the whole-photo passes on the face stage's decode (what
  one shared decode would show YOLO);
- ``tiles``: each net on TILE_GRID x TILE_GRID overlapping crops of TILE_FRACTION of each side plus the centre
  crop, each letterboxed to TILE_SIZE (a zoomed look at legs and feet that fill the frame), on the shared decode.
Nothing is thresholded here: bench/tune_vision.py chooses the rule and thresholds from these numbers in seconds.
Results are cached per photo under .cache/vision_scores/ (keyed by the file's sha256 and SCORES_VERSION).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from vision_data import COPIES, file_digest, load_photos, make_copy  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402
from imagelift.vision.image_io import DecodeLimits, decode_image  # noqa: E402
from imagelift.vision.person import PERSON_CLASS_ID, padded_canvas  # noqa: E402
from imagelift.vision.yolo import YoloDetector  # noqa: E402

SCORES_VERSION = 2
CACHE = ROOT / ".cache" / "vision_scores"
NETS = {"yolov3-tiny": "yolo/yolov3-tiny.onnx", "yolov4-tiny": "yolo/yolov4-tiny.onnx"}
FULL_SIZES = (192, 256, 320)
PADDED_SIZES = (192, 256, 320)
PADDED_FRACTION = 0.5
FLOOR = 0.005  # scores below this are recorded as 0
TOP_BOXES = 5
REUSE_TOLERANCE = 1e-4
TILE_GRID = 2
TILE_FRACTION = 0.6
TILE_SIZE = 192


def _fractions(box, w: int, h: int) -> list[float]:
    x, y, bw, bh = box
    return [round(v, 4) for v in (x / w, y / h, bw / w, bh / h)]


def best_person(detector: YoloDetector, image, size: int, padded: bool) -> dict:
    h, w = image.shape[:2]
    if padded:
        canvas, scale, (ox, oy) = padded_canvas(image, size, PADDED_FRACTION)
        detections = detector.detect(canvas, input_size=size, conf_threshold=FLOOR, class_ids={PERSON_CLASS_ID})
    else:
        scale, ox, oy = 1.0, 0, 0
        detections = detector.detect(image, input_size=size, conf_threshold=FLOOR, class_ids={PERSON_CLASS_ID})
    if not detections:
        return {"score": 0.0}
    top = []
    for d in detections[:TOP_BOXES]:
        x, y, bw, bh = d.box
        top.append(
            [
                round(float(d.confidence), 5),
                *_fractions(((x - ox) / scale, (y - oy) / scale, bw / scale, bh / scale), w, h),
            ]
        )
    return {"score": top[0][0], "box": top[0][1:], "top": top}


def tile_windows(w: int, h: int) -> list[tuple[int, int, int, int]]:
    """The crops of the tiled pass, (x, y, width, height): a TILE_GRID x TILE_GRID grid of overlapping windows
    of TILE_FRACTION of each side, then the centre window."""
    tw, th = max(1, round(w * TILE_FRACTION)), max(1, round(h * TILE_FRACTION))
    xs = [round(i * (w - tw) / (TILE_GRID - 1)) for i in range(TILE_GRID)]
    ys = [round(j * (h - th) / (TILE_GRID - 1)) for j in range(TILE_GRID)]
    windows = [(x, y, tw, th) for y in ys for x in xs]
    windows.append(((w - tw) // 2, (h - th) // 2, tw, th))
    return windows


def tiles(detector: YoloDetector, image) -> list[list[float]]:
    """Per window of :func:`tile_windows`: [best score, x, y, w, h] (box in fractions of the photo), [0] if none."""
    h, w = image.shape[:2]
    out = []
    for x0, y0, tw, th in tile_windows(w, h):
        crop = image[y0 : y0 + th, x0 : x0 + tw]
        found = detector.detect(crop, input_size=TILE_SIZE, conf_threshold=FLOOR, class_ids={PERSON_CLASS_ID})
        if not found:
            out.append([0.0])
            continue
        x, y, bw, bh = found[0].box
        out.append([round(float(found[0].confidence), 5), *_fractions((x + x0, y + y0, bw, bh), w, h)])
    return out


def all_passes(detector: YoloDetector, image, padded: bool = True) -> dict:
    passes = {f"full{s}": best_person(detector, image, s, padded=False) for s in FULL_SIZES}
    if padded:
        passes.update({f"padded{s}": best_person(detector, image, s, padded=True) for s in PADDED_SIZES})
    return passes


def reusable_passes(detector: YoloDetector, image, earlier: dict | None) -> dict | None:
    """An earlier cache's passes of this net on this view, when its whole-photo 192 score is what the net gives
    now (the same pixels and model), with the fresh 192 pass and its boxes; None when there is none or it differs."""
    if not earlier:
        return None
    fresh = best_person(detector, image, 192, padded=False)
    if abs(fresh["score"] - earlier.get("full192", {}).get("score", -1.0)) > REUSE_TOLERANCE:
        return None
    return {**earlier, "full192": fresh}


def score_photo(data: bytes, cascade: Cascade, nets: dict[str, YoloDetector], earlier: dict | None = None) -> dict:
    config = cascade.config
    limits = DecodeLimits.from_config(config)
    copies = {}
    for copy in COPIES:
        encoded = make_copy(data, copy)
        decoded = decode_image(
            encoded,
            limits=limits,
            target_long_side=max(config.decode_long_side, config.face_max_side) if config.decode_long_side else None,
        )
        shared = decoded.bgr
        detection = cascade.detect_faces(shared)
        face = max([f.confidence for f in detection.faces] + [detection.best_rejected])
        person_view = cascade.person_view(decoded, encoded)
        persons, reused = {}, []
        for name, d in nets.items():
            kept = reusable_passes(d, person_view, ((earlier or {}).get(copy) or {}).get("persons", {}).get(name))
            persons[name] = kept or all_passes(d, person_view)
            reused.append(kept is not None)
        entry: dict = {
            "face": round(float(face), 5),
            "shared_is_person_view": person_view is shared,
            "persons": persons,
            # Passes other than full192 copied from the earlier cache (checked on full192), not run again.
            "persons_reused": all(reused),
        }
        if person_view is not shared:
            # Padded canvases are area-shrunk to at most half a 320 canvas from either decode: only the whole-photo
            # passes can tell the two decodes apart.
            entry["persons_shared"] = {name: all_passes(d, shared, padded=False) for name, d in nets.items()}
        entry["tiles"] = {name: tiles(d, shared) for name, d in nets.items()}
        copies[copy] = entry
    return copies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--limit", type=int, default=0, help="score only the first N photos (a quick check)")
    parser.add_argument("--reverse", action="store_true", help="last photo first (a second process shares the work)")
    parser.add_argument(
        "--reuse",
        type=Path,
        help="a version-1 cache directory: its person-view passes are kept where the fresh 192 pass matches them",
    )
    args = parser.parse_args(argv)
    # The shipped face settings (config.py defaults), whatever the environment says.
    config = VisionConfig.from_env({}, models_dir=args.models, threads=1)
    cascade = Cascade.load(config)
    cv2.setNumThreads(1)
    nets = {name: YoloDetector(args.models / rel, threads=1) for name, rel in NETS.items()}
    photos = load_photos()
    if args.limit:
        photos = photos[: args.limit]
    if args.reverse:
        photos = photos[::-1]
    CACHE.mkdir(parents=True, exist_ok=True)
    started, done = time.monotonic(), 0
    for index, photo in enumerate(photos):
        digest = file_digest(photo.path)
        target = CACHE / f"{digest}.json"
        if target.is_file() and json.loads(target.read_text()).get("version") == SCORES_VERSION:
            continue
        result = {
            "version": SCORES_VERSION,
            "id": photo.id,
            "copies": score_photo(photo.path.read_bytes(), cascade, nets, earlier_scores(args.reuse, digest)),
        }
        tmp = target.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, target)
        done += 1
        if done % 20 == 0:
            rate = (time.monotonic() - started) / done
            print(f"{index + 1}/{len(photos)} scored, {rate:.2f} s per photo", file=sys.stderr, flush=True)
    print(f"{done} photos scored in {time.monotonic() - started:.0f} s; cache {CACHE}", file=sys.stderr)
    return 0


def earlier_scores(folder: Path | None, digest: str) -> dict | None:
    """The copies of a version-1 cache entry (faces at the old settings, person-view passes), if any."""
    if folder is None or not (folder / f"{digest}.json").is_file():
        return None
    cached = json.loads((folder / f"{digest}.json").read_text())
    return cached["copies"] if cached.get("version") == 1 else None


def load_scores(photos) -> dict[str, dict]:
    """{photo id: {copy: {face, persons}}} from the cache; photos not scored yet are missing."""
    scores = {}
    for photo in photos:
        target = CACHE / f"{file_digest(photo.path)}.json"
        if target.is_file():
            cached = json.loads(target.read_text())
            if cached.get("version") == SCORES_VERSION:
                scores[photo.id] = cached["copies"]
    return scores


if __name__ == "__main__":
    raise SystemExit(main())
