"""A progress bar for ``consilium seed`` on stderr, without a dependency.

On a terminal it redraws one line (``\\r``); otherwise (a log file, CI, a pipe) it prints a plain
line every ``every`` percent, so logs stay readable and are not flooded with carriage returns.
"""

from __future__ import annotations

import sys
from typing import TextIO


class ProgressBar:
    def __init__(
        self, label: str = "seed", *, stream: TextIO | None = None, width: int = 30, every: int = 10
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.every = every
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_step = -1

    def __call__(self, done: int, total: int) -> None:
        share = done / total if total else 1.0
        if self.tty:
            filled = round(self.width * share)
            bar = "#" * filled + "-" * (self.width - filled)
            end = "\n" if done >= total else ""
            self.stream.write(f"\r{self.label} [{bar}] {done}/{total}{end}")
        else:
            step = int(share * 100) // self.every
            if step == self._last_step and done < total:
                return
            self._last_step = step
            self.stream.write(f"{self.label}: {done}/{total} resources ({share:.0%})\n")
        self.stream.flush()
