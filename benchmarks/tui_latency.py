"""How responsive `gritdesk chat` is while it answers, on a real terminal (tmux).

    .venv/bin/python benchmarks/tui_latency.py [--model tiny|1b|PATH.gguf] [--keys 30]
                                               [--rounds 3] [--max-tokens 1500]

Indexes the demo corpus into a temporary database, starts the chat app (the real
`GritdeskApp`, with a large answer budget so answers stream for a while) in a detached tmux
session, then for each round:

- Enter to first token drawn: type a question, press Enter, poll the pane until the answer
  box shows text.
- keystroke to screen while streaming: while the answer streams, type characters one at a
  time into the question box; each one's latency runs from just before `tmux send-keys` to
  the first pane capture showing it. The same is measured with the app idle first, as a
  baseline: what streaming adds is the difference.
- Esc to stopped drawn: from Esc to the answer box saying "stopped".

Every figure includes the harness's own cost (one `send-keys` plus at least one
`capture-pane`, each a tmux client process): printed as "probe floor".
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from _models import resolve_model

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "app" / "gritdesk" / "demo_corpus"
QUESTION = "Hotel costs are refunded up to how many euros a night in Europe?"
WIDTH, HEIGHT = 120, 40
PROBE = "the quick brown fox jumps over the lazy dog while answers stream in"

APP = """
import sys
from gritdesk.tui import wait_passively
wait_passively()
from gritdesk.tui import app as chat
from gritdesk.rag.answer import AskOptions
from gritdesk.runtime.engine import GenerationOptions
from gritdesk.settings import load_settings
db, model, max_tokens = sys.argv[1], sys.argv[2], int(sys.argv[3])
options = load_settings(flags={"db": db, "model": model, "context": 4096})
ask = AskOptions(k=3, generation=GenerationOptions(max_tokens=max_tokens))
chat.GritdeskApp(options, ask_options=ask).run()
"""


class Pane:
    def __init__(self) -> None:
        tmux = shutil.which("tmux")
        if tmux is None:
            sys.exit("tmux is needed: install it (apt-get install tmux, brew install tmux)")
        self.base = [tmux, "-L", f"gritdesk-bench-{uuid.uuid4().hex[:8]}", "-f", "/dev/null"]

    def run(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], capture_output=True, text=True).stdout

    def start(self, command: str) -> None:
        self.run(
            "new-session", "-d", "-s", "b", "-x", str(WIDTH), "-y", str(HEIGHT), command
        )  # fmt: skip
        self.run("set-option", "-t", "b", "escape-time", "0")

    def lines(self) -> list[str]:
        return self.run("capture-pane", "-p", "-t", "b").splitlines()

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", "b", *(["-l"] if literal else []), *keys)

    def until(self, check: Callable[[list[str]], bool], timeout: float = 120.0) -> float:
        """Poll until `check(lines)`; returns when it first held (perf_counter seconds)."""
        deadline = time.perf_counter() + timeout
        while True:
            lines = self.lines()
            now = time.perf_counter()
            if check(lines):
                return now
            if now > deadline:
                raise TimeoutError("\n".join(lines))

    def kill(self) -> None:
        self.run("kill-server")


def input_row(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines) if "Ask about your files" in line)


def answer_text(lines: list[str]) -> str:
    """Text in the last answer box (read upwards from its bottom border)."""
    bottoms = [i for i, line in enumerate(lines) if line.startswith("│ ╰")]
    if not bottoms:
        return ""
    body = []
    for line in reversed(lines[: bottoms[-1]]):
        if not line.startswith("│ │"):
            break
        body.append(line[3:].split("│")[0].strip())
    return " ".join(reversed(body)).strip()


def answering(lines: list[str]) -> bool:
    return any("answering" in line for line in lines[-3:])


def keystrokes(pane: Pane, row: int, n: int, need_streaming: bool) -> list[float]:
    """Type PROBE[:n] key by key; the latency of each key until it shows in the input row."""
    latencies = []
    for i in range(n):
        if need_streaming and not answering(pane.lines()):
            break
        typed = PROBE[: i + 1].rstrip()
        t0 = time.perf_counter()
        pane.keys(PROBE[i], literal=True)
        seen = pane.until(lambda lines, typed=typed: typed in lines[row], timeout=30)
        latencies.append(seen - t0)
    pane.keys("C-u")  # clear the question box (TextArea: delete to line start)
    pane.until(lambda lines: PROBE[:2] not in lines[row])
    return latencies


def describe(name: str, seconds: list[float]) -> str:
    if not seconds:
        return f"{name:<40} (no samples)"
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return (
        f"{name:<40} n={len(ms):3}  p50 {statistics.median(ms):7.1f} ms  "
        f"p95 {p95:7.1f} ms  max {ms[-1]:7.1f} ms"
    )


def build_index(db: Path, model: Path) -> None:
    cmd = [sys.executable, "-c", "from gritdesk.cli import main; main()", "index", str(CORPUS)]
    subprocess.run([*cmd, "--db", str(db), "--model", str(model)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="tiny, 1b or a .gguf path")
    parser.add_argument("--keys", type=int, default=30, help="keystrokes per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=1500)
    args = parser.parse_args()

    model = resolve_model(args.model)
    work = Path(tempfile.mkdtemp(prefix="gritdesk-tui-bench-"))
    env_data = work / "data"
    os.environ["GRITDESK_DATA_DIR"] = str(env_data)  # no user config, no user index
    os.environ["GRITDESK_CACHE_DIR"] = str(work / "cache")
    db = work / "index.db"
    print(f"model {model.name}; indexing the demo corpus into {db} ...", flush=True)
    build_index(db, model)

    pane = Pane()
    app = f"{shlex.quote(sys.executable)} -c {shlex.quote(APP)} {db} {model} {args.max_tokens}"
    pane.start(f"TERM=xterm-256color {app}")
    floor: list[float] = []
    enter: list[float] = []
    idle: list[float] = []
    streaming: list[float] = []
    stop: list[float] = []
    try:
        t0 = time.perf_counter()
        pane.until(lambda lines: any(" ready │" in line for line in lines[-3:]), timeout=600)
        print(f"model loaded in {time.perf_counter() - t0:.1f} s", flush=True)
        row = input_row(pane.lines())
        for _ in range(20):  # the harness alone: one send-keys + one capture-pane
            t0 = time.perf_counter()
            pane.keys("")
            pane.lines()
            floor.append(time.perf_counter() - t0)

        for round_ in range(args.rounds):
            idle += keystrokes(pane, row, args.keys, need_streaming=False)
            pane.keys(QUESTION, literal=True)
            pane.until(lambda lines: QUESTION[:40] in lines[row])
            t0 = time.perf_counter()
            pane.keys("Enter")
            enter.append(pane.until(lambda lines: bool(answer_text(lines))) - t0)
            streaming += keystrokes(pane, row, args.keys, need_streaming=True)
            if not answering(pane.lines()):
                print(f"round {round_ + 1}: the answer ended before the keystrokes did")
                continue
            t0 = time.perf_counter()
            pane.keys("Escape")
            stop.append(pane.until(lambda lines: any("stopped" in x for x in lines)) - t0)
            pane.keys("C-n")
            pane.until(lambda lines: not any("stopped" in x for x in lines))
        pane.keys("C-q")
    finally:
        pane.kill()
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"gritdesk chat latency, {model.name}, {os.cpu_count()} CPUs, {WIDTH}x{HEIGHT} tmux")
    print(describe("probe floor (send-keys + capture-pane)", floor))
    print(describe("keystroke to screen, idle", idle))
    print(describe("keystroke to screen, while streaming", streaming))
    print(describe("Enter to first token drawn", enter))
    print(describe("Esc to 'stopped' drawn", stop))


if __name__ == "__main__":
    main()
