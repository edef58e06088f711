"""The photo categories: the one place they are declared. Everything else iterates over :data:`CATEGORIES`.

A face makes a model shot; a person or part of one without a face makes a worn look; neither is a product-only
shot, the base every effect is measured against. Adding a category is one entry here (plus the tests that list it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    label: str
    """How a seller reads it in a report."""


MODEL = Category(1, "model", "model / celebrity (a face)")
WORN = Category(2, "worn", "worn look (legs, feet, hands)")
PRODUCT = Category(3, "product", "product only")

CATEGORIES: tuple[Category, ...] = (MODEL, WORN, PRODUCT)
BASE: Category = PRODUCT
"""Effects are measured against this category."""
EFFECT_CATEGORIES: tuple[Category, ...] = tuple(c for c in CATEGORIES if c != BASE)

CATEGORY_IDS: frozenset[int] = frozenset(c.id for c in CATEGORIES)
CATEGORY_NAMES: dict[int, str] = {c.id: c.name for c in CATEGORIES}


def by_id(category_id: int) -> Category:
    for category in CATEGORIES:
        if category.id == category_id:
            return category
    raise KeyError(f"no category {category_id!r}; known: {sorted(CATEGORY_IDS)}")
