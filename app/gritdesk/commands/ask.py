"""`gritdesk ask`: stream the answer and list its sources, or print it all as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gritdesk.cli_views import print_answer_end, print_notice
from gritdesk.rag.answer import PreparedAnswer
from gritdesk.rag.ask_service import AskService
from gritdesk.session import Session
from gritdesk.terminal_text import printable


def run_ask(
    session: Session,
    question: str,
    *,
    k: int | None = None,
    cache: str | None = None,
    placement: str | None = None,
    rerank: bool | None = None,
    max_tokens: int | None = None,
    as_json: bool = False,
    root: Path | None = None,
) -> None:
    """Options left None take `AskService`'s defaults, as in every other interface."""
    service = AskService(session)
    session.require_answering_model()
    for notice in session.notices:
        print_notice(notice)
    options = service.options(
        k=k, cache=cache, placement=placement, rerank=rerank, max_tokens=max_tokens, root=root
    )
    said = 0

    def prepared(prepared: PreparedAnswer) -> None:
        nonlocal said
        for notice in prepared.notices:
            print_notice(notice)
        said = len(prepared.notices)

    def piece(text: str) -> None:
        if not as_json:
            sys.stdout.write(printable(text))
            sys.stdout.flush()

    answer = service.ask(question, options, on_prepared=prepared, on_piece=piece)
    for notice in answer.notices[said:]:  # while answering (a KV cache not saved...)
        print_notice(notice)
    if as_json:
        json.dump(answer.as_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n")
        print_answer_end(answer)
