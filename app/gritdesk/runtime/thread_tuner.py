"""How many threads a batch pass (embedding, prefill) runs on, chosen by measuring.

On a quiet machine every core helps; on cores other programs are using, llama.cpp's
threads spin while their partner waits for a core, and one thread fewer runs 2-10x faster
by wall time (README, "Indexing speed"). Which case holds changes while an index runs, so
the engine measures: all CPUs run a few batch calls, then each other candidate runs one;
a candidate whose one call is slower than all CPUs' median is out (the cases to tell apart
differ by 1.5x or more, more than calls of different lengths do), one that is faster runs
a few more before it can be chosen. The fastest by tokens per wall second is kept for a
while, then they are tried again. On a quiet machine a recheck costs one slower call in
every RECHECK_CALLS (three cost ~4% of a 40-call SmolLM2 index run).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence

TRIAL_CALLS = 3  # calls per candidate per round of trials
RECHECK_CALLS = 400  # calls on the chosen count before trying the others again
MIN_TOKENS = 32  # a call this small says more about overhead than about threads


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_candidates(cpus: int) -> list[int]:
    """Every CPU, and half of them (a machine whose other programs hold half its cores)."""
    return list(dict.fromkeys([cpus, max(1, cpus // 2)]))


class ThreadTuner:
    """Which thread count the next batch call should use, from the speeds of earlier ones."""

    def __init__(self, candidates: Sequence[int]) -> None:
        if not candidates:
            raise ValueError("no thread counts to choose from")
        self.candidates = list(dict.fromkeys(candidates))
        self.chosen = self.candidates[0]
        self._rates: dict[int, list[float]] = {c: [] for c in self.candidates}
        self._since_choice = 0
        self._trying = len(self.candidates) > 1

    def _calls_needed(self, count: int) -> int:
        """Trial calls `count` needs: TRIAL_CALLS for all CPUs and for a challenger whose
        first call beat them; one for a challenger whose first call was slower."""
        rates = self._rates[count]
        if count == self.candidates[0]:
            return TRIAL_CALLS
        if not rates:
            return 1
        leader = statistics.median(self._rates[self.candidates[0]])
        return 1 if rates[0] < leader else TRIAL_CALLS

    def threads(self) -> int:
        """The count for the next call: a candidate on trial, else the chosen one."""
        if self._trying:
            for count in self.candidates:
                if len(self._rates[count]) < self._calls_needed(count):
                    return count
        return self.chosen

    def record(self, threads: int, tokens: int, seconds: float) -> None:
        """A finished call: `tokens` in `seconds` of wall time on `threads` threads."""
        if tokens < MIN_TOKENS or seconds <= 0 or threads not in self._rates:
            return
        if self._trying:
            self._rates[threads].append(tokens / seconds)
            if all(len(self._rates[c]) >= self._calls_needed(c) for c in self.candidates):
                self.chosen = max(self.candidates, key=lambda c: statistics.median(self._rates[c]))
                self._trying, self._since_choice = False, 0
        else:
            self._since_choice += 1
            if self._since_choice >= RECHECK_CALLS and len(self.candidates) > 1:
                self._rates = {c: [] for c in self.candidates}
                self._trying = True
