"""One question, one index, four interfaces: `gritdesk ask --json`, the chat app's backend,
the HTTP server's `gritdesk-rag` model (through the official openai client) and the MCP
`ask` tool give the same answer, cite the same sources at the same locations and show the
same evidence sentences and unfound facts, each with its defaults: they all answer through
`AskService`, which owns k, max tokens and the cache mode."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import openai
from mcp import Client

from gritdesk.rag.answer import AskOptions
from gritdesk.rag.ask_defaults import DEFAULT_K
from gritdesk.settings import Settings
from gritdesk.tui.backend import IndexBackend
from server.conftest import ANSWER_FILE, QUESTION, gritdesk
from server.server_process import ServerProcess
from server.test_mcp import mcp_params

CHECKED = ("answer", "sources", "evidence", "not_found")


def by_cli(db: Path) -> dict:
    proc = gritdesk("ask", QUESTION, "--db", str(db), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    return {**{key: out[key] for key in CHECKED}, "mode": out["cache_mode"]}


def by_chat_backend(db: Path) -> dict:
    app = IndexBackend.open(Settings(db=db))
    try:
        with app.lock:
            prepared = app.prepare(QUESTION, AskOptions(), [])  # what a new chat sends
            text = "".join(app.stream(prepared, lambda: False))
            shown = app.result(prepared).as_json()
        assert text == shown["answer"]
        assert shown["sources"] == [c.as_json() for c in app.cite(prepared)]
        return {**{key: shown[key] for key in CHECKED}, "mode": shown["cache_mode"]}
    finally:
        app.close()


def by_http(server: ServerProcess) -> dict:
    api = openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)
    reply = api.chat.completions.create(
        model="gritdesk-rag",
        messages=[{"role": "user", "content": QUESTION}],  # type: ignore[list-item]
        timeout=600,
    )
    extra = reply.model_extra or {}
    return {"answer": reply.choices[0].message.content, **{k: extra[k] for k in CHECKED[1:]}}


async def _by_mcp(db: Path) -> dict:
    async with Client(mcp_params(db), read_timeout_seconds=600) as client:
        result = await client.call_tool("ask", {"question": QUESTION})
    assert not result.is_error, result
    content = result.structured_content
    assert content is not None
    return {key: content[key] for key in CHECKED}


def test_cli_chat_http_and_mcp_give_the_same_cited_answer(
    indexed_db: Path, server: ServerProcess
) -> None:
    cli = by_cli(indexed_db)
    chat = by_chat_backend(indexed_db)
    http = by_http(server)
    mcp = asyncio.run(asyncio.wait_for(_by_mcp(indexed_db), timeout=900))

    assert cli["answer"], "the tiny model always says something"
    assert len(cli["sources"]) == DEFAULT_K
    assert cli["sources"][0]["path"].endswith(ANSWER_FILE)
    assert all(s["location"].startswith(s["path"] + ":") for s in cli["sources"])
    assert chat["mode"] == cli["mode"] == "doc"
    assert cli["evidence"] and cli["evidence"][0]["location"].startswith(cli["sources"][0]["path"])
    for name, got in (("chat", chat), ("http", http), ("mcp", mcp)):
        for key in CHECKED:  # sources: locations, scores, KV use, all of it
            assert got[key] == cli[key], (name, key)
