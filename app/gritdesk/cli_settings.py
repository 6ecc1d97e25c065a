"""The flags every command shares, declared once and turned into one `Settings`.

`@settings_options("db", "model", ...)` adds those options to a command and calls it with
`settings=` resolved by `gritdesk.settings.load_settings` (flag > environment > config >
default), so no command repeats an option list or reads the config itself.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from gritdesk.runtime.engine_settings import DEFAULT_CONTEXT, KvType
from gritdesk.settings import Settings

_OPTIONS: dict[str, Any] = {
    "db": Annotated[
        Path | None,
        typer.Option("--db", help="Index database (default: GRITDESK_DB, config, user data dir)."),
    ],
    "model": Annotated[
        Path | None,
        typer.Option(
            "--model",
            "-m",
            help="GGUF model file or installed name (default: GRITDESK_MODEL, "
            "config, the installed model).",
        ),
    ],
    "context": Annotated[
        int | None,
        typer.Option(
            "--context", "--ctx", help=f"Context size in tokens (default {DEFAULT_CONTEXT})."
        ),
    ],
    "kv_type": Annotated[
        KvType | None,
        typer.Option("--kv-type", help=f"KV cache type (default {Settings.kv_type})."),
    ],
    "gpu_layers": Annotated[
        int | None,
        typer.Option(
            "--gpu-layers",
            help="Layers to offload to a GPU, -1 for all (default: all when llama.cpp was "
            "built with a GPU backend, else 0).",
        ),
    ],
    "recipe": Annotated[
        str | None,
        typer.Option(
            help="Embedding recipe: gritlm, e5-mistral, echo, llm2vec, gem, smollm2 "
            "(default: the model's)."
        ),
    ],
    "embedder": Annotated[
        str | None,
        typer.Option(
            "--embedder",
            help="Who embeds for a chat model not trained to embed (SmolLM2): auto (the "
            "default: all-MiniLM-L6-v2 when installed), self, or a model path or name.",
        ),
    ],
    "chat_model": Annotated[
        Path | None,
        typer.Option("--chat-model", help="Pair mode: this GGUF answers, --model only embeds."),
    ],
}
INDEX_MODEL = ("db", "model", "context", "kv_type", "gpu_layers", "recipe", "embedder")
ANSWERING = (*INDEX_MODEL, "chat_model")


def settings_options(*keys: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the shared options `keys` to a Typer command, which receives `settings`."""
    unknown = set(keys) - set(_OPTIONS)
    if unknown:
        raise ValueError(f"no shared option {sorted(unknown)}")

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command)
        own = [
            p.replace(annotation=_evaluated(p.annotation, command))
            for p in signature.parameters.values()
            if p.name != "settings"
        ]
        added = [
            inspect.Parameter(
                key, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_OPTIONS[key]
            )
            for key in keys
        ]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from gritdesk.settings import load_settings

            flags = {key: kwargs.pop(key) for key in keys}
            return command(*args, settings=load_settings(flags=flags), **kwargs)

        wrapper.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in (*own, *added)}
        return wrapper

    return decorate


def _evaluated(annotation: Any, command: Callable[..., Any]) -> Any:
    """A postponed (string) annotation as the object Typer needs to see its options."""
    if isinstance(annotation, str):
        return eval(annotation, command.__globals__)
    return annotation
