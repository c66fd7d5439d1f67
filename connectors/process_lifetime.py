"""Child processes that must not outlive the Python process that started them."""

from __future__ import annotations

import ctypes
import os
import signal
import sys


def die_with_parent(signum: int = signal.SIGTERM, parent_pid: int | None = None) -> None:
    """Linux: have the kernel send ``signum`` to this process when its parent dies, even by
    ``kill -9`` (prctl PR_SET_PDEATHSIG); elsewhere nothing.

    Called in the child. The signal fires when the *thread* that started the child exits,
    so start children from a thread that lives as long as they should (the main thread).
    With ``parent_pid``, a parent already gone before this call ends the child at once.
    """
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signum)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)
