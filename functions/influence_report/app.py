"""InfluenceReportFunction: weekly, sales exports + ImageCategories -> reports/<date>/influence.* and a summary item.

The work is in imagelift.services.report_service; this wires configuration, logging, tracing and the run's
metrics (imagelift.services.report_metrics: rows, rejected rows and their share, effects, duration).
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

from imagelift.config import ReportConfig, SalesConfig, StorageConfig
from imagelift.services.report_metrics import report_metrics
from imagelift.services.report_service import run_scheduled, scheduled_time

logger = Logger(service="influence-report")
metrics = Metrics(namespace="imagelift", service="influence-report")
tracer = Tracer(service="influence-report")


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    started = time.perf_counter()
    summary = run_scheduled(
        StorageConfig.from_env(), ReportConfig.from_env(), SalesConfig.from_env(), now=scheduled_time(event)
    )
    for metric in report_metrics(summary, seconds=time.perf_counter() - started):
        metrics.add_metric(name=metric.name, unit=metric.unit, value=metric.value)
    logger.info("report written", extra={"summary": summary})
    return summary
