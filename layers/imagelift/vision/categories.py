"""The three photo categories (DESIGN.md): a face makes a model shot, a body part without a face a worn look."""

from __future__ import annotations

MODEL = 1
WORN = 2
PRODUCT = 3

CATEGORY_NAMES: dict[int, str] = {MODEL: "model", WORN: "worn", PRODUCT: "product"}
CATEGORY_BY_NAME: dict[str, int] = {name: number for number, name in CATEGORY_NAMES.items()}

DECIDED_BY = ("mtcnn", "yolo", "none")
