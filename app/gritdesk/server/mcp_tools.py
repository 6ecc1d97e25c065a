"""`gritdesk mcp`: the index as MCP tools over stdio (the official MCP Python SDK).

Two tools: `search` (passages with their path, lines and page) and `ask` (an answer from
the index with the sources it was given). They run on the same engine thread as the HTTP
server's jobs, so the model is loaded once and used by one thread.
"""

from __future__ import annotations

from pydantic import BaseModel

from gritdesk.cli_views import answer_json
from gritdesk.errors import GritdeskError
from gritdesk.rag.answer import AskOptions, PreparedAnswer
from gritdesk.rag.layouts import CacheMode
from gritdesk.rag.retrieve import Hit
from gritdesk.runtime.engine import GenerationOptions
from gritdesk.server.engine_jobs import RagJob, SearchJob
from gritdesk.server.engine_worker import EngineWorker, Job, QueueFullError
from gritdesk.session import Session


class Passage(BaseModel):
    path: str
    start_line: int | None
    end_line: int | None
    page: int | None
    heading_path: str
    score: float
    text: str


class SearchResult(BaseModel):
    passages: list[Passage]


class SourceRef(BaseModel):
    n: int
    path: str
    start_line: int | None
    end_line: int | None
    page: int | None
    heading_path: str


class Answer(BaseModel):
    answer: str
    sources: list[SourceRef]
    notices: list[str]


async def _run(worker: EngineWorker, job: Job) -> object:
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        worker.submit(job)
        return await job.result()
    except (GritdeskError, QueueFullError) as exc:
        raise ToolError(str(exc)) from None


def build_mcp_server(worker: EngineWorker):  # -> mcp.server.MCPServer
    from mcp.server import MCPServer

    server = MCPServer(
        "gritdesk",
        instructions=(
            "Search and answer questions over the user's indexed files. Cite the returned "
            "sources as path:lines."
        ),
    )

    @server.tool()
    async def search(query: str, k: int = 10, root: str | None = None) -> SearchResult:
        """Find the passages of the indexed files that best match `query` (semantic and
        keyword search fused). `root` limits the search to files under that folder."""
        hits = await _run(worker, SearchJob(query, max(1, min(k, 100)), root))
        assert isinstance(hits, list)
        return SearchResult(passages=[_passage(hit) for hit in hits])

    @server.tool()
    async def ask(
        question: str, k: int = 4, root: str | None = None, max_tokens: int = 256
    ) -> Answer:
        """Answer `question` from the indexed files with the local model; returns the answer
        and the numbered sources (path, lines, page) it was given. `root` limits the
        sources to files under that folder."""
        options = AskOptions(
            k=max(1, min(k, 64)),
            cache_mode=CacheMode.OFF if worker.session.pair_mode else CacheMode.DOC,
            generation=GenerationOptions(max_tokens=max(1, min(max_tokens, 4096))),
        )
        job = RagJob(question, [], options, root)
        pieces: list[str] = []
        prepared = await _collect(worker, job, pieces)
        shown = answer_json(prepared, "".join(pieces))
        sources = [SourceRef.model_validate(s, strict=False) for s in shown["sources"]]  # type: ignore[union-attr]
        return Answer(answer=shown["answer"], sources=sources, notices=shown["notices"])  # type: ignore[arg-type]

    return server


async def _collect(worker: EngineWorker, job: RagJob, pieces: list[str]) -> PreparedAnswer:
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        worker.submit(job)
        while True:
            kind, value = await job.next_event()
            if kind == "piece":
                pieces.append(str(value))
            elif kind == "error":
                assert isinstance(value, BaseException)
                raise value
            elif kind == "done":
                assert isinstance(value, PreparedAnswer)
                return value
    except (GritdeskError, QueueFullError) as exc:
        raise ToolError(str(exc)) from None
    finally:
        job.cancel()


def _passage(hit: Hit) -> Passage:
    return Passage(
        path=hit.path,
        start_line=hit.start_line,
        end_line=hit.end_line,
        page=hit.page,
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
