"""ONNX Runtime sessions for the vision nets, and the prepared copies of the nets that make them quick to open.

Opening a session runs ONNX Runtime's graph optimiser. For the YOLO nets most of that time goes to the NCHWc
layout transform, which reorders every convolution's weights. ``imagelift models build`` therefore also saves each
net as the optimiser leaves it (``prepared/<file>``, its weights in a file of their own that ONNX Runtime maps into
memory instead of parsing and copying; listed in the manifest with their sha256 and checked there to give bit for
bit the same outputs), and a session opened from that copy skips the optimiser. Measured in fresh processes
(bench/results/vision_cold_start.json): the five nets open in 20-26 ms of CPU instead of 215-270 ms (yolov3-tiny
alone 155-187 ms), with 98 instead of about 220 MB resident afterwards; the first photo then costs 25-45 ms more
CPU, as the mapped weights are read in.

The NCHWc layout depends on the CPU: ONNX Runtime's kernels work in blocks of 16 channels where AVX-512F is usable
and of 8 on every other x86-64 CPU. So the build records where it prepared the copies (:func:`host_signature`: ONNX
Runtime's version, the machine type, the block size) and a copy is used only on a host with the same signature;
anywhere else, or when the copy is missing or does not load, the original net is opened and optimised as before,
which gives the same outputs, only later.
"""

from __future__ import annotations

import json
import logging
import platform
from functools import lru_cache
from pathlib import Path
from typing import Any

import onnxruntime as ort

MANIFEST_NAME = "manifest.json"
PREPARED_DIR = "prepared"
PROVIDERS = ["CPUExecutionProvider"]

logger = logging.getLogger(__name__)


def session_options(threads: int, *, optimise: bool = True, arena: bool = False) -> ort.SessionOptions:
    """Options for one vision net at ``threads`` intra-op threads (0 lets ONNX Runtime choose).

    ``optimise`` False opens a prepared copy as it is. ``arena``: ONNX Runtime's CPU memory arena and memory
    patterns, off unless asked for. P-Net sees a new input shape at every pyramid level and R/O-Net a new batch size
    per photo, so patterns planned for one shape are never reused and the arena would keep blocks for every shape it
    has seen (569 instead of 400 MB peak RSS at the 640 px cap, for about 2 ms less face-stage time:
    bench/results/mtcnn_arena.json). The fixed-shape nets (YOLO, HandTrack, MoveNet) each hold their activations
    in an arena of their own between photos: without it the classifier's peak over the benchmark's 78 photos is
    about 30 MB lower for the same CPU per photo (bench/results/session_arena.json).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimise else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    options.enable_mem_pattern = arena
    options.enable_cpu_mem_arena = arena
    return options


def open_session(model_path: Path | str, options: ort.SessionOptions) -> ort.InferenceSession:
    """A session on ``model_path``, from its prepared copy (with the optimiser off) when the models directory has
    one made for this host, else from the file itself with ``options`` as given."""
    model_path = Path(model_path)
    prepared = prepared_copy(model_path)
    if prepared is not None:
        level = options.graph_optimization_level
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return ort.InferenceSession(str(prepared), options, providers=PROVIDERS)
        except Exception as exc:  # whatever ONNX Runtime raises, the original below gives the same outputs
            logger.warning("prepared net %s does not load (%s); opening %s instead", prepared, exc, model_path)
        finally:
            options.graph_optimization_level = level
    return ort.InferenceSession(str(model_path), options, providers=PROVIDERS)


def prepared_copy(model_path: Path) -> Path | None:
    """The prepared copy of ``model_path`` (``<models>/<kind>/<file>``) usable on this host, or None."""
    models_dir = model_path.parent.parent
    try:
        rel = model_path.relative_to(models_dir).as_posix()
    except ValueError:
        return None
    entry = _prepared_index(str(models_dir.resolve())).get(rel)
    if entry is None:
        return None
    path = models_dir / entry
    return path if path.is_file() else None


@lru_cache(maxsize=8)
def _prepared_index(models_dir: str) -> dict[str, str]:
    """{original file: prepared file} from the manifest, empty unless it was prepared on a host like this one."""
    try:
        manifest = json.loads((Path(models_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))
        prepared = manifest.get("prepared") or {}
        if not prepared or prepared.get("signature") != host_signature():
            return {}
        return {rel: entry["file"] for rel, entry in prepared.get("files", {}).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


@lru_cache(maxsize=1)
def host_signature() -> dict[str, Any] | None:
    """What a prepared net's layout depends on here: ONNX Runtime's version, the machine, the NCHWc block size;
    None when the block size cannot be told (a prepared net is then never used)."""
    machine = platform.machine().lower()
    block: int | None
    if machine in ("x86_64", "amd64"):
        flags = _cpu_flags()
        if flags is None:
            return None
        # ONNX Runtime's MLAS: 16-channel blocks with AVX-512F (Linux lists the flag only when it saves the AVX-512
        # state), 8 on every other x86-64 CPU.
        block = 16 if "avx512f" in flags else 8
    else:
        block = None  # fixed when ONNX Runtime is compiled for the machine: its version and the machine say it all
    return {"onnxruntime": ort.__version__, "machine": machine, "nchwc_block": block}


def _cpu_flags() -> set[str] | None:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return None
