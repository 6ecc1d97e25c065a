"""`gritdesk demo`: the README's main job. Index the sample folder shipped with gritdesk,
then answer a question about it with citations, reusing the KV caches the index saved.

It uses the configured or installed model (`gritdesk models pull gritlm-7b`) when there is
one; otherwise the synthetic test model, with a notice that its answers are noise and how to
get a real one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from gritdesk.config import resolve_model
from gritdesk.paths import data_dir
from gritdesk.terminal_text import printable_line

CORPUS = Path(__file__).resolve().parent / "demo_corpus"
QUESTION = "Hotel costs are refunded up to how many euros a night in Europe?"


def run_demo(model: Path | None) -> None:
    from gritdesk.commands.ask import run_ask
    from gritdesk.commands.index import run_index
    from gritdesk.models.synthetic import synthetic_model_path
    from gritdesk.runtime.quantize import quantize_model
    from gritdesk.session import SessionOptions, open_session

    console = Console(stderr=True)
    path = resolve_model(model)  # flag, env, config, or a model `gritdesk models pull` got
    synthetic = path is None
    if path is None:
        path = synthetic_model_path("tiny", quantize=quantize_model)
        console.print(
            "[yellow]No model configured: using gritdesk's synthetic test model. Its weights are "
            "random, so the answer below is noise (the citations point at real passages)."
            "[/yellow]\n"
            "Get GritLM-7B (about 4.4 GB, once): [bold]gritdesk models pull gritlm-7b[/bold]"
        )
    # one demo index per checkout and model kind, so another clone's paths never show up
    key = hashlib.sha256(f"{CORPUS}|{synthetic}".encode()).hexdigest()[:8]
    db = data_dir() / f"demo-{key}.db"
    console.print(f"[bold]1. index[/bold] {escape(printable_line(f'{CORPUS} -> {db}'))}")
    session = open_session(SessionOptions(db=db, model=path, n_ctx=2048))
    try:
        run_index(session, [CORPUS])
        console.print(f"[bold]2. ask[/bold] {QUESTION}")
        run_ask(session, QUESTION, k=3, max_tokens=48)
    finally:
        session.close()
