"""Whether a call releases the GIL, without asserting any timing."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable


def runs_other_threads(call: Callable[[], object]) -> bool:
    """True if the main thread ran while ``call`` ran in a worker.

    With a huge switch interval nothing forces the worker to hand the GIL over between its
    two reads of ``ticks`` (no blocking call in between), so the main thread can tick in
    between only if ``call`` released the GIL. The main thread sleeps between ticks, which
    frees the GIL for the worker to start and finish. A call that holds the GIL gives False
    every time; one that releases it for a few milliseconds gives True (the main thread
    needs only to wake from a 1 ms sleep once).
    """
    ticks = 0
    seen: list[int] = []

    def worker() -> None:
        seen.append(ticks)
        call()
        seen.append(ticks)

    old = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        thread = threading.Thread(target=worker)
        thread.start()
        while thread.is_alive():
            ticks += 1
            time.sleep(0.001)
    finally:
        sys.setswitchinterval(old)
    return len(seen) == 2 and seen[1] > seen[0]
