"""How the page runs a model request: in a worker thread of its own, until its deadline or its Cancel button.

Gradio cannot stop a thread: cancelling an event (the Cancel button, ``cancels=[event]``) only abandons the
coroutine awaiting it. So each request carries a :class:`Deadline` that the work checks between results (the design
API streams them batch by batch) and stops at, keeping what it has; :class:`Runner` runs the work in its own thread
pool and marks the deadline cancelled when Gradio cancels the event, so an abandoned request stops at its next
check instead of running on beside the next one.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["CANCELLED", "Deadline", "Interrupted", "Runner", "collect", "stoppable"]

R = TypeVar("R")

CANCELLED = "cancelled"
""":meth:`Deadline.reason` of a request its user cancelled."""


class Deadline:
    """When a request must stop: ``seconds`` after it started running (None: never), or once :meth:`cancel` is called.

    ``clock``: seconds, monotonic (a test can pass its own)."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = None if seconds is None else clock() + seconds
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def reason(self) -> str | None:
        """Why the request must stop now (:data:`CANCELLED`, or the deadline that passed), None while it may go on."""
        if self._cancelled.is_set():
            return CANCELLED
        if self._end is not None and self._clock() >= self._end:
            return f"the {self.seconds:g} s deadline of a request on this server passed"
        return None


def collect(results: Iterable[R], deadline: Deadline | None) -> tuple[list[R], str | None]:
    """The results of a streaming design call, until they end or ``deadline`` says stop: (results, why it stopped
    early or None). The iterator is closed either way, so a generator stops sampling where it is."""
    kept: list[R] = []
    iterator = iter(results)
    try:
        for result in iterator:
            kept.append(result)
            if deadline is not None and (why := deadline.reason()):
                return kept, why
    finally:
        if (close := getattr(iterator, "close", None)) is not None:
            close()
    return kept, None


class Interrupted(KeyboardInterrupt):
    """Raised by a :func:`stoppable` objective: ``Designer.optimize`` takes it as Ctrl-C and returns what it found."""


def stoppable(objective: Callable[[list[str]], list[float]], deadline: Deadline) -> Callable[[list[str]], list[float]]:
    """``objective``, checking ``deadline`` before each call (once per optimisation iteration) and raising
    :class:`Interrupted` when the request must stop."""

    @functools.wraps(objective)
    def checked(smiles: list[str]) -> list[float]:
        if why := deadline.reason():
            raise Interrupted(why)
        return objective(smiles)

    return checked


class Runner:
    """A pool of ``workers`` threads for page requests. The queue in front of it (Gradio's, with its concurrency
    limit) decides how many run at once; the pool has room for as many again, finishing abandoned ones."""

    def __init__(self, workers: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="molgen-request")

    async def run(self, fn: Callable[..., R], deadline: Deadline, /, *args, **kwargs) -> R:
        """``fn(*args, **kwargs)`` in a worker thread (with this coroutine's context: Gradio's progress and
        messages); if the awaiting coroutine is cancelled, ``deadline`` is cancelled so that ``fn`` stops."""
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, call)
        except asyncio.CancelledError:
            deadline.cancel()
            raise
