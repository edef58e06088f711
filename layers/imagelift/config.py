"""Configuration: one frozen object per concern, every field documented, read from the environment here only.

Handlers, services and the command line call ``<Config>.from_env()``; nothing else reads ``os.environ``.
Each field's environment variable is the upper-case field name with the class prefix given in ``_PREFIX``,
unless noted. Defaults are what production runs with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Self


def _coerce(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, Path):
        return Path(raw)
    return raw


class _FromEnv:
    _PREFIX: ClassVar[str] = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Self:
        """Build from ``environ`` (default ``os.environ``); explicit ``overrides`` win over both."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name in overrides:
                values[f.name] = overrides[f.name]
                continue
            name = f.metadata.get("env", f"{cls._PREFIX}{f.name.upper()}")
            if name in env and env[name] != "":
                default = f.default if f.default is not f.default_factory else f.default_factory()  # type: ignore[misc]
                try:
                    values[f.name] = _coerce(env[name], default)
                except ValueError as exc:
                    raise ValueError(f"environment variable {name}={env[name]!r} is not valid: {exc}") from exc
        return cls(**values)


def default_models_dir() -> Path:
    """Models baked into the Lambda image live beside the code; locally they are built into ./models."""
    task_root = os.environ.get("LAMBDA_TASK_ROOT")
    if task_root:
        return Path(task_root) / "models"
    return Path.cwd() / "models"


@dataclass(frozen=True)
class StorageConfig(_FromEnv):
    """Where things live in AWS. Names come from template.yaml through the function environment."""

    _PREFIX: ClassVar[str] = ""
    categories_table: str = "ImageCategories"
    """DynamoDB table of classification records (env CATEGORIES_TABLE)."""
    reports_table: str = "InfluenceReports"
    """DynamoDB table of weekly report summaries (env REPORTS_TABLE)."""
    data_bucket: str = ""
    """Bucket holding sales exports under ``sales_prefix`` and reports under ``reports_prefix`` (env DATA_BUCKET)."""
    sales_prefix: str = "sales/"
    """Prefix of the sellers' sales exports in the data bucket (env SALES_PREFIX)."""
    reports_prefix: str = "reports/"
    """Prefix reports are written under: <prefix><date>/ and <prefix>latest/ (env REPORTS_PREFIX)."""
    images_prefix: str = "images/"
    """Prefix of product photos in the uploads bucket (env IMAGES_PREFIX)."""
