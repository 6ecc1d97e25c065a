"""`gritdesk models ...`: get, check and quantize GGUF models.

Each command parses its options and delegates to a module in gritdesk.models; results
go to stdout (tables, or JSON with --json), progress and hints to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from gritdesk.cli_settings import settings_options
from gritdesk.runtime.recipes import DEFAULT_RECIPE, TEMPLATE_RECIPE
from gritdesk.terminal_text import printable, printable_line

if TYPE_CHECKING:
    from gritdesk.settings import Settings

models_app = typer.Typer(help="Get, check and quantize GGUF models.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _out() -> Console:
    return Console()


def _err() -> Console:
    return Console(stderr=True)


def _say(console: Console, text: str) -> None:
    """Plain text on stderr: paths are neither styled, parsed as markup, nor re-wrapped."""
    console.print(printable(text), markup=False, highlight=False, soft_wrap=True)


def _print_json(payload: object) -> None:
    json.dump(payload, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _use_hint(path: Path) -> str:
    from gritdesk.settings import config_path

    return (
        f"use it with --model {path}, or export GRITDESK_MODEL={path}, "
        f'or set model = "{path}" in {config_path()}'
    )


@models_app.command("list")
def models_list(json_out: JsonOption = False) -> None:
    """Known builds (pullable), your installed models, and GGUF models other tools keep here."""
    from gritdesk.commands.models_display import found_json, found_table, list_json, list_tables
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.found import found_models
    from gritdesk.models.installed import InstalledModels

    catalog, store, found = load_catalog(), InstalledModels(), found_models()
    if json_out:
        _print_json({**list_json(catalog, store), "found": found_json(found)})
        return
    console = _out()
    for table in [*list_tables(catalog, store), found_table(found)]:
        console.print(table)


@models_app.command("pull")
def models_pull(
    name: Annotated[
        str, typer.Argument(help="A known model: gritlm-7b, or gritlm-7b:Q8_0 (see `list`).")
    ],
) -> None:
    """Download a known model through the Hugging Face hub, verify its sha256, register it."""
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.installed import InstalledModels
    from gritdesk.models.progress import RichProgress
    from gritdesk.models.pull import pull_model

    err = _err()
    result = pull_model(name, InstalledModels(), load_catalog(), progress=RichProgress(err))
    model = result.model
    if result.already_installed:
        _say(err, f"{model.name} is already installed")
    elif not result.verified:
        _say(err, f"{model.name}: no sha256 published, the file was not verified")
    else:
        _say(err, f"{model.name}: sha256 verified")
    print(printable_line(str(model.path)))
    _say(err, _use_hint(Path(model.path)))


@models_app.command("add")
def models_add(
    path: Annotated[Path, typer.Argument(help="A local GGUF file; it stays where it is.")],
    name: Annotated[
        str | None, typer.Option(help="Name to register it under (default: file stem).")
    ] = None,
    recipe: Annotated[
        str | None,
        typer.Option(
            help=f"Recipe it runs with (default: {TEMPLATE_RECIPE}, its own chat template, for "
            f"a chat model; else {DEFAULT_RECIPE})."
        ),
    ] = None,
) -> None:
    """Validate a local GGUF file and register it (it is never deleted by `rm`)."""
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.installed import InstalledModels
    from gritdesk.models.library import add_model
    from gritdesk.models.progress import RichProgress

    err = _err()
    store, catalog = InstalledModels(), load_catalog()
    result = add_model(path, store, catalog, name=name, recipe=recipe, progress=RichProgress(err))
    model = result.model
    if result.already:
        _say(err, f"{model.name} was already registered for this file")
    elif result.catalog_file is not None:
        verified = "sha256 verified" if result.verified else "no published sha256 to check"
        _say(err, f"recognised as {result.catalog_file.name} ({verified})")
    print(f"{printable_line(model.name)}\t{printable_line(str(model.path))}")
    _say(err, _use_hint(Path(model.path)))


@models_app.command("info")
@settings_options("gpu_layers")
def models_info(
    ref: Annotated[
        str, typer.Argument(metavar="NAME|PATH", help="Installed model name or GGUF path.")
    ],
    json_out: JsonOption = False,
    *,
    settings: Settings,
) -> None:
    """Architecture, parameters, quantization, context, vocab, recipe, KV cost, what Doc
    Caching may do with it, GPU layers, fingerprint."""
    from gritdesk.commands.models_display import info_table
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.installed import InstalledModels
    from gritdesk.models.library import locate_model
    from gritdesk.models.model_info import model_info
    from gritdesk.runtime.engine import resolved_gpu_layers

    located = locate_model(ref, InstalledModels(), load_catalog())
    recipe, source = None, ""
    if located.installed is not None:
        recipe, source = located.installed.recipe, f"registered as {located.installed.name}"
    elif located.catalog_file is not None:
        recipe = located.catalog_file.recipe
        source = f"file name of known build {located.catalog_file.name}"
    info = model_info(
        located.path,
        registered_name=located.installed.name if located.installed else None,
        recipe=recipe,
        recipe_source=source,
        gpu_layers=resolved_gpu_layers(settings.gpu_layers),
    )
    if json_out:
        _print_json(info.to_json())
    else:
        _out().print(info_table(info))


@models_app.command("quantize")
def models_quantize(
    src: Annotated[str, typer.Argument(metavar="IN", help="Source GGUF path or installed name.")],
    dst: Annotated[Path, typer.Argument(metavar="OUT", help="Output GGUF path.")],
    qtype: Annotated[
        str, typer.Argument(metavar="TYPE", help="Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_0, ...")
    ],
    drift: Annotated[bool, typer.Option(help="Report embedding drift against the source.")] = True,
    force: Annotated[bool, typer.Option(help="Overwrite OUT if it exists.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Quantize with llama.cpp (with progress), then report how far embeddings drift."""
    from gritdesk.commands.models_display import drift_lines
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.drift import embedding_drift
    from gritdesk.models.errors import ModelsError
    from gritdesk.models.installed import InstalledModels
    from gritdesk.models.library import locate_model
    from gritdesk.models.progress import RichProgress
    from gritdesk.models.quantize_progress import quantize_with_progress

    source = locate_model(src, InstalledModels(), load_catalog()).path
    if dst.exists() and not force:
        raise ModelsError(f"{dst}: already exists; pass --force to overwrite it")
    err = _err()
    out = quantize_with_progress(source, dst, qtype, RichProgress(err))
    report = embedding_drift(source, out) if drift else None
    if json_out:
        _print_json(
            {
                "output": str(out),
                "size": out.stat().st_size,
                "type": qtype.upper(),
                "drift": report.to_json() if report else None,
            }
        )
    else:
        print(printable_line(str(out)))
        for line in drift_lines(report) if report else []:
            print(line)
    _say(err, f"register it with: gritdesk models add {out}")


@models_app.command("rm")
def models_rm(
    name: Annotated[str, typer.Argument(help="Installed model name (see `list`).")],
) -> None:
    """Unregister a model; deletes files `pull` downloaded, never a file you `add`ed."""
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.installed import InstalledModels
    from gritdesk.models.library import remove_model

    result = remove_model(name, InstalledModels(), load_catalog())
    err = _err()
    for path in result.deleted:
        _say(err, f"deleted {path}")
    if result.kept is not None:
        _say(err, f"kept your file {result.kept}")
    print(f"removed {printable_line(result.model.name)}")


@models_app.command("synth")
def models_synth(
    name: Annotated[str, typer.Argument(help="A shape from models/synthetic.toml: tiny, 1b, 7b.")],
) -> None:
    """Make a synthetic (random-weight) model for trying gritdesk offline; prints its path."""
    from gritdesk.models.synthetic import synthetic_model_path
    from gritdesk.runtime.quantize import quantize_model

    print(synthetic_model_path(name, quantize=quantize_model))
