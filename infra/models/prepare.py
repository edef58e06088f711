"""Prepared copies of the built nets: each ONNX file as ONNX Runtime's optimiser leaves it, for quick session opening.

``imagelift models build`` calls :func:`prepare_models` once every net is written. For each ``.onnx`` file it opens
a session at full optimisation, saves the optimised graph to ``prepared/<file>``, opens that copy with the optimiser
off and runs both on two fixed pseudo-random inputs: the copy is kept only when every output is bit for bit the
same. The manifest's ``prepared`` section lists each kept copy with its sha256 and the host signature it was made
for (imagelift.vision.sessions explains why the signature matters and how the classifier falls back without it).
Without ONNX Runtime (it comes with the ``classify`` extra) nothing is prepared and the nets load as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

PREPARED_DIR = "prepared"
PREPARED_SCHEMA = 1
PROBE_SEED = 20261203
PROBE_SIDE = 64
"""Side given to a free spatial dimension of a probe input (P-Net's, YOLO's): any size the nets accept."""
PROBE_BATCH = 2
EXTERNAL_MIN_BYTES = 1024
"""Initializers from this size on go to the weights file (smaller ones stay in the graph)."""


def prepared_paths(section: dict[str, Any] | None) -> dict[str, str]:
    """{file under models/: its sha256} for every file the manifest's ``prepared`` section lists."""
    out: dict[str, str] = {}
    for entry in ((section or {}).get("files") or {}).values():
        out[entry["file"]] = entry["sha256"]
        if entry.get("weights"):
            out[entry["weights"]["file"]] = entry["weights"]["sha256"]
    return out


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def prepare_models(
    models_dir: Path, files: dict[str, Any], log: Callable[[str], None] = lambda message: None
) -> dict[str, Any] | None:
    """Write ``models_dir/prepared/<file>`` for each ONNX file in ``files`` (manifest entries); the manifest's
    ``prepared`` section, or None when ONNX Runtime is not installed or this host has no signature."""
    try:
        import onnxruntime as ort

        from imagelift.vision.sessions import PROVIDERS, host_signature, session_options
    except ImportError:
        log("onnxruntime is not installed: no prepared nets (sessions will run the optimiser at every start)")
        return None
    signature = host_signature()
    if signature is None:
        log("cannot tell this host's NCHWc block size: no prepared nets")
        return None
    prepared: dict[str, Any] = {}
    for rel in sorted(name for name in files if name.endswith(".onnx")):
        source = models_dir / rel
        target = models_dir / PREPARED_DIR / rel
        data = target.with_suffix(".data")
        target.parent.mkdir(parents=True, exist_ok=True)
        options = session_options(1)
        options.log_severity_level = 3  # its warning that the copy suits this CPU only is what the signature handles
        options.optimized_model_filepath = str(target)
        # Weights in a file of their own, which ONNX Runtime maps into memory instead of parsing and copying them:
        # a session on yolov3-tiny's copy then opens in about 2 ms of CPU where the optimiser took 155-187 ms.
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name", data.name)
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes", str(EXTERNAL_MIN_BYTES)
        )
        original = ort.InferenceSession(str(source), options, providers=PROVIDERS)
        copy = ort.InferenceSession(str(target), session_options(1, optimise=False), providers=PROVIDERS)
        mismatch = _first_mismatch(original, copy)
        if mismatch is not None:
            target.unlink()
            data.unlink(missing_ok=True)
            log(f"{rel}: the prepared copy differs from the original ({mismatch}); not kept")
            continue
        prepared[rel] = {
            "file": f"{PREPARED_DIR}/{rel}",
            "sha256": _sha256(target),
            "bytes": target.stat().st_size,
            "weights": {
                "file": data.relative_to(models_dir).as_posix(),
                "sha256": _sha256(data),
                "bytes": data.stat().st_size,
            }
            if data.is_file()
            else None,
        }
    return {"schema": PREPARED_SCHEMA, "signature": signature, "files": prepared}


def probe_inputs(session: Any, seed: int = PROBE_SEED) -> list[dict[str, np.ndarray]]:
    """Two pseudo-random feeds for ``session``: batch 1 and ``PROBE_BATCH``, free spatial sizes ``PROBE_SIDE``."""
    rng = np.random.default_rng(seed)
    feeds = []
    for batch in (1, PROBE_BATCH):
        feed = {}
        for node in session.get_inputs():
            shape = [d if isinstance(d, int) else PROBE_SIDE for d in node.shape]
            if shape and not isinstance(node.shape[0], int):
                shape[0] = batch
            feed[node.name] = rng.random(shape, dtype=np.float32)
        feeds.append(feed)
    return feeds


def _first_mismatch(original: Any, copy: Any) -> str | None:
    names = [o.name for o in original.get_outputs()]
    if names != [o.name for o in copy.get_outputs()]:
        return "different outputs"
    for feed in probe_inputs(original):
        for name, a, b in zip(names, original.run(names, feed), copy.run(names, feed), strict=True):
            if a.shape != b.shape or not np.array_equal(a, b):
                return f"output {name} on input shape {[v.shape for v in feed.values()]}"
    return None
