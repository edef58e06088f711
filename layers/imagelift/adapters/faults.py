"""Which failures of an AWS call are worth a retry: the ingest's one rule for "transient".

Transient: throttling, timeouts, 5xx, connection failures, and access denied (a policy or credentials gap that a
deployment fixes; the event waits in the failure queue to be redriven). Permanent: every other 4xx (a key S3 or
DynamoDB refuses, a parameter botocore refuses), text that cannot be encoded, running out of memory, and every
:class:`~imagelift.errors.PermanentError`. An exception of no known kind is treated as transient: it is more likely
a fault in this code than in the photo, and a retried event can be redriven once it is fixed, a failed item cannot.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from imagelift.errors import PermanentError, TransientError

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "EC2ThrottledException",
        "InternalError",
        "ServiceUnavailable",
    }
)
_RETRY_STATUSES = frozenset({403, 408, 429})


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same call later may succeed (see the module docstring)."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, PermanentError | MemoryError | UnicodeError | ParamValidationError):
        return False
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return status >= 500 or status in _RETRY_STATUSES or code in THROTTLING_CODES
    if isinstance(exc, BotoCoreError | TimeoutError | ConnectionError):
        return True
    return True
