"""`imagelift evaluate` on the real labelled photos: the confusion matrix adds up, the JSON has its shape, the
contact sheet shows every mistake."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from imagelift.cli import main as cli_main


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
    code = cli_main([*args, "--threads", "1", "--cv", str(cv_file)])
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
        if mistake["decided_by"] != "mtcnn":
            assert set(mistake["person_scores"]) == {"yolov3-tiny", "yolov4-tiny"}
    assert summary["errors"] == []
    assert summary["cross_validated_estimate"]["photos"]["worn_recall"] == 0.7
    assert summary["thresholds"]["person_combine"]
    page = (sheet / "index.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == len(summary["mistakes"])
    assert all((sheet / name).is_file() for name in images)


def test_evaluate_refuses_a_missing_folder(tmp_path, capsys):
    assert cli_main(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err
