"""The progress bar of `shipper run`: bytes and log events read, their rates, and the time left.

It shows only on a terminal (standard error is a TTY) and not with --quiet. Notes printed while it
runs (rejects) go above the bar, so it is never garbled; without a bar they go to standard error.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

from shipper.terminal import printable


class Progress:
    """A rich progress bar when enabled; otherwise notes only."""

    def __init__(self, total_bytes: int | None, enabled: bool) -> None:
        self._bar: Any = None
        self._started = time.perf_counter()
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import (
            Progress as RichProgress,
        )

        self._bar = RichProgress(
            TextColumn("{task.description}", style="cyan", markup=False),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[events]:,} events ({task.fields[rate]:,.0f}/s)"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._bar.add_task("reading", total=total_bytes, events=0, rate=0.0)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, bytes_read: int, events: int, name: str | None = None) -> None:
        """Bytes read so far (as stored), log events read so far, and the input being read."""
        if self._bar is None:
            return
        elapsed = max(time.perf_counter() - self._started, 1e-6)
        fields: dict[str, Any] = {"completed": bytes_read, "events": events, "rate": events / elapsed}
        if name is not None:
            name = printable(name)
            fields["description"] = name if len(name) <= 40 else "…" + name[-39:]
        self._bar.update(self._task, **fields)

    def note(self, text: str) -> None:
        """A line on standard error, above the bar while it shows, with control characters made visible."""
        text = printable(text)
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=sys.stderr)
