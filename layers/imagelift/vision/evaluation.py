"""Judge the cascade on labelled folders: the folder is the label (``cat1_model``, ``cat2_legs``, ``cat3_product``).

:func:`labelled_files` finds the photos, :func:`summarise` turns (true label, classification record) pairs into the
confusion matrix, per-class recall, the review figures and the list of mistakes with their scores. Pure Python:
the command (imagelift.commands.evaluate) classifies, this module only counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagelift.records.categories import CATEGORY_NAMES

LABEL_FOLDERS = {"cat1_model": 1, "cat2_legs": 2, "cat3_product": 3}
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".heic", ".heif", ".avif"}


@dataclass(frozen=True)
class LabelledFile:
    path: Path
    label: int


def labelled_files(roots: list[Path]) -> list[LabelledFile]:
    """Photos under each root's ``cat*`` folders (a root may itself be one of them), sorted by path."""
    found: list[LabelledFile] = []
    for root in roots:
        folders = [root] if root.name in LABEL_FOLDERS else [root / name for name in LABEL_FOLDERS]
        for folder in folders:
            if not folder.is_dir():
                continue
            label = LABEL_FOLDERS[folder.name]
            found.extend(
                LabelledFile(path, label)
                for path in sorted(folder.rglob("*"))
                if path.is_file() and path.suffix.lower() in PHOTO_SUFFIXES and not path.name.startswith(".")
            )
    return found


def _scores(record: dict[str, Any]) -> dict[str, Any]:
    """What a mistake is shown with: every score that could have changed the decision."""
    return {
        "faces": [round(f["confidence"], 4) for f in record.get("faces", [])],
        "best_face_score": record.get("best_face_score"),
        "face_gate": record.get("face_gate"),
        "persons": [round(p["confidence"], 4) for p in record.get("persons", [])],
        "person_net": record.get("person_net"),
        "person_pass": record.get("person_pass"),
        "person_scores": record.get("person_scores"),
        "pose_face": record.get("pose_face"),
        "hand_vote": record.get("hand_vote"),
        "hands": [round(h["confidence"], 4) for h in record.get("hands") or []],
        "review": record.get("review"),
    }


def summarise(results: list[tuple[LabelledFile, dict[str, Any]]]) -> dict[str, Any]:
    """Confusion matrix (rows: true 1-3, columns: predicted 1-3), recall per class, review figures, mistakes.

    ``results`` pairs each file with its classification record (``Classification.to_record()``), or with
    ``{"error": {...}}`` when it could not be classified; errors are listed apart and left out of the matrix.
    """
    matrix = [[0, 0, 0] for _ in range(3)]
    mistakes, errors = [], []
    in_review = correct_in_review = outside = correct_outside = 0
    for item, record in results:
        if "error" in record:
            errors.append({"path": str(item.path), "label": item.label, "error": record["error"]})
            continue
        predicted = int(record["category"])
        matrix[item.label - 1][predicted - 1] += 1
        right = predicted == item.label
        if record.get("review"):
            in_review += 1
            correct_in_review += right
        else:
            outside += 1
            correct_outside += right
        if not right:
            mistakes.append(
                {
                    "path": str(item.path),
                    "label": item.label,
                    "label_name": CATEGORY_NAMES[item.label],
                    "predicted": predicted,
                    "predicted_name": CATEGORY_NAMES[predicted],
                    "decided_by": record.get("decided_by"),
                    **_scores(record),
                }
            )
    total = sum(map(sum, matrix))
    per_class = {}
    for label, name in CATEGORY_NAMES.items():
        row = matrix[label - 1]
        n = sum(row)
        per_class[name] = {
            "category": label,
            "photos": n,
            "correct": row[label - 1],
            "recall": round(row[label - 1] / n, 4) if n else None,
        }
    correct = sum(matrix[i][i] for i in range(3))
    return {
        "photos": total,
        "correct": correct,
        "accuracy": round(correct / total, 4) if total else None,
        "confusion": {"rows": "true 1-3", "columns": "predicted 1-3", "matrix": matrix},
        "per_class": per_class,
        "review": {
            "photos": in_review,
            "share": round(in_review / total, 4) if total else None,
            "accuracy_in_review": round(correct_in_review / in_review, 4) if in_review else None,
            "accuracy_outside_review": round(correct_outside / outside, 4) if outside else None,
        },
        "mistakes": mistakes,
        "errors": errors,
    }
