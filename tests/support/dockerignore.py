"""Docker's .dockerignore rules (moby's patternmatcher), to compute the build context a checkout sends.

Rules as Docker applies them: one pattern a line, ``#`` comments, ``!`` re-includes; each pattern is cleaned and
a leading ``/`` dropped; ``*`` and ``?`` stay inside one path element, ``**`` spans any number of them; a pattern
matches a path when it matches the path itself or any of its parent directories; the last pattern that matches
decides. A directory is not walked when it is excluded and no ``!`` pattern could reach inside it.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pattern:
    text: str
    negated: bool
    regex: re.Pattern[str]

    @property
    def literal_prefix(self) -> str:
        """The pattern up to its first wildcard: only paths starting with it (or its parents) can match."""
        return re.split(r"[*?\[\\]", self.text, maxsplit=1)[0]


def _to_regex(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1 : i + 2] == "*":
                i += 2
                if pattern[i : i + 1] == "/":
                    i += 1
                out.append(".*" if i >= len(pattern) else "(.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i)
            if end < 0:
                raise ValueError(f"unterminated character class in {pattern!r}")
            out.append(pattern[i : end + 1])
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out))


def parse(text: str) -> list[Pattern]:
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated:
            line = line[1:].strip()
        line = posixpath.normpath(line).lstrip("/")
        patterns.append(Pattern(line, negated, _to_regex(line)))
    return patterns


def _matches(pattern: Pattern, path: str) -> bool:
    parts = path.split("/")
    return any(pattern.regex.match("/".join(parts[:n])) for n in range(len(parts), 0, -1))


def excluded(patterns: list[Pattern], path: str) -> bool:
    """Whether ``path`` (relative, ``/``-separated) is left out of the context."""
    verdict = False
    for pattern in patterns:
        if _matches(pattern, path):
            verdict = not pattern.negated
    return verdict


def _may_reach_inside(patterns: list[Pattern], directory: str) -> bool:
    for pattern in patterns:
        if not pattern.negated:
            continue
        prefix = pattern.literal_prefix
        if prefix.startswith(directory + "/") or (directory + "/").startswith(prefix) or prefix == "":
            return True
    return False


def context_files(root: Path, ignore_file: Path | None = None) -> dict[str, int]:
    """Relative path -> size of every file Docker would send from ``root`` under its ``.dockerignore``."""
    ignore_file = ignore_file or root / ".dockerignore"
    patterns = parse(ignore_file.read_text(encoding="utf-8")) if ignore_file.is_file() else []
    sent: dict[str, int] = {}
    for current, dirs, files in os.walk(root):
        rel_dir = Path(current).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        kept = []
        for name in sorted(dirs):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if (Path(current) / name).is_symlink():  # Docker sends the link, not what it points to
                if not excluded(patterns, rel):
                    sent[rel] = 0
            elif not excluded(patterns, rel) or _may_reach_inside(patterns, rel):
                kept.append(name)
        dirs[:] = kept
        for name in files:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            path = Path(current) / name
            if not excluded(patterns, rel):
                sent[rel] = 0 if path.is_symlink() else path.stat().st_size
    return sent
