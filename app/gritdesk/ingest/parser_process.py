"""Parse files in a child process with a time, memory and output limit.

A user's folder can hold a file that makes a parser run for hours or allocate
gigabytes (a zip bomb, a pathological PDF, text that defeats a regex). Parsing runs in
one long-lived worker process (`python -m gritdesk.ingest.parser_process`), reused for
file after file so a small file costs a pipe round trip, not a process start:

- time: the indexer waits at most `seconds` for a file, then kills the worker (the
  next file starts a fresh one); the worker also caps its own CPU time (RLIMIT_CPU),
  so it cannot outlive a parent that was killed;
- memory: the worker's address space is capped (RLIMIT_AS). Linux enforces it; macOS
  does not, so there memory is bounded only by the output limit and the parsers' own
  checks (a DOCX's declared inflated size);
- output: the parsed text (plus a per-line allowance) may not exceed `output_bytes`.

A file over a limit raises SkipFile with the reason; the indexer records it, so an
unchanged file is not tried again.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gritdesk.ingest.byte_sizes import MIB, describe_bytes
from gritdesk.ingest.document import ParsedDocument, ParseFailure, SkipFile

_HEADER = struct.Struct("<Q")


@dataclass(frozen=True)
class ParseLimits:
    """Per-file bounds on reading and parsing (config.toml's [index] table sets them)."""

    file_bytes: int = 64 * MIB  # larger files are skipped unread
    seconds: float = 30.0  # wall-clock time to parse one file
    memory_bytes: int = 1024 * MIB  # the parser process's address space
    output_bytes: int = 128 * MIB  # parsed text, plus BLOCK_OVERHEAD per line or paragraph
    ocr: bool = True  # read scanned PDF pages with tesseract when it is installed


OCR_SHARE = 0.8  # of a file's parse time, what OCR of its scanned pages may take


class ParserProcess:
    """The worker process, started on first use and restarted after a limit killed it."""

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits
        self._proc: subprocess.Popen[bytes] | None = None
        self._interrupted = False

    def __enter__(self) -> ParserProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def parse(
        self,
        rel_path: str,
        data: bytes,
        on_slow: Callable[[], None] | None = None,
        slow_after_s: float = 1.0,
    ) -> ParsedDocument:
        """Parse `data` (the file at `rel_path`) in the worker; SkipFile past a limit.

        `on_slow` is called once if the parse is still running after `slow_after_s`,
        so the caller can record the attempt before a Ctrl-C can lose it.
        """
        return self._run("parse", rel_path, data, on_slow, slow_after_s)

    def scanned_pdf_pages(self, rel_path: str, data: bytes) -> tuple[int, list[int]]:
        """A PDF's page count and the pages a parse would read by OCR
        (parse.scanned_pdf_pages), found under the same limits as a parse."""
        return self._run("scanned_pdf_pages", rel_path, data)

    def time_ocr_page(self, rel_path: str, data: bytes, page: int) -> tuple[float, str]:
        """Seconds OCR of one page of a PDF takes here (rendering included), and its text."""
        return self._run(("ocr_page", page), rel_path, data)

    def _run(
        self,
        op: str | tuple[str, int],
        rel_path: str,
        data: bytes,
        on_slow: Callable[[], None] | None = None,
        slow_after_s: float = 1.0,
    ):
        request = pickle.dumps((op, rel_path, data, self.limits), protocol=pickle.HIGHEST_PROTOCOL)
        proc = self._send(request)
        deadline = time.monotonic() + self.limits.seconds
        slow_at = time.monotonic() + slow_after_s if on_slow else None
        assert proc.stdout is not None
        try:
            reply = _read_message(proc.stdout, deadline, slow_at, on_slow)
        except TimeoutError:
            self.close()
            raise SkipFile(
                f"parse took over {self.limits.seconds:g} s (limit: parse_timeout_s)"
            ) from None
        except EOFError:
            code = self._reap()
            raise SkipFile(f"the parser died ({_exit_description(code)})") from None
        except BaseException:  # Ctrl-C while waiting: the worker goes with us
            self.close()
            raise
        kind, value = pickle.loads(reply)
        if kind == "ok":
            return value
        if kind == "memory":
            self._reap()
            raise SkipFile(
                f"needs over {describe_bytes(self.limits.memory_bytes)} of memory to parse "
                "(limit: parse_memory_mib)"
            )
        if kind == "skip":
            raise SkipFile(value)
        raise ParseFailure(value)

    def start(self) -> None:
        """Start the worker now (it boots while the caller does other work)."""
        if self._proc is None:
            self._start()

    def interrupt(self) -> None:
        """From another thread: end the parse in progress now (it raises SkipFile, for a
        caller that is stopping to drop) and start no worker after it."""
        self._interrupted = True
        proc = self._proc
        if proc is not None:
            proc.kill()

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._reap()

    # -- the process --

    def _send(self, request: bytes) -> subprocess.Popen[bytes]:
        for attempt in range(2):  # a worker that died idle is replaced once
            proc = self._proc or self._start()
            assert proc.stdin is not None
            try:
                proc.stdin.write(_HEADER.pack(len(request)) + request)
                proc.stdin.flush()
                return proc
            except BrokenPipeError:
                self._reap()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _start(self) -> subprocess.Popen[bytes]:
        if self._interrupted:
            raise SkipFile("parsing stopped: the index run is stopping")
        package_parent = str(Path(__file__).resolve().parents[2])  # where gritdesk imports from
        path = os.environ.get("PYTHONPATH")
        env = dict(os.environ, PYTHONPATH=package_parent + (os.pathsep + path if path else ""))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "gritdesk.ingest.parser_process", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        return self._proc

    def _reap(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


def _read_message(
    stream: BinaryIO,
    deadline: float,
    slow_at: float | None,
    on_slow: Callable[[], None] | None,
) -> bytes:
    fd = stream.fileno()
    buffer = bytearray()
    needed = _HEADER.size
    header_done = False
    while True:
        if len(buffer) >= needed:
            if header_done:
                return bytes(buffer[:needed])
            needed = _HEADER.unpack(buffer[: _HEADER.size])[0]
            del buffer[: _HEADER.size]
            header_done = True
            continue
        now = time.monotonic()
        if now >= deadline:
            raise TimeoutError
        wake = deadline if slow_at is None else min(deadline, slow_at)
        ready, _, _ = select.select([fd], [], [], max(0.0, wake - now))
        if slow_at is not None and time.monotonic() >= slow_at and on_slow is not None:
            slow_at = None
            on_slow()
        if not ready:
            continue
        piece = os.read(fd, max(65536, needed - len(buffer)))
        if not piece:
            raise EOFError
        buffer += piece


def _exit_description(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


# --- the worker --------------------------------------------------------------------------


def _serve(parent_pid: int) -> None:
    import resource

    from gritdesk.ingest.formats.ocr import time_ocr_page
    from gritdesk.ingest.parse import parse_document, scanned_pdf_pages

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent(parent_pid)
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # a parser that prints cannot corrupt the replies
    limits_set = False
    while True:
        header = requests.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return  # the parent closed the pipe
        op, rel_path, data, limits = pickle.loads(requests.read(_HEADER.unpack(header)[0]))
        if not limits_set:
            _lower_limit(resource.RLIMIT_AS, limits.memory_bytes)
            limits_set = True
        used = resource.getrusage(resource.RUSAGE_SELF)
        _lower_limit(resource.RLIMIT_CPU, int(used.ru_utime + used.ru_stime + limits.seconds) + 5)
        out_of_memory = False
        try:
            if op == "scanned_pdf_pages":
                result: object = scanned_pdf_pages(data)
            elif op[0] == "ocr_page":
                result = time_ocr_page(data, op[1], limits.seconds * OCR_SHARE)
            else:
                result = parse_document(
                    rel_path,
                    data,
                    max_output_bytes=limits.output_bytes,
                    max_inflated_bytes=limits.memory_bytes // 4,
                    ocr=limits.ocr,
                    ocr_seconds=limits.seconds * OCR_SHARE,
                )
            reply: tuple[str, object] = ("ok", result)
        except MemoryError:
            out_of_memory = True
            reply = ("memory", None)
        except SkipFile as exc:
            reply = ("skip", exc.reason)
        except ParseFailure as exc:
            reply = ("error", exc.reason)
        except RecursionError:
            reply = ("skip", "nested too deeply to parse")
        except Exception as exc:  # a parser bug on one odd file
            reply = ("error", f"{type(exc).__name__}: {exc}")
        del data
        try:
            body = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            out_of_memory, body = True, pickle.dumps(("memory", None))
        replies.write(_HEADER.pack(len(body)) + body)
        replies.flush()
        if out_of_memory:
            return  # the heap may be in pieces: the next file gets a fresh process


def _lower_limit(which: int, soft: int) -> None:
    """Set a soft resource limit, within the hard one; where the OS refuses, go without."""
    import resource

    try:
        hard = resource.getrlimit(which)[1]
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(which, (soft, hard))
    except (ValueError, OSError):
        pass


def _die_with_parent(parent_pid: int) -> None:
    """On Linux, be killed when the indexer dies (RLIMIT_CPU covers the rest)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        sys.exit(0)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
