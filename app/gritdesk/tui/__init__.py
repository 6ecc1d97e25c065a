"""`gritdesk chat`, the terminal chat over the index (Textual)."""

import os


def wait_passively() -> None:
    """Make llama.cpp's OpenMP threads sleep, not spin, while they wait.

    Spinning threads next to a UI thread on a machine with few cores starve both: answers
    streamed about 15 times slower in the chat than in `gritdesk ask` on 2 cores. libgomp
    reads the policy when it loads (with llama.cpp), so `gritdesk chat` calls this before
    anything imports the engine; a value the user set is kept.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
