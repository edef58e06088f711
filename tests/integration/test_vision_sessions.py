"""Prepared nets (infra/models/prepare.py, imagelift.vision.sessions): the same decisions, used only where they fit.

A copy of the built models directory gets its prepared nets here, so the tests do not depend on how models/ was
built; the cascade on it must decide every labelled photo exactly as the cascade on the original nets.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from imagelift.config import VisionConfig
from imagelift.vision import sessions
from imagelift.vision.cascade import Cascade
from imagelift.vision.mtcnn import MTCNN
from imagelift.vision.yolo import YoloDetector
from infra.models.prepare import prepare_models, probe_inputs

NETS = {"mtcnn/pnet.onnx", "mtcnn/rnet.onnx", "mtcnn/onet.onnx", "yolo/yolov3-tiny.onnx", "yolo/yolov4-tiny.onnx"}


def _originals(models_dir: Path, into: Path) -> dict:
    """``into`` with links to the built nets and their manifest, without any prepared section."""
    into.mkdir(parents=True)
    for kind in (d for d in models_dir.iterdir() if d.is_dir() and d.name != "prepared"):
        (into / kind.name).mkdir()
        for net in kind.iterdir():
            (into / kind.name / net.name).symlink_to(net.resolve())
    manifest = json.loads((models_dir / "manifest.json").read_text(encoding="utf-8"))
    manifest.pop("prepared", None)
    (into / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return manifest


@pytest.fixture(scope="module")
def original_dir(models_dir: Path, tmp_path_factory) -> Path:
    into = tmp_path_factory.mktemp("original") / "models"
    _originals(models_dir, into)
    return into


@pytest.fixture(scope="module")
def prepared_dir(models_dir: Path, tmp_path_factory) -> Path:
    into = tmp_path_factory.mktemp("prepared") / "models"
    manifest = _originals(models_dir, into)
    manifest["prepared"] = prepare_models(into, manifest["files"])
    (into / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    sessions._prepared_index.cache_clear()
    return into


@pytest.fixture(autouse=True)
def _fresh_index():
    sessions._prepared_index.cache_clear()
    yield
    sessions._prepared_index.cache_clear()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_net_is_prepared_for_this_host_and_listed_with_its_sha256(prepared_dir: Path) -> None:
    section = json.loads((prepared_dir / "manifest.json").read_text())["prepared"]
    assert section["signature"] == sessions.host_signature()
    manifest = json.loads((prepared_dir / "manifest.json").read_text())
    assert NETS <= set(section["files"]) == {rel for rel in manifest["files"] if rel.endswith(".onnx")}
    for rel, entry in section["files"].items():
        assert entry["file"] == f"prepared/{rel}"
        assert _sha256(prepared_dir / entry["file"]) == entry["sha256"]
        # the weights live in a file of their own, mapped by ONNX Runtime instead of parsed and copied
        assert entry["weights"]["bytes"] > 0.9 * (prepared_dir / rel).stat().st_size
        assert _sha256(prepared_dir / entry["weights"]["file"]) == entry["weights"]["sha256"]


def test_sessions_open_the_prepared_nets_and_give_the_same_outputs(prepared_dir: Path, original_dir: Path) -> None:
    for rel in sorted(json.loads((prepared_dir / "manifest.json").read_text())["prepared"]["files"]):
        options = sessions.session_options(1, arena=not rel.startswith("mtcnn"))
        prepared = sessions.open_session(prepared_dir / rel, options)
        original = sessions.open_session(original_dir / rel, sessions.session_options(1))
        assert Path(prepared._model_path) == prepared_dir / "prepared" / rel
        assert Path(original._model_path) == original_dir / rel
        # the options handed in keep their optimisation level for the next session
        assert options.graph_optimization_level == sessions.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        for feed in probe_inputs(original, seed=7):
            for a, b in zip(original.run(None, feed), prepared.run(None, feed), strict=True):
                assert np.array_equal(a, b), rel


def test_the_cascade_on_prepared_nets_decides_every_labelled_photo_the_same(
    prepared_dir: Path, original_dir: Path, labelled_photos
) -> None:
    ours = Cascade.load(VisionConfig.from_env({}, models_dir=prepared_dir, threads=1))
    before = Cascade.load(VisionConfig.from_env({}, models_dir=original_dir, threads=1))
    assert ours.mtcnn._pnet._model_path.startswith(str(prepared_dir / "prepared"))
    assert ours.persons.nets["yolov4-tiny"].session._model_path.startswith(str(prepared_dir / "prepared"))
    assert ours.models == before.models  # the records name the built nets, whichever file the session opened
    for path, _ in labelled_photos:
        a, b = ours.classify_path(path).to_record(), before.classify_path(path).to_record()
        a.pop("timings_ms"), b.pop("timings_ms")
        assert a == b, path.name


def test_a_copy_made_for_another_host_is_not_used(prepared_dir: Path, tmp_path: Path) -> None:
    for change in ({"nchwc_block": 16 if sessions.host_signature()["nchwc_block"] != 16 else 8}, {"onnxruntime": "0"}):
        other = tmp_path / "_".join(change) / "models"
        shutil.copytree(prepared_dir, other, symlinks=True)
        manifest = json.loads((other / "manifest.json").read_text())
        manifest["prepared"]["signature"].update(change)
        (other / "manifest.json").write_text(json.dumps(manifest))
        detector = YoloDetector(other / "yolo" / "yolov3-tiny.onnx")
        assert Path(detector.session._model_path) == other / "yolo" / "yolov3-tiny.onnx", change
        assert detector.anchors[5] == [344.0, 319.0]


def test_a_damaged_copy_falls_back_to_the_original_with_a_warning(prepared_dir: Path, tmp_path: Path, caplog) -> None:
    other = tmp_path / "models"
    shutil.copytree(prepared_dir, other, symlinks=True)
    (other / "prepared" / "mtcnn" / "onet.onnx").write_bytes(b"not an onnx model")
    with caplog.at_level(logging.WARNING, logger="imagelift.vision.sessions"):
        mtcnn = MTCNN(other / "mtcnn")
    assert Path(mtcnn._onet._model_path) == other / "mtcnn" / "onet.onnx"
    assert Path(mtcnn._pnet._model_path) == other / "prepared" / "mtcnn" / "pnet.onnx"
    assert "does not load" in caplog.text and "onet.onnx" in caplog.text


def test_without_a_manifest_or_a_listed_copy_the_original_is_opened(original_dir: Path, tmp_path: Path) -> None:
    assert sessions.prepared_copy(original_dir / "yolo" / "yolov3-tiny.onnx") is None
    loose = tmp_path / "net.onnx"
    loose.symlink_to((original_dir / "mtcnn" / "pnet.onnx").resolve())
    assert sessions.prepared_copy(loose) is None


def test_host_signature_reads_the_nchwc_block_size_from_the_cpu(monkeypatch) -> None:
    def signature(machine: str, flags: set[str] | None):
        monkeypatch.setattr(sessions.platform, "machine", lambda: machine)
        monkeypatch.setattr(sessions, "_cpu_flags", lambda: flags)
        sessions.host_signature.cache_clear()
        return sessions.host_signature()

    try:
        assert signature("x86_64", {"sse2", "avx2", "fma", "avx512f"})["nchwc_block"] == 16
        assert signature("x86_64", {"sse2", "avx2", "fma"})["nchwc_block"] == 8
        assert signature("x86_64", None) is None
        arm = signature("aarch64", None)
        assert arm == {"onnxruntime": sessions.ort.__version__, "machine": "aarch64", "nchwc_block": None}
    finally:
        sessions.host_signature.cache_clear()


def test_prepare_keeps_no_copy_that_differs(models_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import infra.models.prepare as prepare

    into = tmp_path / "models"
    manifest = _originals(models_dir, into)
    monkeypatch.setattr(prepare, "_first_mismatch", lambda original, copy: "output 1 on input shape [1]")
    messages: list[str] = []
    section = prepare.prepare_models(into, {"mtcnn/rnet.onnx": manifest["files"]["mtcnn/rnet.onnx"]}, messages.append)
    assert section["files"] == {}
    assert not (into / "prepared" / "mtcnn" / "rnet.onnx").exists()
    assert not (into / "prepared" / "mtcnn" / "rnet.data").exists()
    assert any("differs from the original" in m for m in messages)
