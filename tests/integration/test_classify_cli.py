"""`imagelift classify`: JSON lines contract, errors that do not stop the run, the table, --annotate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest

from imagelift.cli import main


@pytest.fixture
def folder(tmp_path: Path, photos_dir: Path) -> Path:
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(photos_dir / "cat1_model" / "cat1_model_two_men_suits.jpg", root / "model.jpg")
    shutil.copy(photos_dir / "cat2_legs" / "cat2_legs_child_from_side_baseball.jpg", root / "sub" / "worn.jpg")
    shutil.copy(
        photos_dir / "cat3_product" / "cat3_product_vans_blue_white_bg.jpg", root / "sub" / "deeper" / "product.JPG"
    )
    (root / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    (root / "sub" / "anim.gif").write_bytes(b"GIF89a" + b"\x00" * 30)
    (root / "notes.txt").write_text("not an image: listed as skipped, with the reason")
    (root / ".hidden.jpg").write_bytes(b"")
    (root / "sub" / "catalogue.pdf").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\n")
    (root / "sub" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + b"\x00" * 32)
    (root / "sub" / "._worn.jpg").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)
    shutil.copy(photos_dir / "cat1_model" / "cat1_model_two_men_suits.jpg", root / "IMG_0001")  # no extension
    return root


def test_json_lines_and_errors(folder: Path, models_dir: Path, capsys) -> None:
    status = main(["classify", "--json", "--models-dir", str(models_dir), str(folder)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_name = {Path(row["path"]).name: row for row in lines}
    assert set(by_name) == {
        *("model.jpg", "worn.jpg", "product.JPG", "broken.png", "anim.gif", "IMG_0001"),
        *("notes.txt", ".hidden.jpg", "catalogue.pdf", ".DS_Store", "._worn.jpg"),
    }
    skipped = {name: row["skipped"]["code"] for name, row in by_name.items() if "skipped" in row}
    assert skipped == {
        "notes.txt": "not_an_image",
        "catalogue.pdf": "not_an_image",
        ".hidden.jpg": "hidden",
        ".DS_Store": "os_metadata",
        "._worn.jpg": "os_metadata",
    }
    assert "PDF" in by_name["catalogue.pdf"]["skipped"]["message"]
    assert by_name["IMG_0001"]["category"] == 1
    assert status == 1  # some files failed, reported at the end
    assert by_name["model.jpg"]["category"] == 1 and by_name["model.jpg"]["category_name"] == "model"
    assert by_name["worn.jpg"]["category"] == 2 and by_name["worn.jpg"]["decided_by"] == "yolo"
    assert by_name["product.JPG"]["category"] == 3 and by_name["product.JPG"]["decided_by"] == "none"
    for name in ("model.jpg", "worn.jpg", "product.JPG"):
        row = by_name[name]
        assert {"path", "category", "category_name", "decided_by", "faces", "persons", "ms"} <= set(row)
        assert row["ms"] > 0
    assert by_name["broken.png"]["error"]["code"] in {"truncated", "corrupt"}
    assert by_name["anim.gif"]["error"]["code"] == "unsupported_format"
    assert set(by_name["anim.gif"]) == {"path", "error"}


def test_all_good_files_exit_zero_with_a_table(folder: Path, models_dir: Path, capsys) -> None:
    status = main(
        [
            "classify",
            "--threads",
            "1",
            "--models-dir",
            str(models_dir),
            str(folder / "model.jpg"),
            str(folder / "sub" / "worn.jpg"),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "1 model" in out and "2 worn" in out
    counts = {
        line.split()[1]: int(line.split()[2])
        for line in out.splitlines()
        if line[:2] in ("1 ", "2 ", "3 ") and len(line.split()) == 3
    }
    assert counts == {"model": 1, "worn": 1, "product": 0}


def test_missing_path_is_reported_and_the_run_goes_on(folder: Path, models_dir: Path, capsys) -> None:
    status = main(
        ["classify", "--json", "--models-dir", str(models_dir), str(folder / "nope.jpg"), str(folder / "model.jpg")]
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 1 and len(rows) == 2
    assert rows[0]["error"]["code"] == "unreadable" and rows[1]["category"] == 1


def test_annotate_writes_copies_with_boxes(folder: Path, models_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "annotated"
    status = main(["classify", "--models-dir", str(models_dir), "--annotate", str(out), str(folder / "model.jpg")])
    assert status == 0
    written = sorted(out.iterdir())
    assert [p.name for p in written] == ["model.annotated.jpg"]
    original = cv2.imread(str(folder / "model.jpg"))
    drawn = cv2.imread(str(written[0]))
    assert drawn.shape == original.shape
    assert (cv2.absdiff(drawn, original).max(axis=2) > 60).mean() > 0.002  # boxes and labels were drawn
