"""The weekly report's CloudWatch metrics: what the function emits per run, named once for the template's alarm.

Emitted by functions/influence_report/app.py through powertools (namespace ``imagelift``, dimension
``service = influence-report``); template.yaml's ReportRejectedRowsAlarm watches :data:`REJECTED_SHARE_METRIC`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REJECTED_SHARE_METRIC = "rows_rejected_percent"
"""Rejected sales rows as a percentage of the rows read (0 when there were none)."""


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    """A powertools MetricUnit value (``Count``, ``Percent``, ``Seconds``)."""
    value: float


def report_metrics(summary: Mapping[str, Any], *, seconds: float) -> list[Metric]:
    """The metrics of one run from its summary (``run_scheduled``'s result) and its wall time.

    ``effects_estimated`` counts the categories whose effect the report could estimate; each estimated effect is
    also emitted as ``effect_pct_<category name>``, so a week where a lift vanishes shows on the dashboard.
    """
    rows = int(summary["rows"])
    rejected = int(summary["rows_rejected"])
    effects = {name: pct for name, pct in (summary.get("effects") or {}).items() if pct is not None}
    metrics = [
        Metric("rows", "Count", rows),
        Metric("rows_used", "Count", int(summary.get("rows_used", rows - rejected))),
        Metric("rows_rejected", "Count", rejected),
        Metric(REJECTED_SHARE_METRIC, "Percent", 100.0 * rejected / rows if rows else 0.0),
        Metric("effects_estimated", "Count", len(effects)),
        Metric("duration_seconds", "Seconds", round(seconds, 3)),
    ]
    metrics.extend(Metric(f"effect_pct_{name}", "Percent", float(pct)) for name, pct in sorted(effects.items()))
    return metrics
