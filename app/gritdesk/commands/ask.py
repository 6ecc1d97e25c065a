"""`gritdesk ask`: retrieve, answer with streaming, cite; or all of it as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gritdesk.cli_views import answer_json, print_notice, print_sources
from gritdesk.commands.roots import resolve_root
from gritdesk.errors import GritdeskError
from gritdesk.rag.answer import Answerer, AskOptions
from gritdesk.rag.layouts import CacheMode, Placement
from gritdesk.runtime.engine import GenerationOptions
from gritdesk.session import Session
from gritdesk.terminal_text import printable


def parse_choice(enum: type, value: str, what: str):
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(m.value for m in enum)
        raise GritdeskError(f"{what} {value!r}: choose one of {choices}") from None


def run_ask(
    session: Session,
    question: str,
    *,
    k: int = 4,
    cache: str | None = None,
    placement: str = "consecutive",
    rerank: bool = False,
    max_tokens: int = 256,
    as_json: bool = False,
    root: Path | None = None,
) -> None:
    assert session.engine is not None
    session.require_answering_model()
    for notice in session.notices:
        print_notice(notice)
    options = AskOptions(
        k=k,
        cache_mode=parse_choice(
            CacheMode,
            cache or ("off" if session.pair_mode else session.engine.recipe.default_cache_mode),
            "cache mode",
        ),
        placement=parse_choice(Placement, placement, "placement"),
        rerank=rerank,
        generation=GenerationOptions(max_tokens=max_tokens),
        root_id=resolve_root(session.db, root).id if root is not None else None,
    )
    answerer = Answerer(session.db, session.engine, session.kv_store, session.chat_engine)
    prepared = answerer.prepare(question, options)
    for notice in prepared.notices:
        print_notice(notice)
    said = len(prepared.notices)
    pieces: list[str] = []
    for piece in answerer.stream(prepared):
        pieces.append(piece)
        if not as_json:
            sys.stdout.write(printable(piece))
            sys.stdout.flush()
    for notice in prepared.notices[said:]:  # while answering (a KV cache not saved...)
        print_notice(notice)
    if as_json:
        json.dump(answer_json(prepared, "".join(pieces)), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n")
        print_sources(prepared)
