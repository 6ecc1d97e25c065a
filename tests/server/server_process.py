"""`gritdesk serve` as a real subprocess on a free loopback port, and plain HTTP calls to it
(stdlib `http.client`, so a test controls the bytes and can drop the connection)."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

CLI = [sys.executable, "-c", "from gritdesk.cli import main; main()"]
SERVING = re.compile(r"serving .* on (http://[\d.]+:\d+)/v1")


class ServerProcess:
    """Starts `gritdesk serve --port 0 ARGS`, waits for the line naming the port."""

    def __init__(self, *args: str, start_timeout: float = 120.0) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--port", "0", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        self.stderr_lines: list[str] = []
        self._ready = threading.Event()
        self.base_url = ""
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self._ready.wait(start_timeout) or not self.base_url:
            self.stop()
            raise RuntimeError("gritdesk serve did not start:\n" + "".join(self.stderr_lines))
        parts = urlsplit(self.base_url)
        self.host, self.port = parts.hostname or "", parts.port or 0

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line)
            if (match := SERVING.search(line)) is not None:
                self.base_url = match.group(1)
                self._ready.set()
        self._ready.set()  # exited

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    # --- plain HTTP ------------------------------------------------------------------------

    def connection(self, timeout: float = 120.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], object]:
        """(status, headers with lower-case names, parsed JSON body)."""
        conn = self.connection()
        try:
            data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            all_headers = {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=data, headers=all_headers)
            response = conn.getresponse()
            payload = response.read()
            headers_ = {k.lower(): v for k, v in response.getheaders()}
            return response.status, headers_, json.loads(payload or b"null")
        finally:
            conn.close()

    def metrics(self, headers: dict[str, str] | None = None) -> dict[str, object]:
        status, _, body = self.request("GET", "/debug/metrics", headers=headers)
        assert status == 200, body
        assert isinstance(body, dict)
        return body

    def wait_for(self, predicate, what: str, timeout: float = 60.0, headers=None) -> dict:
        """Poll the metrics until `predicate(metrics)` holds (bounded, never a timed assert)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            metrics = self.metrics(headers)
            if predicate(metrics):
                return metrics
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {self.metrics(headers)}")


class OpenStream:
    """A streaming chat request read event by event; `drop()` closes the socket mid-stream."""

    def __init__(self, server: ServerProcess, body: dict, headers: dict | None = None) -> None:
        self.conn = server.connection()
        self.conn.request(
            "POST",
            "/v1/chat/completions",
            body=json.dumps({**body, "stream": True}).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        self.response = self.conn.getresponse()

    def next_data(self) -> str:
        """The payload of the next `data:` line."""
        while True:
            line = self.response.fp.readline().decode()
            if not line:
                raise EOFError("stream ended")
            if line.startswith("data: "):
                return line[6:].strip()

    def drop(self) -> None:
        if self.conn.sock is not None:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.response.close()
        self.conn.close()
