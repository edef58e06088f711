"""The context-manager protocol shared by the local stack's long-lived pieces (moto server, functions)."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Running:
    """``with piece:`` starts it and always stops it; subclasses define ``start`` and ``stop``."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
