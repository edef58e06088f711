"""What the ingest returns: one :class:`RecordResult` per record handled, gathered in a :class:`BatchSummary`."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from imagelift.errors import TransientError


@dataclass(frozen=True)
class RecordResult:
    key: str
    outcome: str
    """classified | failed | deleted | duplicate (same event already recorded) | stale (a newer event was) |
    skipped (not a photo, or an event that changes none: nothing written) | invalid (unreadable and no key to
    record it under: nothing written)."""
    status: str | None = None
    category: int | None = None
    error: dict[str, str] | None = None
    """``{code, message}``: why a record failed or was skipped."""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class BatchSummary:
    results: list[RecordResult] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = Counter(r.outcome for r in self.results)
        if self.retry:
            counts["retry"] = len(self.retry)
        return dict(counts)

    @property
    def reasons(self) -> dict[str, int]:
        """``<outcome>_<code>`` -> records, for the records skipped, failed or invalid (one metric each)."""
        return dict(Counter(f"{r.outcome}_{r.error['code']}" for r in self.results if r.error))

    def merge(self, other: BatchSummary) -> None:
        self.results.extend(other.results)
        self.retry.extend(other.retry)

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": len(self.results) + len(self.retry),
            "counts": self.counts,
            "results": [r.to_dict() for r in self.results],
            "retry": self.retry,
        }


class TransientRecordError(TransientError):
    """Some records failed for a reason a retry can fix; Lambda retries the whole event (the rest are no-ops).

    ``summary`` holds what was done with the other records meanwhile.
    """

    def __init__(self, failures: list[tuple[str, BaseException]], summary: BatchSummary | None = None) -> None:
        details = "; ".join(f"{key}: {type(exc).__name__}: {exc}" for key, exc in failures)
        super().__init__(f"{len(failures)} record(s) to retry: {details}")
        self.failures = failures
        self.summary = summary or BatchSummary()
