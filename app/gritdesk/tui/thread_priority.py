"""Engine work runs at a lower CPU priority than the UI thread.

llama.cpp keeps every core busy while it decodes; at equal priority a keystroke waits for
the scheduler behind those threads (measured on 2 cores with a 1B model: 140 ms from key
to screen while an answer streams, against 16 ms idle). Lowering the priority of the
worker thread before its first engine call also lowers the OpenMP threads it starts,
which inherit it. Linux only (per-thread nice values); elsewhere this does nothing.
"""

from __future__ import annotations

import os
import sys
import threading

ENGINE_NICENESS = 10


def lower_this_thread(niceness: int = ENGINE_NICENESS) -> None:
    """Make the calling thread (and threads it starts from now on) yield to the UI."""
    if sys.platform != "linux":
        return
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
            os.setpriority(os.PRIO_PROCESS, tid, niceness)
    except OSError:
        pass  # not allowed here: responsiveness suffers, nothing breaks
