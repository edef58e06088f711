"""The report's numbers stay what the library gave before its switch analyses and within-listing fit were made
faster: every coefficient, standard error, test and warning, on simulated catalogues that reach the event study,
each threat check (quiet, moved, not possible) and rows dropped on the way."""

from __future__ import annotations

import json
import math

import pytest

from tests.support.switch_reference import CATALOGUES, REFERENCE, sections

TOL = 1e-10


def _differences(got, want, path: str = "") -> list[str]:
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return [f"{path}: keys {sorted(got) if isinstance(got, dict) else got!r} != {sorted(want)}"]
        return [d for key in want for d in _differences(got[key], want[key], f"{path}.{key}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: {got!r} != {want!r}"]
        return [d for i, (g, w) in enumerate(zip(got, want, strict=True)) for d in _differences(g, w, f"{path}[{i}]")]
    if isinstance(want, float) and isinstance(got, int | float) and not isinstance(got, bool):
        if math.isclose(got, want, rel_tol=TOL, abs_tol=TOL):
            return []
        return [f"{path}: {got!r} != {want!r}"]
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]


@pytest.mark.parametrize("name", sorted(CATALOGUES))
def test_the_report_keeps_every_number_of_the_library_before(name):
    want = json.loads(REFERENCE.read_text())[name]
    differences = _differences(sections(CATALOGUES[name]), want)
    assert not differences, "\n".join(differences[:20])


def test_the_comparison_sees_a_changed_number():
    want = {"a": [{"estimate": 0.25, "note": "x"}]}
    assert _differences({"a": [{"estimate": 0.25 + 1e-9, "note": "x"}]}, want)
    assert _differences({"a": [{"estimate": 0.25, "note": "y"}]}, want)
    assert not _differences({"a": [{"estimate": 0.25 + 1e-12, "note": "x"}]}, want)
