"""Bad requests get a clear 4xx OpenAI error object, and the server keeps serving."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.conftest import gritdesk
from server.server_process import ServerProcess

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
LIMITS = ["--max-body-bytes", "65536", "--max-input-tokens", "48", "--max-tokens", "64"]


@pytest.fixture(scope="module")
def keyed(indexed_db: Path) -> Iterator[ServerProcess]:
    """A server with an API key, a 256-token context and small limits."""
    process = ServerProcess("--db", str(indexed_db), "--api-key", KEY, "--ctx", "256", *LIMITS)
    yield process
    process.stop()


def chat(model: str, content: str = "hello", **extra: object) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def assert_error(response: tuple[int, dict, object], status: int, *words: str) -> dict:
    got, _, body = response
    assert got == status, body
    assert isinstance(body, dict) and set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    for word in words:
        assert word in error["message"], error
    return error


def test_missing_or_wrong_api_key_is_401(keyed: ServerProcess, model_id: str) -> None:
    body = {"model": model_id, "input": "hi"}
    error = assert_error(keyed.request("POST", "/v1/embeddings", body), 401, "Bearer")
    assert error["code"] == "missing_api_key"
    wrong = {"Authorization": "Bearer nope"}
    error = assert_error(keyed.request("POST", "/v1/embeddings", body, headers=wrong), 401)
    assert error["code"] == "invalid_api_key"
    assert_error(keyed.request("GET", "/v1/models", headers={"Authorization": KEY}), 401)
    assert keyed.request("GET", "/v1/models", headers=AUTH)[0] == 200
    assert keyed.request("GET", "/health")[0] == 200  # the one open path


BAD_BODIES = {
    "malformed JSON": (b'{"model": "x", "input": ', 400, "not valid JSON"),
    "not an object": (b"[1, 2]", 400, "JSON object"),
    "input a number": (b'{"model": "M", "input": 5}', 400, "input"),
    "input_type unknown": (
        b'{"model": "M", "input": "a", "input_type": "code"}',
        400,
        "input_type",
    ),
    "encoding unknown": (
        b'{"model": "M", "input": "a", "encoding_format": "int8"}',
        400,
        "encoding",
    ),
    "empty list": (b'{"model": "M", "input": []}', 400, "empty"),
    "empty text": (b'{"model": "M", "input": ["ok", "  "]}', 400, "text 2 is empty"),
    "wrong dimensions": (b'{"model": "M", "input": "a", "dimensions": 3}', 400, "dimensions"),
    "unknown model": (b'{"model": "gpt-4o", "input": "a"}', 404, "gpt-4o"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES), ids=list(BAD_BODIES))
def test_bad_embedding_requests(keyed: ServerProcess, model_id: str, case: str) -> None:
    raw, status, word = BAD_BODIES[case]
    raw = raw.replace(b'"M"', f'"{model_id}"'.encode())
    assert_error(keyed.request("POST", "/v1/embeddings", raw=raw, headers=AUTH), status, word)
    assert keyed.alive


def test_bad_chat_requests(keyed: ServerProcess, model_id: str) -> None:
    cases = [
        (chat(model_id, max_tokens="ten"), "max_tokens"),
        (chat(model_id, max_tokens=0), "max_tokens"),
        (chat(model_id, temperature=-1), "temperature"),
        (chat(model_id, stop=5), "stop"),
        (chat(model_id, n=2), "n"),
        ({"model": model_id, "messages": "hello"}, "messages"),
        ({"model": model_id, "messages": []}, "messages"),
        ({"model": model_id, "messages": [{"role": "wizard", "content": "x"}]}, "role"),
        ({"model": model_id, "messages": [{"role": "user", "content": 3}]}, "content"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        (chat(model_id, gritdesk={"root": "/tmp"}), "gritdesk-rag"),
        (chat("gritdesk-rag", gritdesk={"k": "four"}), "gritdesk.k"),
    ]
    for body, param in cases:
        error = assert_error(
            keyed.request("POST", "/v1/chat/completions", body, headers=AUTH), 400, param
        )
        assert error["type"] == "invalid_request_error"
    assert keyed.alive


def test_limits_are_clear_errors(keyed: ServerProcess, model_id: str) -> None:
    huge = b'{"model": "%s", "input": "%s"}' % (model_id.encode(), b"a " * 100_000)
    error = assert_error(
        keyed.request("POST", "/v1/embeddings", raw=huge, headers=AUTH), 413, "65536 bytes"
    )
    assert error["code"] == "request_too_large"
    # no Content-Length (chunked): the body is counted as it arrives
    conn = keyed.connection()
    pieces = iter([b'{"model": "x", "input": "', *[b"a " * 8192] * 8, b'"}'])
    conn.request("POST", "/v1/embeddings", body=pieces, headers=AUTH, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"]["code"] == "request_too_large"
    conn.close()
    long_text = " ".join(f"word{i}" for i in range(60))  # over --max-input-tokens 48
    error = assert_error(
        keyed.request(
            "POST", "/v1/embeddings", {"model": model_id, "input": ["ok", long_text]}, headers=AUTH
        ),
        400,
        "text 2 is",
        "the limit is 48",
    )
    assert error["code"] == "context_length_exceeded"
    long_prompt = " ".join(f"word{i}" for i in range(60))  # over --max-input-tokens 48
    for stream in (False, True):
        error = assert_error(
            keyed.request(
                "POST",
                "/v1/chat/completions",
                chat(model_id, long_prompt, stream=stream),
                headers=AUTH,
            ),
            400,
            "the limit is 48",
        )
        assert error["code"] == "context_length_exceeded"
    assert_error(
        keyed.request("POST", "/v1/chat/completions", chat(model_id, max_tokens=65), headers=AUTH),
        400,
        "limit of 64",
    )


def test_a_text_longer_than_one_decode_is_refused(server: ServerProcess, model_id: str) -> None:
    """No limit flag: the engine's own bound (the 4096-token context) answers, no crash."""
    long_text = " ".join(f"word{i}" for i in range(3000))
    error = assert_error(
        server.request("POST", "/v1/embeddings", {"model": model_id, "input": long_text}),
        400,
        "text 1 is",
    )
    assert error["code"] == "context_length_exceeded"
    limit = int(error["message"].rsplit("the limit is ", 1)[1])
    assert 4000 < limit < 4096  # one decode holds 4096 tokens, the format's among them
    assert server.request("POST", "/v1/embeddings", {"model": model_id, "input": "ok"})[0] == 200


def test_server_keeps_serving_after_bad_input(keyed: ServerProcess, model_id: str) -> None:
    for raw in (b"\xff\xfe", b"{", b"null", b'{"model": 1}'):
        assert keyed.request("POST", "/v1/chat/completions", raw=raw, headers=AUTH)[0] == 400
    assert keyed.request("GET", "/v1/nothing", headers=AUTH)[0] == 404
    assert keyed.request("GET", "/v1/embeddings", headers=AUTH)[0] == 405
    status, _, body = keyed.request(
        "POST", "/v1/embeddings", {"model": model_id, "input": ["fine", "also fine"]}, headers=AUTH
    )
    assert status == 200 and len(body["data"]) == 2  # type: ignore[index]
    status, _, body = keyed.request(
        "POST", "/v1/chat/completions", chat(model_id, max_tokens=3), headers=AUTH
    )
    assert status == 200 and body["usage"]["completion_tokens"] == 3  # type: ignore[index]
    assert keyed.alive


def test_non_loopback_bind_without_a_key_is_refused(tiny_model_path: Path) -> None:
    proc = gritdesk("serve", "--host", "0.0.0.0", "--port", "0", "--model", str(tiny_model_path))
    assert proc.returncode == 2
    assert "refusing to listen on 0.0.0.0 without an API key" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_busy_port_is_a_clear_error(server: ServerProcess, tiny_model_path: Path) -> None:
    try:
        proc = gritdesk("serve", "--port", str(server.port), "--model", str(tiny_model_path))
    except subprocess.TimeoutExpired:  # pragma: no cover - it would be serving twice
        pytest.fail("a second server started on a busy port")
    assert proc.returncode == 2 and f"cannot listen on 127.0.0.1:{server.port}" in proc.stderr


def test_only_loopback_addresses_count_as_loopback() -> None:
    from gritdesk.server.settings import ServeSettings, UnsafeBindError, check_bind, is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.20", "example.invalid"))
    with pytest.raises(UnsafeBindError, match="without an API key"):
        check_bind(ServeSettings(host="::"))
    assert check_bind(ServeSettings(host="0.0.0.0", api_key="k")).api_key == "k"
