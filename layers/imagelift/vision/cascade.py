"""The classification cascade: a face makes a model shot (1), else a person a worn look (2), else a product shot (3).

MTCNN looks for a face only where the primary YOLO net sees at least a faint person on the whole photo (the face
gate, ``face_gate_min_person``): most product shots then skip the face stage, its false faces on fabric and prints
with it, and the person stage reuses that net's run. Where a person is found but no face, MoveNet looks for a
head facing the camera on the person boxes (the pose stage, ``pose_face``): a face too small for MTCNN still
makes a model shot.

Load once per process (``Cascade.load``), then ``classify_bytes`` per photo. Every result carries what decided it,
the boxes, the per-stage milliseconds, the model ids and the thresholds, so a stored record explains itself; and its
near misses (the best face score, each net's best person score per pass) with ``review`` set when a person score
lies within ``review_margin`` of its threshold.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from imagelift.config import VisionConfig
from imagelift.records.categories import CATEGORY_NAMES, MODEL, PRODUCT, WORN
from imagelift.vision.hand_stage import HandStage
from imagelift.vision.image_io import DecodedImage, DecodeLimits, ImageDecodeError, decode_image
from imagelift.vision.mtcnn import MTCNN, Face, FaceDetection
from imagelift.vision.person import Person, PersonFinder, PersonSearch
from imagelift.vision.pose_face import PoseFaceStage, PoseFaceVote
from imagelift.vision.second_look import head_crops, look_again

__all__ = ["Cascade", "Classification", "FaceGate", "ImageDecodeError"]

MTCNN_FILES = {"pnet": "mtcnn/pnet.onnx", "rnet": "mtcnn/rnet.onnx", "onet": "mtcnn/onet.onnx"}


@dataclass(frozen=True)
class FaceGate:
    """The person gate in front of the face stage: the primary net's best person score on the whole photo, against
    ``face_gate_min_person``. Closed (``open`` False): MTCNN did not run, so no face was looked for."""

    net: str
    person: float
    threshold: float

    @property
    def open(self) -> bool:
        return self.person >= self.threshold

    def to_record(self) -> dict:
        return {"net": self.net, "person": round(self.person, 4), "threshold": self.threshold, "open": self.open}


@dataclass
class Classification:
    category: int
    decided_by: str  # "mtcnn" | "movenet" | "yolo" | "handtrack" | "none"
    faces: list[Face]
    persons: list[Person]
    width: int
    height: int
    timings_ms: dict[str, float]
    models: dict[str, str]
    thresholds: dict[str, float | int | bool]
    name: str = ""
    format: str = ""
    person_net: str | None = None
    """Which net's boxes are reported (``yolov3-tiny``, ``yolov4-tiny``...); None without a person."""
    person_pass: str | None = None
    """``full`` or ``padded``: which pass found the person; None without a person."""
    person_scores: dict[str, dict[str, float]] | None = None
    """Best person score of each net in each pass that ran (near misses when no person was found)."""
    face_pass: str | None = None
    """``first`` (the whole photo) or ``second_look`` (head crops of person boxes): which pass found the face;
    None without a face."""
    face_gate: FaceGate | None = None
    """The person gate's reading where it ran (``face_gate_min_person`` > 0); closed means no face was looked for."""
    best_face_score: float = 0.0
    """Best O-Net score of a face that MTCNN reported but that did not count (0 when none)."""
    review: bool = False
    """A score lies within the calibrated ``review_margin`` of its threshold: worth a human look."""
    pose_face: PoseFaceVote | None = None
    """The pose stage's vote (photo pixels) where it ran: a person found, no face."""
    hand_vote: dict | None = None
    """The hand stage's scores (``stretched``, ``padded``, ``person``, ``fired``) where it ran; None elsewhere."""
    hands: list = field(default_factory=list)
    """Hand boxes (imagelift.vision.hands.Hand, photo pixels) when the hand stage decided."""

    @property
    def category_name(self) -> str:
        return CATEGORY_NAMES[self.category]

    def to_record(self) -> dict:
        """JSON-able record: what the ImageCategories item and ``classify --json`` carry (``hand_vote`` and
        ``hands`` only where the hand stage ran)."""
        record = {
            "category": self.category,
            "category_name": self.category_name,
            "decided_by": self.decided_by,
            "faces": [f.to_record() for f in self.faces],
            "persons": [p.to_record() for p in self.persons],
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "models": dict(self.models),
            "thresholds": dict(self.thresholds),
            "person_net": self.person_net,
            "person_pass": self.person_pass,
            "person_scores": self.person_scores,
            "face_pass": self.face_pass,
            "face_gate": None if self.face_gate is None else self.face_gate.to_record(),
            "best_face_score": round(float(self.best_face_score), 4),
            "review": self.review,
        }
        if self.pose_face is not None:
            record["pose_face"] = self.pose_face.to_record()
        if self.hand_vote is not None:
            record["hand_vote"] = self.hand_vote
            record["hands"] = [h.to_record() for h in self.hands]
        return record


class Cascade:
    def __init__(
        self,
        config: VisionConfig,
        mtcnn: MTCNN,
        persons: PersonFinder,
        models: dict[str, str],
        hands: HandStage | None = None,
        pose: PoseFaceStage | None = None,
    ) -> None:
        self.config = config
        self.mtcnn = mtcnn
        self.persons = persons
        self.models = models
        self.hands = hands
        self.pose = pose
        self.thresholds = {
            "face_min_confidence": config.face_min_confidence,
            "face_gate_min_person": config.face_gate_min_person,
            "face_min_size": config.face_min_size,
            "face_max_side": config.face_max_side,
            "face_scale_factor": config.face_scale_factor,
            "mtcnn_steps": [config.face_pnet_threshold, config.face_rnet_threshold, config.face_onet_threshold],
            "person_min_confidence": config.person_min_confidence,
            "person_padded_min_confidence": config.person_padded_min_confidence,
            "person_combine": config.person_combine,
            "review_margin": config.review_margin,
            "face_review_margin": config.face_review_margin,
            "yolo_input_size": config.yolo_input_size,
            "padded_pass": config.padded_pass,
            "padded_input_size": config.padded_input_size,
            "padded_scale": config.padded_scale,
            "decode_long_side": config.decode_long_side,
            "face_second_look": config.face_second_look,
            "face_second_look_head_fraction": config.face_second_look_head_fraction,
            "face_second_look_upscale": config.face_second_look_upscale,
            "face_second_look_min_confidence": config.face_second_look_min_confidence,
            "pose_face": config.pose_face,
            "pose_face_score": config.pose_face_score,
            "pose_face_min_score": config.pose_face_min_score,
            "pose_face_away_penalty": config.pose_face_away_penalty,
            "hand_stage": config.hand_stage,
            "hand_min_confidence": config.hand_min_confidence,
            "hand_person_min_confidence": config.hand_person_min_confidence,
        }

    @classmethod
    def load(cls, config: VisionConfig | None = None) -> Cascade:
        """Load the models from ``config.models_dir`` once; raises FileNotFoundError naming what is missing."""
        from imagelift.vision.yolo import YoloDetector  # imported here so tests can stub detectors

        config = config or VisionConfig.from_env()
        if config.threads > 0:
            # OpenCV's resizes would otherwise start a thread pool per core, idle or fighting ONNX Runtime.
            cv2.setNumThreads(config.threads)
        models_dir = Path(config.models_dir)
        yolo_rels = [config.yolo_model, *([config.second_yolo_model] if config.second_yolo_model else [])]
        hand_rels = [config.hand_model] if config.hand_stage else []
        pose_rels = [config.pose_model] if config.pose_face else []
        missing = [
            str(models_dir / rel)
            for rel in (*MTCNN_FILES.values(), *yolo_rels, *hand_rels, *pose_rels)
            if not (models_dir / rel).is_file()
        ]
        if missing:
            raise FileNotFoundError(f"models missing: {', '.join(missing)} (build them with `imagelift models build`)")
        mtcnn = MTCNN(
            models_dir / "mtcnn",
            min_face_size=config.face_min_size,
            thresholds=(config.face_pnet_threshold, config.face_rnet_threshold, config.face_onet_threshold),
            scale_factor=config.face_scale_factor,
            threads=config.threads,
        )
        nets = {Path(rel).stem: YoloDetector(models_dir / rel, threads=config.threads) for rel in yolo_rels}
        finder = PersonFinder(
            nets,
            min_confidence=config.person_min_confidence,
            padded_min_confidence=config.person_padded_min_confidence,
            combine=config.person_combine,
            input_size=config.yolo_input_size,
            padded_pass=config.padded_pass,
            padded_input_size=config.padded_input_size,
            padded_scale=config.padded_scale,
            # Exact: a net already too far under the threshold for the minimum to decide or ask for review.
            settle_margin=config.review_margin,
        )
        rels = {**MTCNN_FILES, **{Path(rel).stem: rel for rel in yolo_rels}}
        hands = None
        if config.hand_stage:
            from imagelift.vision.hands import HandDetector

            rels["handtrack"] = config.hand_model
            hands = HandStage(
                HandDetector(models_dir / config.hand_model, threads=config.threads),
                min_confidence=config.hand_min_confidence,
                person_min_confidence=config.hand_person_min_confidence,
            )
        pose = None
        if config.pose_face:
            from imagelift.vision.body import PoseEstimator

            rels[Path(config.pose_model).stem] = config.pose_model
            pose = PoseFaceStage(
                PoseEstimator(models_dir / config.pose_model, threads=config.threads),
                min_score=config.pose_face_min_score,
                score=config.pose_face_score,
                max_boxes=config.pose_face_max_boxes,
                crop_margin=config.pose_face_crop_margin,
                away_penalty=config.pose_face_away_penalty,
            )
        return cls(config, mtcnn, finder, model_ids(models_dir, rels), hands, pose)

    # -- classification -----------------------------------------------------------------------------------
    def classify_bytes(self, data: bytes, name: str = "") -> Classification:
        """Classify an encoded photo; raises :class:`ImageDecodeError` for anything that is not a usable photo."""
        t0 = time.perf_counter()
        decoded = decode_image(
            data,
            limits=DecodeLimits.from_config(self.config),
            target_long_side=self.config.decode_target_long_side,
        )
        decode_ms = (time.perf_counter() - t0) * 1000
        return self.classify_decoded(decoded, name=name, decode_ms=decode_ms)

    def classify_path(self, path: Path | str) -> Classification:
        data = Path(path).read_bytes()
        return self.classify_bytes(data, name=str(path))

    def classify_image(self, image_bgr: np.ndarray, name: str = "") -> Classification:
        """Classify an already decoded 8-bit BGR image."""
        h, w = image_bgr.shape[:2]
        return self.classify_decoded(DecodedImage(image_bgr, "array", w, h, 1.0), name=name, decode_ms=0.0)

    def classify_decoded(self, decoded: DecodedImage, *, name: str = "", decode_ms: float = 0.0) -> Classification:
        """Classify a decoded photo. Both stages look at the same decode (the person stage was tuned on the face
        stage's decode: bench/tune_vision.py --view shared)."""
        t0 = time.perf_counter()
        image = decoded.bgr
        to_photo = decoded.width / image.shape[1]  # decoded pixels -> original photo pixels
        timings = {"decode": decode_ms}
        first_look, gate = None, None
        if self.config.face_gate_min_person > 0 and self.persons.input_size:
            first_look = self.persons.first_look(image)
            best = max((p.confidence for p in first_look), default=0.0)
            gate = FaceGate(self.persons.primary, best, self.config.face_gate_min_person)
            timings["face_gate"] = (time.perf_counter() - t0) * 1000
        t_faces = time.perf_counter()
        face_detection = self.detect_faces(image) if gate is None or gate.open else FaceDetection([])
        faces = face_detection.faces
        t1 = time.perf_counter()
        timings.update(mtcnn=(t1 - t_faces) * 1000, yolo=0.0)
        search = PersonSearch([])
        face_pass = "first" if faces else None
        if faces:
            category, decided_by = MODEL.id, "mtcnn"
        else:
            search = self.persons.search(image, first_look)
            timings["yolo"] = (time.perf_counter() - t1) * 1000
            category, decided_by = (WORN.id, "yolo") if search.found else (PRODUCT.id, "none")
            if search.found and self.config.face_second_look:
                t2 = time.perf_counter()
                second = self.second_look(image, search.persons)
                timings["second_look"] = (time.perf_counter() - t2) * 1000
                face_detection = FaceDetection(second.faces, max(face_detection.best_rejected, second.best_rejected))
                if second.faces:
                    faces = second.faces
                    face_pass = "second_look"
                    category, decided_by = MODEL.id, "mtcnn"
        pose_vote = None
        if category == WORN.id and self.pose is not None:
            t4 = time.perf_counter()
            pose_vote = self.pose.vote(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), search.persons)
            timings["pose_face"] = (time.perf_counter() - t4) * 1000
            if pose_vote.fired:
                category, decided_by = MODEL.id, "movenet"
        hand_vote = None
        if category == PRODUCT.id and self.hands is not None:
            t3 = time.perf_counter()
            hand_vote = self.hands.vote(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), search.scores_record())
            timings["hands"] = (time.perf_counter() - t3) * 1000
            if hand_vote.fired:
                category, decided_by = WORN.id, "handtrack"
        margin = search.nearest_margin()
        best_face = max([f.confidence for f in faces] + [face_detection.best_rejected])
        face_unsure = abs(best_face - self.config.face_min_confidence) < self.config.face_review_margin
        pose_unsure = pose_vote is not None and abs(pose_vote.score - pose_vote.threshold) < (
            self.config.pose_face_review_margin
        )
        timings["total"] = decode_ms + (time.perf_counter() - t0) * 1000
        return Classification(
            category=category,
            decided_by=decided_by,
            faces=[f.scaled(to_photo) for f in faces],
            persons=[p.scaled(to_photo) for p in search.persons],
            width=decoded.width,
            height=decoded.height,
            timings_ms=timings,
            models=self.models,
            thresholds=self.thresholds,
            name=name,
            format=decoded.format,
            person_net=search.net,
            person_pass=search.pass_name,
            person_scores=search.scores_record() if search.net is not None or not faces else None,
            face_pass=face_pass,
            face_gate=gate,
            best_face_score=face_detection.best_rejected,
            review=face_unsure or pose_unsure or (margin is not None and margin < self.config.review_margin),
            pose_face=None if pose_vote is None else pose_vote.scaled(to_photo),
            hand_vote=None if hand_vote is None else hand_vote.to_record(),
            hands=[]
            if hand_vote is None
            else [replace(h, box=tuple(v * to_photo for v in h.box)) for h in hand_vote.hands],
        )

    def second_look(self, image_bgr: np.ndarray, persons: list[Person]) -> FaceDetection:
        """Faces in the upscaled head regions of ``persons`` (boxes in the pixels of ``image_bgr``)."""
        h, w = image_bgr.shape[:2]
        crops = head_crops(
            persons,
            w,
            h,
            head_fraction=self.config.face_second_look_head_fraction,
            upscale=self.config.face_second_look_upscale,
            max_side=self.config.face_max_side,
        )
        return look_again(self.mtcnn, image_bgr, crops, self.config.face_second_look_min_confidence)

    def detect_faces(self, image_bgr: np.ndarray) -> FaceDetection:
        """Faces that count (``face_min_confidence``) in the pixels of ``image_bgr``, and the best score that did
        not count."""
        h, w = image_bgr.shape[:2]
        shrink = min(1.0, self.config.face_max_side / max(h, w))
        small = image_bgr
        if shrink < 1.0:
            small = cv2.resize(
                image_bgr, (max(1, round(w * shrink)), max(1, round(h * shrink))), interpolation=cv2.INTER_AREA
            )
        detection = self.mtcnn.detect_bgr(small)
        minimum = self.config.face_min_confidence
        near_misses = [detection.best_rejected, *(f.confidence for f in detection.faces if f.confidence < minimum)]
        counted = [f for f in detection.faces if f.confidence >= minimum]
        return FaceDetection(counted, max(near_misses)).scaled(w / small.shape[1])


def model_ids(models_dir: Path, rels: dict[str, str]) -> dict[str, str]:
    """{model name: first 12 hex digits of its sha256}, from manifest.json when it lists the file, else hashed."""
    manifest_files: dict = {}
    manifest_path = models_dir / "manifest.json"
    if manifest_path.is_file():
        try:
            manifest_files = json.loads(manifest_path.read_text(encoding="utf-8")).get("files", {})
        except (OSError, ValueError):
            manifest_files = {}
    ids = {}
    for name, rel in rels.items():
        digest = (manifest_files.get(rel) or {}).get("sha256")
        if not digest:
            digest = hashlib.sha256((models_dir / rel).read_bytes()).hexdigest()
        ids[name] = digest[:12]
    return ids
