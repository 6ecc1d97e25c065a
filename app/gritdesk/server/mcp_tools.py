"""`gritdesk mcp`: the index as MCP tools over stdio (the official MCP Python SDK).

Two tools: `search` (passages with their location) and `ask` (an answer from the index
through the answering service, with the sources it was given, cited as everywhere else).
They run on the same engine thread as the HTTP server's jobs, so the model is loaded once
and used by one thread.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from gritdesk.errors import GritdeskError
from gritdesk.rag.ask_defaults import DEFAULT_K, DEFAULT_MAX_TOKENS, MAX_K
from gritdesk.rag.ask_service import Answer as RagAnswer
from gritdesk.rag.retrieve import Hit
from gritdesk.server.engine_jobs import RagJob, RagRequest, SearchJob
from gritdesk.server.engine_worker import EngineWorker, Job, QueueFullError
from gritdesk.session import Session


class Passage(BaseModel):
    path: str
    location: str  # path:12-30, path:p4, path:slide 3, path:Sheet1!A1:D20
    start_line: int | None
    end_line: int | None
    page: int | None
    locator: str | None
    heading_path: str
    score: float
    text: str


class SearchResult(BaseModel):
    passages: list[Passage]


class CitedSource(BaseModel):
    """A source as `Citation.as_json` writes it (the same in `ask --json` and the server)."""

    model_config = ConfigDict(extra="forbid")  # a field added there and not here fails loudly

    n: int
    path: str
    location: str  # path:12-30, path:p4, path:slide 3, path:Sheet1!A1:D20
    start_line: int | None
    end_line: int | None
    page: int | None
    locator: str | None
    heading_path: str
    score: float
    rerank_score: float | None
    kv: str


class EvidenceSentence(BaseModel):
    """A sentence of a source that supports the answer (`Evidence.as_json`)."""

    model_config = ConfigDict(extra="forbid")

    n: int  # the source it is from
    text: str
    location: str  # path:line, or the source's own location
    path: str
    line: int | None


class Answer(BaseModel):
    answer: str
    finish_reason: str
    sources: list[CitedSource]
    evidence: list[EvidenceSentence]
    not_found: list[str]  # numbers, dates and names of the answer that no source holds
    notices: list[str]


async def _run(worker: EngineWorker, job: Job) -> object:
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        worker.submit(job)
        return await job.result()
    except (GritdeskError, QueueFullError) as exc:
        raise ToolError(str(exc)) from None
    finally:
        job.cancel()  # a no-op once it is done; stops the engine when the client went away


def build_mcp_server(worker: EngineWorker):  # -> mcp.server.MCPServer
    from mcp.server import MCPServer

    server = MCPServer(
        "gritdesk",
        instructions=(
            "Search and answer questions over the user's indexed files. Cite the returned "
            "sources by their location (path:lines, path:p4, path:slide 3)."
        ),
    )

    @server.tool()
    async def search(query: str, k: int = 10, root: str | None = None) -> SearchResult:
        """Find the passages of the indexed files that best match `query` (semantic and
        keyword search fused). `root` limits the search to files under that folder."""
        hits = await _run(worker, SearchJob(worker.ask, query, max(1, min(k, 100)), root))
        assert isinstance(hits, list)
        return SearchResult(passages=[_passage(hit) for hit in hits])

    @server.tool(
        description=(
            "Answer `question` from the indexed files with the local model; returns the answer "
            "and the numbered sources (path, location: lines, page, slide or cells) it was "
            "given, the sentences of them that support it (evidence) and the facts of the "
            f"answer no source holds (not_found). `k` chunks (default {DEFAULT_K}, at most "
            f"{MAX_K}), `max_tokens` (default {DEFAULT_MAX_TOKENS}); `root` limits the sources "
            "to files under that folder."
        )
    )
    async def ask(
        question: str, k: int | None = None, root: str | None = None, max_tokens: int | None = None
    ) -> Answer:
        request = RagRequest(question, k=k, max_tokens=max_tokens, root=root)
        answer = await _run(worker, RagJob(worker.ask, request))
        assert isinstance(answer, RagAnswer)
        shown = answer.as_json()
        return Answer.model_validate({key: shown[key] for key in Answer.model_fields})

    return server


def _passage(hit: Hit) -> Passage:
    return Passage(
        path=hit.path,
        location=hit.location,
        start_line=hit.start_line,
        end_line=hit.end_line,
        page=hit.page,
        locator=hit.locator,
        heading_path=hit.heading_path,
        score=hit.score,
        text=hit.text,
    )


def run_mcp(session: Session, queue_size: int = 64) -> None:
    """Serve the tools on stdin/stdout until the client closes them."""
    worker = EngineWorker(session, queue_size)
    server = build_mcp_server(worker)
    worker.start()
    try:
        server.run("stdio")
    finally:
        worker.stop()
        session.close()
