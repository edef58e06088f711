"""Every error imagelift raises derives from :class:`ImageliftError`, in one of three families.

- :class:`PermanentError`: retrying cannot help (a corrupt photo, a malformed event, a bad input file). Services
  record it (a ``failed`` item, a rejected file counted in the report) and go on.
- :class:`TransientError`: a retry may succeed (throttling, timeouts, 5xx). The ingest raises it so Lambda retries.
- :class:`EstimationFailure`: a fit could not be made. The report turns it into a warning and still comes out.
"""

from __future__ import annotations


class ImageliftError(Exception):
    """Base of every error the library raises on purpose."""


class PermanentError(ImageliftError):
    """The input can never succeed as it is; record why and move on."""

    code: str = "permanent"
    """Short reason a record or a count can carry (``error.code`` of a failed ImageCategories item)."""

    def to_record(self) -> dict[str, str]:
        """``{code, message}`` as a failed record stores it."""
        return {"code": self.code, "message": str(self)}


class TransientError(ImageliftError):
    """A dependency failed in a way a retry may fix."""


class EstimationFailure(ImageliftError):
    """A regression could not be estimated (singular design, no convergence, too little data)."""
