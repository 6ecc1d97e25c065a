"""One engine, many clients: mixed requests all answered right, none lost, no deadlock;
embedding requests queued together share one batch; a dropped stream stops the engine
within a token; a full queue answers 503 with Retry-After."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import openai
import pytest

from gritdesk.runtime.engine import GenerationOptions
from server.server_process import OpenStream, ServerProcess

LONG = {"max_tokens": 4000}  # the tiny model does not stop by itself before the context ends
LONG_PROMPT = "Tell me a long story."


def texts_for(client_no: int) -> list[str]:
    return [
        f"client {client_no} text {i}: invoices, rivers and {i * client_no} chairs"
        for i in range(3)
    ]


def prompt_for(client_no: int) -> str:
    return f"Question {client_no}: what is in my notes about item {client_no}?"


def test_eight_clients_mixing_embeddings_and_chat(
    server: ServerProcess, model_id: str, tiny_engine
) -> None:
    expected_vectors = {n: tiny_engine.embed(texts_for(n)) for n in range(0, 8, 2)}
    expected_text = {
        n: "".join(tiny_engine.generate(prompt_for(n), GenerationOptions(max_tokens=16)))
        for n in range(1, 8, 2)
    }
    before = server.metrics()

    def one_client(n: int) -> object:
        api = openai.OpenAI(
            base_url=server.base_url + "/v1", api_key="x", max_retries=0, timeout=120
        )
        if n % 2 == 0:
            response = api.embeddings.create(model=model_id, input=texts_for(n))
            return np.array([d.embedding for d in response.data], dtype=np.float32)
        messages = [{"role": "user", "content": prompt_for(n)}]
        if n % 4 == 1:
            reply = api.chat.completions.create(model=model_id, messages=messages, max_tokens=16)  # type: ignore[arg-type]
            return reply.choices[0].message.content
        stream = api.chat.completions.create(
            model=model_id,
            messages=messages,
            max_tokens=16,
            stream=True,  # type: ignore[arg-type]
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    with ThreadPoolExecutor(8) as pool:
        futures = {n: pool.submit(one_client, n) for n in range(8)}
        results = {n: f.result(timeout=300) for n, f in futures.items()}  # bounded: no deadlock
    for n, result in results.items():
        if n % 2 == 0:
            np.testing.assert_allclose(result, expected_vectors[n], atol=1e-4)  # type: ignore[arg-type]
        else:
            assert result == expected_text[n], n
    # the worker counts a batch right after its last reply went out: wait for that count
    deadline = time.monotonic() + 30
    after = server.metrics()
    while after["jobs_done"] - before["jobs_done"] < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
        after = server.metrics()
    assert after["jobs_done"] - before["jobs_done"] == 8  # none lost, none run twice
    assert after["embed_requests"] - before["embed_requests"] == 4
    assert after["jobs_failed"] == before["jobs_failed"]


@pytest.fixture
def busy_engine(server: ServerProcess, model_id: str) -> Iterator[OpenStream]:
    """A long streaming generation holding the engine, until the test drops it."""
    stream = OpenStream(
        server, {"model": model_id, "messages": [{"role": "user", "content": LONG_PROMPT}], **LONG}
    )
    assert json.loads(stream.next_data())["choices"][0]["delta"]["role"] == "assistant"
    assert json.loads(stream.next_data())["choices"][0]["delta"]["content"]  # generating now
    yield stream
    stream.drop()


def test_a_dropped_stream_stops_the_engine_within_a_token(
    server: ServerProcess, busy_engine: OpenStream, model_id: str
) -> None:
    before = server.metrics()
    assert before["busy"] is True
    busy_engine.drop()
    after = server.wait_for(
        lambda m: m["cancelled_generations"] > before["cancelled_generations"] and not m["busy"],
        "the cancelled generation to end",
    )
    assert after["tokens_after_cancel_last"] is not None
    assert after["tokens_after_cancel_last"] <= 1
    generated = after["generated_tokens"] - before["generated_tokens"]
    assert generated < LONG["max_tokens"] - 100  # stopped early, not run to max_tokens
    status, _, body = server.request(
        "POST", "/v1/embeddings", {"model": model_id, "input": "the engine is free again"}
    )
    assert status == 200, body


def test_embedding_requests_queued_together_share_one_batch(
    server: ServerProcess, busy_engine: OpenStream, model_id: str, tiny_engine
) -> None:
    before = server.metrics()
    texts = [[f"request {n} text {i}" for i in range(2)] for n in range(4)]
    texts[2][1] = " ".join(f"word{i}" for i in range(3000))  # over the context: refused alone

    def embed(n: int) -> tuple[int, object]:
        status, _, body = server.request(
            "POST", "/v1/embeddings", {"model": model_id, "input": texts[n]}
        )
        return status, body

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(embed, n) for n in range(4)]
        server.wait_for(lambda m: m["queue_depth"] == 4, "4 queued embedding requests")
        busy_engine.drop()  # the engine is free: it takes all four at once
        results = [f.result(timeout=120) for f in futures]
    after = server.metrics()
    assert after["embed_requests"] - before["embed_requests"] == 3
    assert after["embed_batches"] - before["embed_batches"] == 1
    for n, (status, body) in enumerate(results):
        if n == 2:
            assert status == 400 and "text 2 is" in body["error"]["message"]  # type: ignore[index]
            continue
        assert status == 200, body
        got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)  # type: ignore[index]
        np.testing.assert_allclose(got, tiny_engine.embed(texts[n]), atol=1e-4)


def test_a_full_queue_answers_503_with_retry_after(indexed_db: Path, model_id: str) -> None:
    small = ServerProcess("--db", str(indexed_db), "--queue-size", "1")
    try:
        running = OpenStream(
            small,
            {"model": model_id, "messages": [{"role": "user", "content": LONG_PROMPT}], **LONG},
        )
        running.next_data()
        waiting = ThreadPoolExecutor(1).submit(
            small.request, "POST", "/v1/embeddings", {"model": model_id, "input": "queued"}
        )
        small.wait_for(lambda m: m["queue_depth"] == 1, "one queued request")
        status, headers, body = small.request(
            "POST", "/v1/embeddings", {"model": model_id, "input": "one too many"}
        )
        assert status == 503
        assert headers["retry-after"] == "1"
        assert body["error"]["code"] == "queue_full"  # type: ignore[index]
        running.drop()
        assert waiting.result(timeout=120)[0] == 200  # the queued one was not lost
        assert small.alive
    finally:
        small.stop()
