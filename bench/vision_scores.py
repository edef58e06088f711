"""Raw scores of every person net and pass, and the best face score, for every tuning photo and each of its copies.

    OMP_NUM_THREADS=1 .venv/bin/python bench/vision_scores.py [--models DIR] [--limit N]

For each photo of ../shared/data/images + ../shared/data/pool (bench/vision_data.py) and each copy (original,
mirror, 90% centre crop, 2000 px rescale, JPEG q=60), decoded the way the cascade decodes an upload:
- ``face``: MTCNN's best O-Net score at the shipped face settings (0 when it reports nothing);
- for each net (yolov3-tiny, yolov4-tiny) and each pass (``full<N>``: the photo letterboxed to N; ``padded<N>``:
  the photo shrunk to half of an N x N grey canvas) the best person score and its box as fractions of the photo.
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
from imagelift.vision.image_io import decode_image  # noqa: E402
from imagelift.vision.mtcnn import MTCNN  # noqa: E402
from imagelift.vision.person import PERSON_CLASS_ID, padded_canvas  # noqa: E402
from imagelift.vision.yolo import YoloDetector  # noqa: E402

SCORES_VERSION = 1
CACHE = ROOT / ".cache" / "vision_scores"
NETS = {"yolov3-tiny": "yolo/yolov3-tiny.onnx", "yolov4-tiny": "yolo/yolov4-tiny.onnx"}
FULL_SIZES = (192, 256, 320)
PADDED_SIZES = (192, 256, 320)
PADDED_FRACTION = 0.5
FLOOR = 0.005  # scores below this are recorded as 0


def best_person(detector: YoloDetector, image, size: int, padded: bool) -> dict:
    h, w = image.shape[:2]
    if padded:
        canvas, scale, (ox, oy) = padded_canvas(image, size, PADDED_FRACTION)
        detections = detector.detect(canvas, input_size=size, conf_threshold=FLOOR, class_ids={PERSON_CLASS_ID})
    else:
        detections = detector.detect(image, input_size=size, conf_threshold=FLOOR, class_ids={PERSON_CLASS_ID})
    if not detections:
        return {"score": 0.0}
    best = detections[0]
    x, y, bw, bh = best.box
    if padded:
        x, y, bw, bh = (x - ox) / scale, (y - oy) / scale, bw / scale, bh / scale
    return {"score": round(float(best.confidence), 5), "box": [round(v, 4) for v in (x / w, y / h, bw / w, bh / h)]}


def best_face(mtcnn: MTCNN, image, max_side: int) -> float:
    h, w = image.shape[:2]
    shrink = min(1.0, max_side / max(h, w))
    small = image
    if shrink < 1.0:
        small = cv2.resize(image, (max(1, round(w * shrink)), max(1, round(h * shrink))), interpolation=cv2.INTER_AREA)
    faces = mtcnn.detect_faces(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
    return round(max((float(f.confidence) for f in faces), default=0.0), 5)


def score_photo(data: bytes, config: VisionConfig, mtcnn: MTCNN, nets: dict[str, YoloDetector]) -> dict:
    copies = {}
    for copy in COPIES:
        encoded = make_copy(data, copy)
        decoded = decode_image(
            encoded,
            max_bytes=config.max_bytes,
            max_pixels=config.max_pixels,
            target_long_side=max(config.decode_long_side, config.face_max_side) if config.decode_long_side else None,
        )
        image = decoded.bgr
        entry: dict = {"face": best_face(mtcnn, image, config.face_max_side), "persons": {}}
        for name, detector in nets.items():
            passes = {f"full{s}": best_person(detector, image, s, padded=False) for s in FULL_SIZES}
            passes.update({f"padded{s}": best_person(detector, image, s, padded=True) for s in PADDED_SIZES})
            entry["persons"][name] = passes
        copies[copy] = entry
    return copies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--limit", type=int, default=0, help="score only the first N photos (a quick check)")
    args = parser.parse_args(argv)
    config = VisionConfig.from_env(models_dir=args.models, threads=1)
    cv2.setNumThreads(1)
    mtcnn = MTCNN(
        args.models / "mtcnn",
        min_face_size=config.face_min_size,
        thresholds=(config.face_pnet_threshold, config.face_rnet_threshold, config.face_onet_threshold),
        threads=1,
    )
    nets = {name: YoloDetector(args.models / rel, threads=1) for name, rel in NETS.items()}
    photos = load_photos()
    if args.limit:
        photos = photos[: args.limit]
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
            "copies": score_photo(photo.path.read_bytes(), config, mtcnn, nets),
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
