"""`imagelift evaluate` on the real labelled photos: the confusion matrix adds up, the JSON has its shape, the
contact sheet shows every mistake."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from imagelift.cli import main as cli_main

HANDS_FUSION = Path(__file__).resolve().parents[2] / "bench" / "results" / "hands_fusion.json"
GATE_CV = Path(__file__).resolve().parents[2] / "bench" / "results" / "person_gate.json"
POSE_CV = Path(__file__).resolve().parents[2] / "bench" / "results" / "pose_face.json"


def test_evaluate_json_on_the_labelled_photos(photos_dir: Path, models_dir: Path, labelled_photos, tmp_path, capsys):
    sheet = tmp_path / "sheet"
    cv_file = tmp_path / "tuning.json"
    cv_file.write_text(
        json.dumps(
            {
                "chosen": {"person_combine": "mean"},
                "cv": {"photos": {"per_kind": {"hands": {"recall": 0.5}}, "worn_recall": 0.7, "accuracy": 0.9}},
            }
        )
    )
    args = ["evaluate", str(photos_dir), "--json", "--html", str(sheet), "--models-dir", str(models_dir)]
    code = cli_main(
        [
            *args,
            *("--threads", "1", "--cv", str(cv_file), "--hand-cv", str(HANDS_FUSION), "--gate-cv", str(GATE_CV)),
            *("--pose-cv", str(POSE_CV)),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads(out)
    matrix = summary["confusion"]["matrix"]
    truth = Counter(label for _, label in labelled_photos)
    assert summary["photos"] == len(labelled_photos) == sum(map(sum, matrix))
    assert [sum(row) for row in matrix] == [truth[1], truth[2], truth[3]]
    assert summary["correct"] == sum(matrix[i][i] for i in range(3))
    assert len(summary["mistakes"]) == summary["photos"] - summary["correct"]
    assert set(summary["per_class"]) == {"model", "worn", "product"}
    for figures in summary["per_class"].values():
        row = matrix[figures["category"] - 1]
        assert figures["photos"] == sum(row) and figures["correct"] == row[figures["category"] - 1]
    review = summary["review"]
    assert 0 <= review["share"] <= 1 and review["photos"] == round(review["share"] * summary["photos"])
    for mistake in summary["mistakes"]:
        assert mistake["label"] != mistake["predicted"] and Path(mistake["path"]).is_file()
        assert Path(mistake["path"]).parent.name.startswith(f"cat{mistake['label']}_")
        assert {"faces", "best_face_score", "persons", "person_scores", "review", "decided_by"} <= set(mistake)
        assert {"hand_vote", "hands", "face_gate", "pose_face"} <= set(mistake)
        if mistake["decided_by"] in ("yolo", "movenet"):  # a person and no face: the pose stage ran and says so
            assert mistake["pose_face"]["fired"] is (mistake["decided_by"] == "movenet")
        assert mistake["face_gate"]["open"] is (mistake["face_gate"]["person"] >= mistake["face_gate"]["threshold"])
        if mistake["predicted"] == 3:  # nobody was found, so the hand stage ran and says why it did not fire
            assert mistake["hand_vote"]["fired"] is False and mistake["hands"] == []
        if mistake["decided_by"] != "mtcnn":
            assert set(mistake["person_scores"]) == {"yolov3-tiny", "yolov4-tiny"}
    assert summary["errors"] == []
    assert summary["cross_validated_estimate"]["photos"]["worn_recall"] == 0.7
    # the hand stage is on by default: the estimate also gives the cascade's CV figures with it
    with_hands = summary["cross_validated_estimate"]["with_hand_stage"]
    shipped = json.loads(HANDS_FUSION.read_text())["modes"]["capped_any"]["cv"]
    for scheme in ("photos", "sources"):
        test = shipped[scheme]["test"]
        assert with_hands[scheme]["worn_recall"] == test["worn"]["called_worn"]
        assert with_hands[scheme]["product_called_worn_or_model"] == test["product_called_worn_or_model"] <= 0.01
    assert summary["thresholds"]["person_combine"]
    # the face gate is on by default: the estimate also gives its CV figures, from its own tuning run
    gate = summary["cross_validated_estimate"]["with_face_gate"]
    tuned = json.loads(GATE_CV.read_text())["cv"]
    for scheme in ("photos", "sources"):
        assert gate[scheme]["model_recall"] == tuned[scheme]["test"]["model_recall"]
        assert gate[scheme]["products_called_worn_or_model"] == tuned[scheme]["test"]["products_called_worn_or_model"]
    # the pose stage is on by default: its CV figures too
    pose = summary["cross_validated_estimate"]["with_pose_stage"]
    tuning = json.loads(POSE_CV.read_text())
    fitted, before = tuning["modes"]["budget"]["cv"], tuning["cascade"]["model"]
    for scheme in ("photos", "sources"):
        assert pose[scheme]["model"] == fitted[scheme]["test"]["model"] > before
        assert pose[scheme]["worn_called_model"] == fitted[scheme]["test"]["worn_called_model"]
    page = (sheet / "index.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == len(summary["mistakes"])
    assert all((sheet / name).is_file() for name in images)


def test_evaluate_refuses_a_missing_folder(tmp_path, capsys):
    assert cli_main(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_evaluate_text_gives_the_estimate_with_the_hand_stage(
    photos_dir: Path, models_dir: Path, tmp_path, capsys, monkeypatch
):
    """On two photos the measured figures mean little; the printout puts the cross-validated ones beside them."""
    for name in (
        "cat2_legs/cat2_legs_hand_reaching_shoe_shelf.jpg",
        "cat3_product/cat3_product_brown_boots_flatlay.jpg",
    ):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).symlink_to(photos_dir / name)
    args = [
        "evaluate",
        str(tmp_path),
        "--models-dir",
        str(models_dir),
        "--threads",
        "1",
        "--hand-cv",
        str(HANDS_FUSION),
    ]
    code = cli_main(args)
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("2/2 correct")
    shipped = json.loads(HANDS_FUSION.read_text())["modes"]["capped_any"]["cv"]["sources"]["test"]
    assert f"with the hand stage (sources left out, {HANDS_FUSION}): hands {shipped['hands']['called_worn']:.0%}" in out
    monkeypatch.setenv("IMAGELIFT_HAND_STAGE", "false")
    off = cli_main(args)
    out = capsys.readouterr().out
    assert off == 0 and out.startswith("1/2 correct") and "with the hand stage" not in out
