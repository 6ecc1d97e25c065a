"""The `gritdesk` commands. Each one parses its options and delegates to a module."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gritdesk.config import require_model
from gritdesk.errors import GritdeskError
from gritdesk.models.commands import models_app

if TYPE_CHECKING:
    from gritdesk.runtime.engine import Engine

app = typer.Typer(
    name="gritdesk",
    help="Offline Q&A over your own files with one GGUF model that embeds and generates.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models_app, name="models")

ModelOption = Annotated[
    Path | None,
    typer.Option("--model", "-m", help="GGUF model file (default: GRITDESK_MODEL or config)."),
]


def _engine(model: Path | None, **settings: object) -> Engine:
    from gritdesk.runtime.engine import Engine, EngineSettings  # lazy: keeps --help fast

    return Engine(require_model(model), EngineSettings(**settings))  # type: ignore[arg-type]


@app.command()
def embed(
    texts: Annotated[list[str], typer.Argument(help="Texts to embed, one vector each.")],
    model: ModelOption = None,
    instruction: Annotated[
        str | None, typer.Option(help="Query instruction (GritLM query format); none = document.")
    ] = None,
) -> None:
    """Print {"model", "dim", "embeddings"} as JSON, one vector per text, in order."""
    engine = _engine(model)
    vectors = engine.embed(texts, instruction=instruction)
    json.dump(
        {"model": str(engine.path), "dim": engine.embedding_dim, "embeddings": vectors.tolist()},
        sys.stdout,
    )
    sys.stdout.write("\n")


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="The user message.")],
    model: ModelOption = None,
    max_tokens: Annotated[int, typer.Option(min=1)] = 256,
    temperature: Annotated[float, typer.Option(min=0.0, help="0 = greedy (deterministic).")] = 0.0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0)] = 1.0,
    seed: int = 0,
    stop: Annotated[list[str] | None, typer.Option(help="Stop string (repeatable).")] = None,
) -> None:
    """Stream a chat-format answer to stdout as it is generated."""
    from gritdesk.runtime.engine import GenerationOptions

    engine = _engine(model)
    options = GenerationOptions(
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        stop=tuple(stop or ()),
    )
    for piece in engine.generate(prompt, options):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


@app.command()
def demo(model: ModelOption = None) -> None:
    """Embed and generate once, to show the setup works (synthetic model when none is given)."""
    from gritdesk.demo import run_demo

    run_demo(model)


def main() -> None:
    try:
        app()
    except GritdeskError as exc:
        typer.echo(f"gritdesk: error: {exc}", err=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        typer.echo("gritdesk: interrupted", err=True)
        raise SystemExit(130) from None
