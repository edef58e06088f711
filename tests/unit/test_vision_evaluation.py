"""Counting an evaluation: folders as labels, the confusion matrix, review figures, mistakes with their scores."""

from __future__ import annotations

from pathlib import Path

from imagelift.vision.evaluation import LabelledFile, labelled_files, summarise


def test_labelled_files_reads_the_label_from_the_folder(tmp_path: Path) -> None:
    for folder, name in [
        ("cat1_model", "a.jpg"),
        ("cat2_legs", "b.PNG"),
        ("cat3_product", "c.webp"),
        ("other", "d.jpg"),
    ]:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_bytes(b"x")
    (tmp_path / "cat3_product" / "notes.txt").write_text("not a photo")
    found = labelled_files([tmp_path])
    assert [(f.path.name, f.label) for f in found] == [("a.jpg", 1), ("b.PNG", 2), ("c.webp", 3)]
    assert [f.label for f in labelled_files([tmp_path / "cat2_legs"])] == [2]


def _record(category: int, review: bool = False) -> dict:
    return {
        "category": category,
        "decided_by": {1: "mtcnn", 2: "yolo", 3: "none"}[category],
        "faces": [],
        "persons": [],
        "best_face_score": 0.0,
        "person_scores": {"yolov3-tiny": {"full": 0.2}},
        "review": review,
    }


def test_summarise_counts_and_lists_the_mistakes() -> None:
    results = [
        (LabelledFile(Path("m1.jpg"), 1), _record(1)),
        (LabelledFile(Path("w1.jpg"), 2), _record(3, review=True)),
        (LabelledFile(Path("w2.jpg"), 2), _record(2)),
        (LabelledFile(Path("p1.jpg"), 3), _record(3)),
        (LabelledFile(Path("p2.jpg"), 3), _record(2, review=True)),
        (LabelledFile(Path("bad.jpg"), 3), {"error": {"code": "empty", "message": "no bytes"}}),
    ]
    summary = summarise(results)
    assert summary["confusion"]["matrix"] == [[1, 0, 0], [0, 1, 1], [0, 1, 1]]
    assert summary["photos"] == 5 and summary["correct"] == 3 and summary["accuracy"] == 0.6
    assert summary["per_class"]["worn"] == {"category": 2, "photos": 2, "correct": 1, "recall": 0.5}
    assert summary["review"] == {"photos": 2, "share": 0.4, "accuracy_in_review": 0.0, "accuracy_outside_review": 1.0}
    assert [(m["path"], m["predicted"]) for m in summary["mistakes"]] == [("w1.jpg", 3), ("p2.jpg", 2)]
    assert summary["mistakes"][0]["person_scores"] == {"yolov3-tiny": {"full": 0.2}}
    assert summary["errors"][0]["path"] == "bad.jpg"


def test_a_mistake_whose_face_stage_was_skipped_says_so_instead_of_a_face_score():
    from imagelift.commands.evaluate import _face_text

    closed = {
        "best_face_score": 0.0,
        "face_gate": {"net": "yolov3-tiny", "person": 0.0132, "threshold": 0.125, "open": False},
    }
    assert _face_text(closed) == "no face looked for (yolov3-tiny person 0.0132 < 0.125)"
    opened = {
        "best_face_score": 0.61,
        "face_gate": {"net": "yolov3-tiny", "person": 0.4, "threshold": 0.125, "open": True},
    }
    assert _face_text(opened) == _face_text({"best_face_score": 0.61, "face_gate": None}) == "best rejected face 0.61"
