"""Shared fixtures: where the labelled photos and the built models are. Tests needing them skip clearly.

On CI (``CI`` set) a skip is a failure: there every prerequisite (photos, models, sdist cache, checkov venv,
the emulator) must be present, so a test that quietly stopped running cannot pass as green. The one exception is
a test marked ``optional_tool``: it needs a program the project does not install (a web browser), and the checks it
adds are also made without it (the report page's structure and font sizes are parsed in tests/unit).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PHOTOS_DIR = (ROOT.parent / "shared" / "data" / "images").resolve()
MODELS_DIR = ROOT / "models"
EVENTS_DIR = ROOT / "tests" / "events"
CATEGORY_BY_FOLDER = {"cat1_model": 1, "cat2_legs": 2, "cat3_product": 3}


@pytest.fixture(scope="session")
def photos_dir() -> Path:
    if not PHOTOS_DIR.is_dir():
        pytest.skip(f"labelled photos not found at {PHOTOS_DIR} (../shared/data/images beside the repo)")
    return PHOTOS_DIR


@pytest.fixture(scope="session")
def labelled_photos(photos_dir: Path) -> list[tuple[Path, int]]:
    """(path, true category) for every labelled photo, sorted by path."""
    return sorted(
        (path, CATEGORY_BY_FOLDER[path.parent.name])
        for path in photos_dir.glob("cat*/*")
        if path.parent.name in CATEGORY_BY_FOLDER and path.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}
    )


@pytest.fixture(scope="session")
def models_dir() -> Path:
    if not (MODELS_DIR / "manifest.json").is_file():
        pytest.skip(f"models not built at {MODELS_DIR}: run `make models`")
    return MODELS_DIR


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("CI")
        and report.skipped
        and not hasattr(report, "wasxfail")
        and item.get_closest_marker("optional_tool") is None
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped on CI, where every prerequisite must be present: {reason}"
