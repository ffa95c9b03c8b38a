"""Helpers that a run's long-lived children die with it, even when tx2setup itself is
killed with SIGKILL and none of its cleanup runs (issue 13).

A child started in a session of its own (so that the terminal's Ctrl-C reaches tx2setup
first and tx2setup stops it in order) would otherwise outlive a `kill -9` of tx2setup,
reparented to init and still listening on its port.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

# prctl(2) option: "Set the parent-death signal of the calling process to arg2 ... the
# signal that the calling process will get when its parent dies." Value from
# include/uapi/linux/prctl.h (torvalds/linux): #define PR_SET_PDEATHSIG 1
PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None]:
    """A `preexec_fn` for subprocess.Popen: the child gets `sig` when the thread that started
    it ends (prctl(2): the signal follows the parent *thread*, so start long-lived children
    from the thread that stops them). If the parent is already gone by the time the child
    runs this, the child exits at once (prctl(2) advises checking getppid() for that race)."""
    parent = os.getpid()

    def setup() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return  # not Linux-like: the child simply outlives a killed parent, as before
        if os.getppid() != parent:
            os._exit(1)

    return setup
