"""Stopping on SIGTERM or Ctrl-C: an Event the signals set, and waits that end as soon as it is set.

`shipper run` and `shipper consume` wait between retries (a Retry-After may ask for minutes); these
waits return at once on a stop, and the delivery layer then reports the waiting batch as not delivered.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

__all__ = ["interruptible_sleep", "stop_on_signals", "stopped_by_signals"]
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_on_signals(stop: threading.Event, signals: Iterable[signal.Signals] = _SIGNALS) -> None:
    """Set `stop` when one of `signals` arrives (call from the main thread)."""
    for signum in signals:
        signal.signal(signum, lambda *_: stop.set())


@contextmanager
def stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT set `stop`; the handlers before it come back after it."""
    previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    stop_on_signals(stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def interruptible_sleep(stop: threading.Event) -> Callable[[float], None]:
    """A `sleep` for Delivery that returns as soon as `stop` is set."""

    def sleep(seconds: float) -> None:
        stop.wait(seconds)

    return sleep
