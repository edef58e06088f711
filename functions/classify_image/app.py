"""ClassifyImageFunction: uploads and deletes under images/ -> one ImageCategories record per photo version.

It is invoked by S3 directly, by EventBridge, or by an SQS queue (template parameter ``PhotoEventDelivery``); the
models are loaded here, at import (container init), once per container; the work is in
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
    # raises TransientRecordError (direct, EventBridge): Lambda retries, then the failure queue;
    # an SQS batch answers with its failed messages instead
    response, summary = service.handle_delivery(event, context)
    for name, count in {**summary.counts, **summary.reasons}.items():
        metrics.add_metric(name=f"records_{name}", unit=MetricUnit.Count, value=count)
    logger.info("event done", extra={"counts": summary.counts, "reasons": summary.reasons})
    return response
