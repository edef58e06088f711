"""The one progress bar of the command-line tools: a redrawn line on a terminal, a line per 10% otherwise."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO


class ProgressBar:
    """``[#######-------] 12/40 3.1/s classified 11 failed 1 name`` on stderr.

    On a terminal the line is redrawn in place; when stderr is a file or a pipe (CI logs) it prints one plain line
    each time another tenth is done, so logs stay short. ``enabled=False`` makes every call a no-op.
    """

    def __init__(self, total: int, *, verb: str = "done", enabled: bool = True, stream: TextIO | None = None) -> None:
        self.total = max(total, 0)
        self.verb = verb
        self.enabled = enabled and total > 0
        self.stream = stream if stream is not None else sys.stderr  # looked up now, not at import
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self.outcomes: Counter[str] = Counter()
        self._last_decile = -1
        self._finished = False

    def update(self, done: int, *, name: str = "", outcome: str | None = None) -> None:
        if outcome is not None:
            self.outcomes[outcome] += 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.started
        rate = f"{done / elapsed:.1f}/s" if elapsed > 0 else ""
        counts = " ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        if self.tty:
            width = 30
            filled = width * done // self.total
            bar = "#" * filled + "-" * (width - filled)
            line = f"[{bar}] {done}/{self.total} {rate} {counts} {name[:40]}".rstrip()
            self.stream.write(f"\r{line:<110}")
        else:
            decile = 10 * done // self.total
            if decile == self._last_decile:
                return
            self._last_decile = decile
            self.stream.write(f"{self.verb} {done}/{self.total} ({rate}) {counts}".rstrip() + "\n")
        self.stream.flush()
        if done >= self.total:
            self.finish()

    def finish(self) -> None:
        if self.enabled and self.tty and not self._finished:
            self.stream.write("\n")
            self.stream.flush()
        self._finished = True
