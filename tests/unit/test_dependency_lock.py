"""functions/constraints.txt, the one lock both images install under: it agrees with pyproject.toml and with the
environment the tests ran in (``python -m infra.lock`` rewrites it)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra import lock

ROOT = Path(__file__).resolve().parents[2]


def declared(pyproject: Path, *extras: str) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize(
    ("pyproject", "extras"),
    [("pyproject.toml", ("classify",)), ("pyproject.toml", ("report",)), ("infra/pyproject.toml", ("build",))],
)
def test_every_declared_dependency_is_pinned_within_its_range(pyproject: str, extras: tuple[str, ...]):
    pins = lock.read_lock()
    for requirement in declared(ROOT / pyproject, *extras):
        name = canonicalize_name(requirement.name)
        if name in lock.LOCAL_PROJECTS:
            continue
        assert name in pins, f"{requirement} ({pyproject} {extras}) is not in {lock.LOCK.name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock.LOCK.name} pins {name}=={pins[name]}, outside {pyproject}'s {requirement}"
        )


def test_lock_is_what_the_tested_environment_holds():
    """The images get the versions the suite ran with: regenerate after changing pyproject.toml or the venv."""
    assert lock.LOCK.read_text(encoding="utf-8") == lock.render(), "run `python -m infra.lock` and commit the result"


def test_lock_holds_exact_pins_only_and_never_the_local_projects():
    pins = lock.read_lock()
    assert pins and not (set(pins) & lock.LOCAL_PROJECTS)
    assert all(version[0].isdigit() for version in pins.values())


def test_classifier_closure_has_no_statistics_stack():
    """The classifier image installs the [classify] closure: none of the report's packages."""
    classify = set(lock.image_closures()["classify"])
    assert {"onnxruntime", "opencv-python-headless", "numpy", "boto3"} <= classify
    assert not classify & {"pandas", "scipy", "statsmodels", "patsy"}
