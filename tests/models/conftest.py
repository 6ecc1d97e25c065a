"""A real HTTP server on 127.0.0.1 standing in for the Hugging Face hub, and isolated dirs.

It serves the hub's download layout, `/{repo}/resolve/{revision}/{filename}`, with the
headers huggingface_hub's `hf_hub_download` relies on (read from its file_download.py):
HEAD answers `X-Repo-Commit`, `ETag` and `Content-Length`; GET honours `Range: bytes=N-`
with `206` and `Content-Range`. It can drop the connection part-way through the first
GET of a file, and it records every request so tests can see what the client sent.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-$")


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FakeHub:
    url: str = ""
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    drop_first_get_after: int | None = None  # bytes sent before the connection is cut
    _dropped: set[tuple[str, str]] = field(default_factory=set)

    def serve(self, repo: str, filename: str, data: bytes) -> None:
        self.files[(repo, filename)] = data

    def gets(self) -> list[Seen]:
        return [r for r in self.requests if r.method == "GET"]


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:
            pass

        def _lookup(self) -> tuple[tuple[str, str], bytes, str] | None:
            hub.requests.append(Seen(self.command, self.path, dict(self.headers.items())))
            match = _RESOLVE.match(self.path)
            key = (match["repo"], match["file"]) if match else None
            if key is None or key not in hub.files:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            rev = match["rev"]
            commit = rev if re.fullmatch(r"[0-9a-f]{40}", rev) else COMMIT
            return key, hub.files[key], commit

        def _common(self, data: bytes, commit: str) -> None:
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("X-Repo-Commit", commit)
            self.send_header("Accept-Ranges", "bytes")

        def do_HEAD(self) -> None:
            found = self._lookup()
            if found is None:
                return
            _key, data, commit = found
            self.send_response(200)
            self._common(data, commit)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()

        def do_GET(self) -> None:
            found = self._lookup()
            if found is None:
                return
            key, data, commit = found
            start = 0
            wanted = _RANGE.match(self.headers.get("Range", ""))
            if wanted:
                start = int(wanted.group(1))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self._common(data, commit)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            body = data[start:]
            cut = hub.drop_first_get_after
            if cut is not None and key not in hub._dropped and cut < len(body):
                hub._dropped.add(key)
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True  # the client sees a body shorter than promised
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    hub = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-hub", daemon=True)
    thread.start()
    yield hub
    server.shutdown()
    server.server_close()


@pytest.fixture
def hub_env(fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HF_ENDPOINT at the fake hub, a fresh HF_HOME; returns the HF_HOME folder."""
    hf_home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    return hf_home


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh gritdesk data dir per test (models.json lives there)."""
    folder = tmp_path / "gritdesk-data"
    monkeypatch.setenv("GRITDESK_DATA_DIR", str(folder))
    return folder
