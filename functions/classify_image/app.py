"""ClassifyImageFunction: S3 ObjectCreated / ObjectRemoved under images/ -> one ImageCategories record per photo.

The models are loaded here, at import (container init), once per container; the work is in
imagelift.services.classify_service.ClassifyService.
"""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from imagelift.services.classify_service import ClassifyService

logger = Logger(service="classify-image")
metrics = Metrics(namespace="imagelift", service="classify-image")
tracer = Tracer(service="classify-image")
# the library's per-record lines (loggers imagelift.*) come out as the same structured JSON, with the request id
logging.getLogger("imagelift")
copy_config_to_registered_loggers(source_logger=logger, include={"imagelift"})

service = ClassifyService.from_env()  # Cascade.load: ONNX sessions created once per container


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary = service.handle_event(event)  # raises TransientRecordError: Lambda retries, then the failure queue
    for outcome, count in summary.counts.items():
        metrics.add_metric(name=f"records_{outcome}", unit=MetricUnit.Count, value=count)
    logger.info("event done", extra={"counts": summary.counts})
    return summary.to_dict()
