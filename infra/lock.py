"""Write functions/constraints.txt: the exact versions both function images install, from this checkout's venv.

``python -m infra.lock`` walks the dependency closure of what the images install (the library's core with its
``classify`` extra, the core with its ``report`` extra, and the model build's ``infra[build]``) through the
installed distributions' metadata, with markers evaluated for the Lambda runtime (CPython 3.12, Linux x86_64),
and writes one ``name==version`` line per distribution. The Dockerfiles install with ``--constraint`` on it, so
an image holds the versions the test suite ran with. ``--check`` exits 1 when the file is out of date.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "functions" / "constraints.txt"
LOCAL_PROJECTS = frozenset({"imagelift", "imagelift-infra"})
"""Installed from the build context, never pinned (a constraint on a local path is an error to pip)."""
IMAGE_EXTRAS = {"classify": ("classify",), "report": ("report",)}
"""Lock section -> the library's extras one image installs."""

LAMBDA_ENVIRONMENT = {
    **default_environment(),
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
}


def _project_requirements(pyproject: Path, extras: tuple[str, ...]) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    lines = list(project.get("dependencies", []))
    for extra in extras:
        lines.extend(project.get("optional-dependencies", {})[extra])
    return [Requirement(line) for line in lines]


def closure(requirements: list[Requirement]) -> dict[str, tuple[str, list[Requirement]]]:
    """Canonical name -> (installed version, the requirements that led to it), walking installed metadata."""
    found: dict[str, tuple[str, list[Requirement]]] = {}
    pending = [(req, frozenset()) for req in requirements]
    seen_extras: set[tuple[str, frozenset[str]]] = set()
    while pending:
        req, parent_extras = pending.pop()
        if req.marker is not None and not any(
            req.marker.evaluate({**LAMBDA_ENVIRONMENT, "extra": extra}) for extra in (parent_extras or {""})
        ):
            continue
        name = canonicalize_name(req.name)
        if name in LOCAL_PROJECTS:
            own = _project_requirements(
                ROOT / ("infra/pyproject.toml" if name == "imagelift-infra" else "pyproject.toml"), tuple(req.extras)
            )
            pending.extend((r, frozenset()) for r in own)
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError as exc:
            raise SystemExit(f"{req.name} is not installed in {sys.prefix}: install the project's [dev] first") from exc
        _, reasons = found.setdefault(name, (dist.version, []))
        reasons.append(req)
        key = (name, frozenset(req.extras))
        if key in seen_extras:
            continue
        seen_extras.add(key)
        for line in dist.requires or []:
            pending.append((Requirement(line), frozenset(req.extras)))
    return found


def image_closures() -> dict[str, dict[str, tuple[str, list[Requirement]]]]:
    sections = {
        name: closure(_project_requirements(ROOT / "pyproject.toml", extras)) for name, extras in IMAGE_EXTRAS.items()
    }
    # The model build stage installs the classifier too: it prepares the nets with the same ONNX Runtime.
    sections["model-build"] = closure([Requirement("imagelift[classify]"), Requirement("imagelift-infra[build]")])
    return sections


def render() -> str:
    pins: dict[str, str] = {}
    for deps in image_closures().values():
        pins.update((name, version) for name, (version, _) in deps.items())
    lines = [
        "# Written by `python -m infra.lock` from the test suite's virtual environment: do not edit by hand.",
        "# Every distribution the function images install (imagelift[classify], imagelift[report], and the",
        "# classifier's model build stage), pinned; the Dockerfiles install with --constraint on this file.",
    ]
    lines.extend(f"{name}=={pins[name]}" for name in sorted(pins))
    return "\n".join(lines) + "\n"


def read_lock(path: Path = LOCK) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line)
            if not match:
                raise ValueError(f"{path}: {line!r} is not name==version")
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.lock", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the lock differs from the venv")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not LOCK.is_file() or LOCK.read_text(encoding="utf-8") != text:
            print(f"{LOCK} is out of date: run python -m infra.lock", file=sys.stderr)
            return 1
        return 0
    LOCK.write_text(text, encoding="utf-8")
    print(f"wrote {LOCK} ({text.count(chr(10)) - 3} pins)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
