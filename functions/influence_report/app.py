"""InfluenceReportFunction: weekly, sales exports + ImageCategories -> reports/<date>/influence.* and a summary item.

The work is in imagelift.services.report_service; this only wires configuration and logging.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from imagelift.config import ReportConfig, SalesConfig, StorageConfig
from imagelift.services.report_service import run_scheduled, scheduled_time

logger = Logger(service="influence-report")


@logger.inject_lambda_context(log_event=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    summary = run_scheduled(
        StorageConfig.from_env(), ReportConfig.from_env(), SalesConfig.from_env(), now=scheduled_time(event)
    )
    logger.info("report written", extra={"summary": summary})
    return summary
