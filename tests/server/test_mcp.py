"""`gritdesk mcp` driven by the MCP SDK's own client over stdio: the tools are listed, `ask`
answers with the sources `gritdesk ask --json` cites, `search` returns located passages."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

from server.conftest import ANSWER_FILE, QUESTION, gritdesk


def mcp_params(db: Path) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if k.startswith(("GRITDESK_", "PYTHON"))}
    return StdioServerParameters(
        command=sys.executable,
        args=["-c", "from gritdesk.cli import main; main()", "mcp", "--db", str(db)],
        env=env,
    )


async def _session(db: Path, docs: Path) -> dict[str, object]:
    async with Client(mcp_params(db), read_timeout_seconds=300) as client:
        tools = await client.list_tools()
        ask = await client.call_tool("ask", {"question": QUESTION, "max_tokens": 12})
        scoped = await client.call_tool(
            "search", {"query": QUESTION, "k": 3, "root": str(docs / "other")}
        )
        unknown = await client.call_tool("search", {"query": QUESTION, "root": "/not/indexed"})
        return {"tools": tools, "ask": ask, "scoped": scoped, "unknown": unknown}


def test_mcp_client_lists_tools_and_gets_a_cited_answer(indexed_db: Path, docs: Path) -> None:
    result = asyncio.run(asyncio.wait_for(_session(indexed_db, docs), timeout=600))
    names = {tool.name for tool in result["tools"].tools}  # type: ignore[attr-defined]
    assert names == {"search", "ask"}

    ask = result["ask"]
    assert not ask.is_error, ask  # type: ignore[attr-defined]
    answer = ask.structured_content  # type: ignore[attr-defined]
    proc = gritdesk("ask", QUESTION, "--db", str(indexed_db), "--json", "--max-tokens", "12")
    assert proc.returncode == 0, proc.stderr
    expected = json.loads(proc.stdout)
    assert answer["answer"] == expected["answer"]
    assert [(s["path"], s["start_line"], s["end_line"]) for s in answer["sources"]] == [
        (s["path"], s["start_line"], s["end_line"]) for s in expected["sources"]
    ]
    assert answer["sources"][0]["path"].endswith(ANSWER_FILE)
    text = ask.content[0].text  # type: ignore[attr-defined]
    assert ANSWER_FILE in text  # the sources are in what a model reads too

    passages = result["scoped"].structured_content["passages"]  # type: ignore[attr-defined]
    assert 1 <= len(passages) <= 3
    assert all(p["path"].startswith(str(docs / "other") + os.sep) for p in passages)
    assert all(p["start_line"] is not None and p["text"] for p in passages)

    unknown = result["unknown"]
    assert unknown.is_error and "/not/indexed" in unknown.content[0].text  # type: ignore[attr-defined]
