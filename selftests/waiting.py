"""Waiting for a condition with a deadline (never a fixed sleep): the one polling helper of the tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str,
               still_alive: Callable[[], str | None] = lambda: None, every: float = 0.02) -> None:
    """Return as soon as ``condition()`` holds; fail after ``timeout`` seconds, naming ``what`` was
    awaited, or at once when ``still_alive()`` says why waiting is pointless (e.g. a process ended)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: its wait() is the poll interval
    while not condition():
        reason = still_alive()
        if reason:
            raise AssertionError(f"gave up waiting for {what}: {reason}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g}s")
        pause.wait(every)
