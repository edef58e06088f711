"""Person search passes with a stand-in detector: which passes run, and boxes mapped back to photo pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from imagelift.config import VisionConfig
from imagelift.vision.person import LETTERBOX_GREY, PersonFinder, padded_canvas


@dataclass
class FakeDetection:
    box: tuple[float, float, float, float]
    confidence: float
    class_id: int = 0
    class_name: str = "person"


class FakeDetector:
    """Finds a 'person' only where the photo's white square is, at the size the square has in the input."""

    def __init__(self, find_in_full: bool) -> None:
        self.find_in_full = find_in_full
        self.calls: list[tuple[tuple[int, int], int]] = []

    def detect(self, image_bgr, input_size=416, conf_threshold=0.25, iou_threshold=0.45, class_ids=None):
        self.calls.append((image_bgr.shape[:2], input_size))
        if len(self.calls) == 1 and not self.find_in_full:
            return []
        ys, xs = np.nonzero(image_bgr[:, :, 0] == 255)
        return [FakeDetection((float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)), 0.9)]


def _photo() -> np.ndarray:
    image = np.zeros((300, 600, 3), np.uint8)
    image[100:200, 200:300] = 255  # the "person": x 200, y 100, 100 x 100
    return image


def test_full_pass_hit_skips_the_padded_pass() -> None:
    detector = FakeDetector(find_in_full=True)
    persons = PersonFinder(detector, input_size=192).find(_photo())
    assert len(detector.calls) == 1 and detector.calls[0][1] == 192
    assert persons[0].source == "full" and persons[0].box == (200.0, 100.0, 100.0, 100.0)


def test_padded_pass_maps_boxes_back() -> None:
    detector = FakeDetector(find_in_full=False)
    persons = PersonFinder(detector, input_size=192, padded_input_size=320, padded_scale=0.5).find(_photo())
    assert [call[1] for call in detector.calls] == [192, 320]
    assert detector.calls[1][0] == (320, 320)
    assert persons[0].source == "padded"
    assert persons[0].box == pytest.approx((200, 100, 100, 100), abs=3)


def test_padded_canvas_geometry() -> None:
    canvas, scale, (ox, oy) = padded_canvas(_photo(), 320, 0.5)
    assert canvas.shape == (320, 320, 3) and scale == pytest.approx(160 / 600)
    assert (ox, oy) == (80, 120)
    assert (canvas[0, 0] == LETTERBOX_GREY).all() and (canvas[oy + 1, ox + 1] == 0).all()


def test_no_full_pass_when_its_size_is_zero() -> None:
    detector = FakeDetector(find_in_full=True)
    PersonFinder(detector, input_size=0, padded_input_size=256, padded_scale=0.6).find(_photo())
    assert [call[1] for call in detector.calls] == [256]


class ScoredDetector:
    """Returns one fixed-score 'person' per call, a score per pass: (full, padded)."""

    def __init__(self, full: float, padded: float) -> None:
        self.scores = {"full": full, "padded": padded}
        self.calls: list[str] = []

    def detect(self, image_bgr, input_size=416, conf_threshold=0.25, iou_threshold=0.45, class_ids=None):
        name = "padded" if input_size == 320 else "full"
        self.calls.append(name)
        score = self.scores[name]
        return [FakeDetection((10.0, 10.0, 50.0, 50.0), score)] if score >= conf_threshold else []


def _finder(nets, **kwargs) -> PersonFinder:
    options = {"input_size": 192, "padded_input_size": 320, "min_confidence": 0.3, "padded_min_confidence": 0.4}
    return PersonFinder(nets, **{**options, **kwargs})


@pytest.mark.parametrize(
    ("combine", "found", "pass_name"),
    [("max", True, "full"), ("mean", True, "padded"), ("min", False, None)],
)
def test_nets_are_combined_per_pass(combine, found, pass_name) -> None:
    nets = {"v3": ScoredDetector(full=0.1, padded=0.3), "v4": ScoredDetector(full=0.45, padded=0.6)}
    search = _finder(nets, combine=combine).search(_photo())
    assert search.found is found and search.pass_name == pass_name
    if combine == "max":
        assert search.combined == {"full": 0.45} and nets["v3"].calls == ["full"]
    if combine == "mean":
        assert search.combined == pytest.approx({"full": 0.275, "padded": 0.45})
    if found:
        assert search.net == "v4" and all(p.net == "v4" for p in search.persons)
        assert all(p.confidence >= 0.3 for p in search.persons)
    else:
        assert search.persons == [] and search.net is None
        assert search.scores == {"v3": {"full": 0.1, "padded": 0.3}, "v4": {"full": 0.45, "padded": 0.6}}


def test_near_misses_below_the_threshold_are_kept() -> None:
    nets = {"v3": ScoredDetector(full=0.02, padded=0.35), "v4": ScoredDetector(full=0.0, padded=0.15)}
    search = _finder(nets, combine="mean").search(_photo())
    assert not search.found
    assert search.scores == {"v3": {"full": 0.02, "padded": 0.35}, "v4": {"full": 0.0, "padded": 0.15}}
    assert search.nearest_margin() == pytest.approx(0.15)
    assert search.thresholds == {"full": 0.3, "padded": 0.4}


@pytest.mark.parametrize(
    ("first_full", "runs_second"),
    [(0.05, False), (0.15, False), (0.25, True), (0.35, True)],
)
def test_a_net_far_under_the_threshold_settles_the_min_rule(first_full, runs_second) -> None:
    """Threshold 0.3, settle margin 0.1: under 0.2 the minimum can neither reach 0.3 nor come within 0.1 of it."""
    nets = {"v3": ScoredDetector(full=first_full, padded=0.0), "v4": ScoredDetector(full=0.5, padded=0.0)}
    settled = _finder(nets, combine="min", padded_pass=False, settle_margin=0.1).search(_photo())
    assert nets["v4"].calls == (["full"] if runs_second else [])
    everything = _finder(
        {"v3": ScoredDetector(full=first_full, padded=0.0), "v4": ScoredDetector(full=0.5, padded=0.0)},
        combine="min",
        padded_pass=False,
    ).search(_photo())
    assert settled.found is everything.found
    assert (settled.nearest_margin() < 0.1) is (everything.nearest_margin() < 0.1)
    assert ("full" in settled.scores["v4"]) is runs_second


def test_only_the_min_rule_settles_early() -> None:
    nets = {"v3": ScoredDetector(full=0.0, padded=0.0), "v4": ScoredDetector(full=0.5, padded=0.0)}
    assert _finder(nets, combine="max", padded_pass=False, settle_margin=0.1).search(_photo()).found
    assert nets["v4"].calls == ["full"]


def test_unknown_combine_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="combine"):
        PersonFinder({"v3": ScoredDetector(0, 0)}, combine="vote")


def test_vision_config_from_env() -> None:
    config = VisionConfig.from_env(
        {
            "IMAGELIFT_FACE_MIN_CONFIDENCE": "0.95",
            "IMAGELIFT_MODELS_DIR": "/opt/models",
            "IMAGELIFT_PADDED_PASS": "false",
            "IMAGELIFT_THREADS": "2",
        }
    )
    assert config.face_min_confidence == 0.95 and config.padded_pass is False and config.threads == 2
    assert str(config.models_dir) == "/opt/models" and not isinstance(config.models_dir, str)
    assert VisionConfig.from_env({}).threads == 1
    with pytest.raises(ValueError, match="IMAGELIFT_THREADS"):
        VisionConfig.from_env({"IMAGELIFT_THREADS": "many"})


def test_a_first_look_is_reused_by_the_whole_photo_pass() -> None:
    """The face gate's run of the primary net is the search's own first pass: the net does not run again."""
    detector = FakeDetector(find_in_full=True)
    finder = PersonFinder(detector, input_size=192)
    first = finder.first_look(_photo())
    assert len(detector.calls) == 1 and detector.calls[0][1] == 192
    search = finder.search(_photo(), first)
    assert len(detector.calls) == 1
    assert search.persons == first and search.net == finder.primary == "yolo"
    fresh = PersonFinder(FakeDetector(find_in_full=True), input_size=192).search(_photo())
    assert fresh.persons == search.persons and fresh.scores == search.scores


def test_without_a_whole_photo_pass_there_is_no_first_look() -> None:
    detector = FakeDetector(find_in_full=True)
    assert PersonFinder(detector, input_size=0).first_look(_photo()) == [] and detector.calls == []
