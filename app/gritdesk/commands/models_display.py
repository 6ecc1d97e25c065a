"""How `models list` and `models info` look: rich tables for people, plain dicts for --json."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from gritdesk.models.catalog import Catalog
from gritdesk.models.drift import DriftReport
from gritdesk.models.found import FoundModel
from gritdesk.models.installed import InstalledModels
from gritdesk.models.model_info import ModelInfo, model_runs
from gritdesk.runtime.engine_settings import describe_gpu_layers
from gritdesk.terminal_text import printable_line


def cell(text: str) -> str:
    """A table cell from outside text (names, paths, GGUF metadata): no markup, no controls."""
    return escape(printable_line(text))


def human_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def human_count(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def list_json(catalog: Catalog, store: InstalledModels) -> dict[str, object]:
    installed = {m.name for m in store.all()}
    return {
        "known": [
            {
                "name": f.name,
                "default": f.is_default,
                "repo": f.repo,
                "filename": f.filename,
                "revision": f.revision,
                "size": f.size or None,
                "size_shown": f.size_shown,
                "sha256": f.sha256 or None,
                "recipe": f.recipe,
                "installed": f.name in installed,
                "source": f.source,
            }
            for f in catalog.files()
        ],
        "installed": [
            {
                "name": m.name,
                "path": m.path,
                "origin": m.origin,
                "owned": m.owned,
                "size": m.size,
                "recipe": m.recipe,
                "role": model_role(m.recipe),
                "sha256": m.sha256 or None,
                "exists": m.exists(),
            }
            for m in store.all()
        ],
    }


def found_json(found: list[FoundModel]) -> list[dict[str, object]]:
    rows = []
    for model in found:
        runs = model_runs(model.path)
        rows.append(
            {
                "name": model.name,
                "source": model.source,
                "path": str(model.path),
                "size": model.size,
                "architecture": runs.architecture,
                "runnable": runs.runnable,
                "why_not": runs.why_not,
            }
        )
    return rows


def found_table(found: list[FoundModel]) -> Table:
    table = Table(title="Found on this machine (Ollama, LM Studio, Hugging Face cache; read-only)")
    for column in ("name", "size", "architecture", "runs in gritdesk"):
        table.add_column(column)
    for model in found:
        runs = model_runs(model.path)
        verdict = "yes" if runs.runnable else f"no: {runs.why_not}"
        table.add_row(
            cell(model.name), human_bytes(model.size), cell(runs.architecture), cell(verdict)
        )
    if not found:
        table.add_row("(none)", "", "", "")
    return table


def model_role(recipe_name: str | None) -> str:
    """What a model does in gritdesk, from its recipe: embeds, answers, or both; a chat model
    not trained to embed answers while the pair embedder finds its passages."""
    from gritdesk.model_choice import PAIR_EMBEDDER
    from gritdesk.runtime.recipes import RECIPES

    recipe = RECIPES.get(recipe_name or "gritlm")
    if recipe is None:
        return "?"
    if not recipe.generates:
        return "embeds"
    if not recipe.trained_to_embed:
        return f"answers ({PAIR_EMBEDDER} embeds)"
    return "embeds and answers"


def list_tables(catalog: Catalog, store: InstalledModels) -> list[Table]:
    installed = {m.name for m in store.all()}
    known = Table(title="Known models (gritdesk models pull NAME)")
    known.add_column("name", no_wrap=True)
    for column in ("size", "checksum", "installed"):
        known.add_column(column)
    for f in catalog.files():
        name = f"{f.family} ({f.quant})" if f.is_default else f.name
        known.add_row(
            cell(name),
            f.size_shown or human_bytes(f.size or None),
            "sha256" if f.sha256 else "none published",
            "yes" if f.name in installed else "",
        )
    mine = Table(title="Installed models")
    for column in ("name", "origin", "size", "role", "path"):
        mine.add_column(column)
    for m in store.all():
        path = m.path if m.exists() else f"{m.path} (missing)"
        mine.add_row(cell(m.name), m.origin, human_bytes(m.size), model_role(m.recipe), cell(path))
    if not store.all():
        mine.add_row("(none)", "", "", "", "")
    return [known, mine]


def info_table(info: ModelInfo) -> Table:
    table = Table(show_header=False, title=cell(info.registered_name or info.path))
    table.add_column("key", style="bold")
    table.add_column("value")
    experts = f" ({info.expert_count} experts)" if info.expert_count else ""
    rows = [
        ("file", info.path),
        ("name", info.general_name),
        ("architecture", info.architecture + experts),
        ("parameters", f"{human_count(info.parameters)} ({info.parameters:,})"),
        ("quantization", info.quantization),
        ("file size", f"{human_bytes(info.file_size)} ({info.file_size:,} bytes)"),
        ("context length", f"{info.context_length:,}"),
        ("vocab size", f"{info.vocab_size:,}"),
        ("layers / width", f"{info.n_layer} / {info.n_embd}"),
        ("heads (kv) x dim", f"{info.n_head} ({info.n_head_kv}) x {info.head_dim}"),
        ("recipe", f"{info.recipe} ({info.recipe_source})"),
    ]
    for kv_type, per_token in info.kv_bytes_per_token.items():
        value = (
            "n/a (row not a whole number of blocks)"
            if per_token is None
            else (f"{human_bytes(per_token)} ({per_token:,} B)")
        )
        rows.append((f"KV per token, {kv_type}", value))
    if not info.kv_bytes_per_token:
        rows.append(("KV cache", "none: an encoder, it embeds only"))
    rows.append(("doc caching", info.doc_caching))
    rows.append(("GPU layers", describe_gpu_layers(info.gpu_layers, info.n_layer)))
    rows.append(("fingerprint", info.fingerprint))
    for key, value in rows:
        table.add_row(key, cell(value))
    return table


def drift_lines(report: DriftReport) -> list[str]:
    return [
        f"embedding drift over {len(report.cosines)} fixed sentences "
        "(cosine to the source model's embedding, 1.0 = identical):",
        f"  mean {report.mean:.6f}   min {report.min:.6f}",
    ]
