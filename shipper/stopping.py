"""Stopping on SIGTERM or Ctrl-C: an Event the signals set, and waits that end as soon as it is set.

`shipper run` and `shipper consume` wait between retries (a Retry-After may ask for minutes); these
waits return at once on a stop, and the delivery layer then reports the waiting batch as not delivered.
After a stop, delivery gets SHUTDOWN_GRACE_S more to flush what is buffered (`grace_deadline`). A read
of input blocked on a pipe or FIFO is ended by raising Interrupted (`interrupting_reads`).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

__all__ = [
    "SHUTDOWN_GRACE_S",
    "Interrupted",
    "grace_deadline",
    "interruptible_sleep",
    "interrupting_reads",
    "stop_on_signals",
    "stopped_by_signals",
]
_SIGNALS = (signal.SIGTERM, signal.SIGINT)

SHUTDOWN_GRACE_S = 5.0
"""After a stop, how long delivery may still take to flush what is buffered (no retry wait is started)."""


class Interrupted(Exception):
    """A stop signal arrived while input was being read: raised there, so that a blocked read ends."""


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


def interruptible_sleep(stop: threading.Event) -> Callable[[float], bool]:
    """A `sleep` for Delivery that returns as soon as `stop` is set: False then, True after the whole wait."""

    def sleep(seconds: float) -> bool:
        return not stop.wait(seconds)

    return sleep


@contextmanager
def interrupting_reads(stop: threading.Event) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT set `stop` and raise Interrupted.

    For reads of input only: a handler that just sets `stop` lets a read blocked on a FIFO or a pipe go
    on waiting (Python retries the interrupted system call). Outside the main thread it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}

    def interrupt(*_: object) -> None:
        stop.set()
        raise Interrupted

    for signum in _SIGNALS:
        signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def grace_deadline(stop: threading.Event, clock: Callable[[], float] = time.monotonic) -> Callable[[], float]:
    """A delivery deadline: unlimited until `stop` is set, then SHUTDOWN_GRACE_S from the first look after it."""
    stopping_since: float | None = None

    def deadline() -> float:
        nonlocal stopping_since
        if not stop.is_set():
            return math.inf
        if stopping_since is None:
            stopping_since = clock()
        return SHUTDOWN_GRACE_S - (clock() - stopping_since)

    return deadline
