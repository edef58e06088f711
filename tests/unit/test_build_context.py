"""The images' build context: what `sam build` (docker-py, the root .dockerignore) and BuildKit send to the daemon.

The context is the repository root (template.yaml: DockerContext "."). Without the root .dockerignore a checkout
sends its virtual environments (over 1 GB), .cache, models/ and out/ with every build.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.dockerignore import context_files, excluded, parse

ROOT = Path(__file__).resolve().parents[2]
ROOT_IGNORE = ROOT / ".dockerignore"
DOCKERFILES = sorted(ROOT.glob("functions/*/Dockerfile"))
CONTEXT_BOUND_BYTES = 3 * 1024 * 1024
"""Source, metadata and the lock are about 0.5 MB; a bound this tight fails on any stray data directory."""


def copy_sources(dockerfile: Path) -> list[str]:
    """The context paths a Dockerfile COPYs (not those copied from another stage)."""
    sources = []
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from=") for w in words):
            sources.extend(w.rstrip("/") for w in words[1:-1] if not w.startswith("--"))
    return sources


@pytest.fixture(scope="module")
def sent() -> dict[str, int]:
    return context_files(ROOT)


def test_matcher_follows_docker_rules():
    patterns = parse("**\n!layers/**\n**/__pycache__\n!keep.txt\n/out\n*.md\n!README.md\n")
    assert excluded(patterns, "anything/at/all.py")
    assert not excluded(patterns, "layers/imagelift/cli.py")
    assert excluded(patterns, "layers/imagelift/__pycache__/cli.cpython-312.pyc")  # a parent directory matches
    assert not excluded(patterns, "keep.txt") and not excluded(patterns, "README.md")
    assert excluded(patterns, "NOTES.md") and excluded(patterns, "out/report.html")
    assert not excluded(parse("*.md"), "docs/NOTES.md")  # one * never crosses a "/"
    assert excluded(parse("**/*.md"), "docs/NOTES.md")


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".venv-checkov/lib/python3.12/site-packages/checkov/main.py",
        ".venv312/pyvenv.cfg",
        ".cache/burst/records.jsonl",
        "models/yolo/yolov3-tiny.onnx",
        "models",
        "out/influence.html",
        ".git/objects/pack/pack-1.pack",
        ".aws-sam/build/template.yaml",
        "tests/integration/test_template_stack.py",
        "bench/results/vision.json",
        "layers/imagelift/__pycache__/cli.cpython-312.pyc",
        "infra/imagelift_infra.egg-info/PKG-INFO",
    ],
)
def test_root_dockerignore_leaves_out_local_state(path: str):
    assert excluded(parse(ROOT_IGNORE.read_text(encoding="utf-8")), path)


def test_context_is_small(sent: dict[str, int]):
    total = sum(sent.values())
    assert total < CONTEXT_BOUND_BYTES, f"the build context is {total / 1e6:.1f} MB: {sorted(sent)[:20]}..."
    tops = {path.split("/", 1)[0] for path in sent}
    assert tops <= {"pyproject.toml", "README.md", "layers", "infra", "functions"}, tops


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_everything_each_dockerfile_copies_is_sent(sent: dict[str, int], dockerfile: Path):
    sources = copy_sources(dockerfile)
    assert sources, f"no COPY in {dockerfile}"
    for source in sources:
        if (ROOT / source).is_dir():
            tracked = {
                p.relative_to(ROOT).as_posix()
                for p in (ROOT / source).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p)
            }
            assert tracked and tracked <= set(sent), f"{dockerfile.name}: {sorted(tracked - set(sent))[:5]} not sent"
        else:
            assert source in sent, f"{dockerfile}: COPY {source} is left out of the context"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_buildkit_context_is_no_wider_than_the_root_one(sent: dict[str, int], dockerfile: Path):
    """BuildKit reads <Dockerfile>.dockerignore instead of the root file: the same files or fewer, never others."""
    own = context_files(ROOT, dockerfile.with_name("Dockerfile.dockerignore"))
    assert set(own) <= set(sent), sorted(set(own) - set(sent))
    for source in copy_sources(dockerfile):
        assert any(path == source or path.startswith(source + "/") for path in own), source


def test_both_images_install_the_same_way_from_one_lock():
    """One lock pins every version; each image installs the library with its own extra under it."""
    commands = {}
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text(encoding="utf-8")
        assert "COPY functions/constraints.txt" in text, dockerfile
        installs = re.findall(r'pip install --no-cache-dir --constraint constraints\.txt "\.\[(\w+)\]"', text)
        commands[dockerfile.parent.name] = installs
    # The classifier's model stage installs the same extra: it prepares the nets with the ONNX Runtime the image runs.
    assert commands == {"classify_image": ["classify", "classify"], "influence_report": ["report"]}
