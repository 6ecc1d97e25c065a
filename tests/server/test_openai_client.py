"""The official `openai` client against `gritdesk serve`: the same vectors as `gritdesk
embed`, the same text as `gritdesk generate`, the same sources as `gritdesk ask --json`."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import openai
import pytest

from server.conftest import ANSWER_FILE, QUESTION, gritdesk
from server.server_process import ServerProcess

TEXTS = ["The hotel limit is 140 euros a night.", "Release notes for Aurora", "ünïcødé ✓"]
INSTRUCTION = "Given a question, retrieve passages that answer the question"
PROMPT = "Write a short poem about rivers."


def client(server: ServerProcess, **kw: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, **kw)  # type: ignore[arg-type]


def cli_embeddings(model: Path, texts: list[str], *flags: str) -> np.ndarray:
    proc = gritdesk("embed", "--model", str(model), *flags, *texts)
    assert proc.returncode == 0, proc.stderr
    return np.array(json.loads(proc.stdout)["embeddings"], dtype=np.float32)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_models_lists_the_model_and_the_rag_model(server: ServerProcess, model_id: str) -> None:
    ids = [m.id for m in client(server).models.list()]
    assert ids == [model_id, "gritdesk-rag"]


def vector(embedding: list[float] | str) -> np.ndarray:
    if isinstance(embedding, str):  # asked for base64 explicitly: the client leaves it as sent
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return np.array(embedding, dtype=np.float32)


# the client asks for base64 itself when no format is given, and decodes it
@pytest.mark.parametrize("encoding_format", ["float", "base64", None])
def test_document_embeddings_equal_gritdesk_embed(
    server: ServerProcess, model_id: str, tiny_model_path: Path, tiny_engine, encoding_format
) -> None:
    expected = cli_embeddings(tiny_model_path, TEXTS)
    format_arg = {"encoding_format": encoding_format} if encoding_format else {}
    response = client(server).embeddings.create(model=model_id, input=TEXTS, **format_arg)
    got = np.array([vector(d.embedding) for d in response.data])
    assert [d.index for d in response.data] == [0, 1, 2]
    np.testing.assert_allclose(cosines(got, expected), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    tokens = sum(tiny_engine.count_tokens(t) for t in TEXTS)
    assert response.usage.prompt_tokens == response.usage.total_tokens == tokens


def test_query_embeddings_equal_gritdesk_embed_with_an_instruction(
    server: ServerProcess, model_id: str, tiny_model_path: Path
) -> None:
    expected = cli_embeddings(tiny_model_path, TEXTS[:2], "--instruction", INSTRUCTION)
    documents = cli_embeddings(tiny_model_path, TEXTS[:2])
    api = client(server)
    # the recipe's retrieval instruction is the default for a query
    for extra in ({"input_type": "query"}, {"input_type": "query", "instruction": INSTRUCTION}):
        response = api.embeddings.create(model=model_id, input=TEXTS[:2], extra_body=extra)
        got = np.array([d.embedding for d in response.data], dtype=np.float32)
        np.testing.assert_allclose(cosines(got, expected), 1.0, atol=1e-5)
        assert cosines(got, documents).max() < 0.9999  # a query is not embedded as a document
    single = api.embeddings.create(model=model_id, input=TEXTS[0])  # a string, not a list
    np.testing.assert_allclose(single.data[0].embedding, documents[0], atol=1e-4)


def cli_generate(model: Path, prompt: str, *flags: str) -> str:
    proc = gritdesk("generate", "--model", str(model), *flags, prompt)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("\n")
    return proc.stdout[:-1]


@pytest.mark.parametrize(
    ("flags", "params"),
    [
        (["--max-tokens", "24"], {"max_tokens": 24}),
        (
            ["--max-tokens", "20", "--temperature", "0.9", "--top-p", "0.8", "--seed", "7"],
            {"max_tokens": 20, "temperature": 0.9, "top_p": 0.8, "seed": 7},
        ),
    ],
    ids=["greedy", "sampled-with-seed"],
)
def test_chat_equals_gritdesk_generate_streaming_and_not(
    server: ServerProcess, model_id: str, tiny_model_path: Path, flags: list[str], params: dict
) -> None:
    expected = cli_generate(tiny_model_path, PROMPT, *flags)
    assert expected
    api = client(server)
    messages = [{"role": "user", "content": PROMPT}]
    whole = api.chat.completions.create(model=model_id, messages=messages, **params)  # type: ignore[arg-type]
    assert whole.choices[0].message.content == expected
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage is not None and whole.usage.completion_tokens == params["max_tokens"]
    stream = api.chat.completions.create(
        model=model_id,
        messages=messages,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
        **params,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == whole.usage.total_tokens


def test_stop_strings_cut_the_answer(
    server: ServerProcess, model_id: str, tiny_model_path: Path
) -> None:
    full = cli_generate(tiny_model_path, PROMPT, "--max-tokens", "24")
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    expected = cli_generate(tiny_model_path, PROMPT, "--max-tokens", "24", "--stop", stop)
    assert len(expected) < len(full)
    reply = client(server).chat.completions.create(
        model=model_id, messages=[{"role": "user", "content": PROMPT}], max_tokens=24, stop=[stop]
    )
    assert reply.choices[0].message.content == expected
    assert reply.choices[0].finish_reason == "stop"


def ask_json(db: Path, *flags: str) -> dict:
    proc = gritdesk("ask", QUESTION, "--db", str(db), "--json", "--max-tokens", "12", *flags)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def located(sources: list[dict]) -> list[tuple]:
    return [(s["path"], s["start_line"], s["end_line"], s["page"]) for s in sources]


def test_rag_answers_cite_what_gritdesk_ask_cites(server: ServerProcess, indexed_db: Path) -> None:
    expected = ask_json(indexed_db)
    assert expected["sources"][0]["path"].endswith(ANSWER_FILE)
    api = client(server)
    messages = [{"role": "user", "content": QUESTION}]
    reply = api.chat.completions.create(model="gritdesk-rag", messages=messages, max_tokens=12)  # type: ignore[arg-type]
    sources = reply.model_extra["sources"]  # type: ignore[index]
    assert located(sources) == located(expected["sources"])
    assert [s["n"] for s in sources] == list(range(1, len(sources) + 1))
    assert reply.choices[0].message.content == expected["answer"]
    assert reply.usage is not None and reply.usage.completion_tokens >= 1

    stream = api.chat.completions.create(
        model="gritdesk-rag",
        messages=messages,
        max_tokens=12,
        stream=True,  # type: ignore[arg-type]
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected["answer"]
    last = chunks[-1]  # the sources come last, after the finish chunk
    assert last.choices == [] and located(last.model_extra["sources"]) == located(  # type: ignore[index]
        expected["sources"]
    )


def test_rag_scoped_to_a_folder_cites_only_that_folder(server: ServerProcess, docs: Path) -> None:
    api = client(server)
    messages = [{"role": "user", "content": QUESTION}]
    reply = api.chat.completions.create(
        model="gritdesk-rag",
        messages=messages,  # type: ignore[arg-type]
        max_tokens=4,
        extra_body={"gritdesk": {"root": str(docs / "other"), "k": 3}},
    )
    sources = reply.model_extra["sources"]  # type: ignore[index]
    assert 1 <= len(sources) <= 3
    assert all(s["path"].startswith(str(docs / "other") + "/") for s in sources)
    with pytest.raises(openai.BadRequestError) as caught:
        api.chat.completions.create(
            model="gritdesk-rag",
            messages=messages,  # type: ignore[arg-type]
            extra_body={"gritdesk": {"root": "/nowhere/indexed"}},
        )
    assert "/nowhere/indexed" in caught.value.body["message"]  # type: ignore[index]


def test_rerank_scores_are_the_models_relevance_logits(
    server: ServerProcess, model_id: str, tiny_engine
) -> None:
    from gritdesk.rag.rerank import relevance_score

    documents = ["Hotel costs are refunded up to 140 euros a night.", "Aurora 2.1 release", "x"]
    status, _, body = server.request(
        "POST",
        "/v1/rerank",
        {"model": model_id, "query": QUESTION, "documents": documents, "top_n": 2},
    )
    assert status == 200, body
    assert isinstance(body, dict)
    results = body["results"]
    expected = [relevance_score(tiny_engine, QUESTION, d) for d in documents]
    order = sorted(range(3), key=lambda i: -expected[i])[:2]
    assert [r["index"] for r in results] == order
    for r in results:
        assert abs(r["relevance_score"] - expected[r["index"]]) < 1e-2


def test_errors_are_openai_error_objects(server: ServerProcess, model_id: str) -> None:
    api = client(server)
    with pytest.raises(openai.NotFoundError) as missing:
        api.embeddings.create(model="text-embedding-3-small", input="hi")
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    assert missing.value.body["param"] == "model"  # type: ignore[index]
    assert "text-embedding-3-small" in missing.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad:
        api.chat.completions.create(
            model=model_id,
            messages=[{"role": "assistant", "content": "hi"}],  # nothing for the user to ask
        )
    error = bad.value.body
    assert set(error) == {"message", "type", "param", "code"}  # type: ignore[arg-type]
    assert error["type"] == "invalid_request_error"  # type: ignore[index]
