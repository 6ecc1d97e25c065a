"""Every setting gritdesk reads, resolved once into one frozen `Settings`.

Order for each key: the command's flag, then the environment (`GRITDESK_<KEY>`, e.g.
GRITDESK_CONTEXT, GRITDESK_KV_TYPE), then `config.toml` in the data directory, then the
default written here. A bad value is refused with a message naming the key and where it
came from (the flag, the variable, or the file). The interfaces (CLI, TUI, server) load
it; the layers below receive the typed parts they need (`EngineSettings`, `ParseLimits`,
`FileSelection`), never the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from gritdesk.errors import GritdeskError
from gritdesk.ingest.byte_sizes import MIB
from gritdesk.ingest.file_selection import DATA_KINDS, FileSelection
from gritdesk.ingest.parser_process import ParseLimits
from gritdesk.paths import data_dir, default_db_path
from gritdesk.runtime.engine_settings import DEFAULT_CONTEXT, EngineSettings, KvType
from gritdesk.runtime.recipes import RECIPES
from gritdesk.store.kv_cache import DEFAULT_BUDGET_BYTES

MIN_CONTEXT = 256
DEFAULT_KV_BUDGET_GIB = DEFAULT_BUDGET_BYTES / 2**30
API_KEY_ENV = "GRITDESK_API_KEY"  # keeps the key out of `ps` listings


class ConfigError(GritdeskError):
    pass


def config_path() -> Path:
    return data_dir() / "config.toml"


@dataclass(frozen=True)
class IndexSettings:
    """How `gritdesk index` chooses and reads files, and when it asks before a long run."""

    limits: ParseLimits = field(default_factory=ParseLimits)
    selection: FileSelection = field(default_factory=FileSelection)
    confirm_above_s: float = 600.0  # a terminal run estimated longer asks first


@dataclass(frozen=True)
class ServeSettings:
    """`gritdesk serve`: where to listen, the API key, the per-request limits."""

    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str | None = None
    queue_size: int = 64  # jobs waiting for the engine; one more gets 503 + Retry-After
    retry_after_s: int = 1
    max_body_bytes: int = 4 * 2**20
    max_input_tokens: int | None = None  # a chat prompt or embedding text; None: the context
    max_tokens: int | None = None  # the largest max_tokens a request may ask for; None: context
    default_max_tokens: int = 512  # when a plain chat request names none (RAG: AskService)
    max_embedding_inputs: int = 2048  # texts in one /v1/embeddings request (OpenAI's limit)
    max_rerank_documents: int = 256
    batch_jobs: int = 64  # queued embedding requests merged into one Engine.embed at most


@dataclass(frozen=True)
class Settings:
    """What every command runs with. `model`/`chat_model` are as given (a path or an
    installed model's name); `gritdesk.session` turns them into files."""

    db: Path = field(default_factory=default_db_path)
    model: str | None = None
    chat_model: str | None = None  # pair mode: a separate model answers
    # Who embeds for a chat model not trained to embed (its recipe says so): "auto" (the
    # default) pairs it with model_choice.PAIR_EMBEDDER when installed, "self" keeps its own
    # vectors, anything else names the embedding model (a path or an installed name).
    embedder: str = "auto"
    recipe: str | None = None  # else the index's, the registry's or the GGUF's, else gritlm
    context: int = DEFAULT_CONTEXT
    kv_type: KvType = KvType.F16
    flash_attn: bool = False
    # layers offloaded to a GPU (-1: all); None: all where llama.cpp has a GPU backend, else 0
    gpu_layers: int | None = None
    kv_budget_gib: float = DEFAULT_KV_BUDGET_GIB
    kv_disk_format: str = "raw"  # or "q8_rows" (see runtime/kv_state_codec.py)
    index: IndexSettings = field(default_factory=IndexSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)

    @property
    def kv_budget_bytes(self) -> int:
        return int(self.kv_budget_gib * 2**30)

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            n_ctx=self.context,
            kv_type=self.kv_type,
            flash_attn=self.flash_attn,
            n_gpu_layers=self.gpu_layers,
        )


# --- reading values ---------------------------------------------------------------------


def _flag(key: str) -> str:
    """How an error names a value given as a flag: `--kv-type`."""
    return f"--{key.replace('_', '-')}"


def _env(key: str) -> str:
    """The environment variable of a top-level key: `GRITDESK_KV_TYPE`."""
    return f"GRITDESK_{key.upper()}"


Parser = Callable[[object, str], object]  # (value, where) -> typed value


def _text(value: object, where: str) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: must be a non-empty string, got {value!r}")
    return value


def _path(value: object, where: str) -> Path:
    return Path(_text(value, where)).expanduser()


def _boolean(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: must be true or false, got {value!r}")


def _from_environment(parse: Parser, text: str) -> object:
    """An environment variable's text as the value its key takes (files are typed TOML)."""
    lowered = text.strip().lower()
    if parse is _boolean:
        return {
            "1": True,
            "true": True,
            "yes": True,
            "on": True,
            "0": False,
            "false": False,
            "no": False,
            "off": False,
        }.get(lowered, text)
    if getattr(parse, "numeric", False):
        for kind in (int, float):
            try:
                return kind(lowered)
            except ValueError:
                pass
    return text


def _number(low: float, *, integer: bool = False, above: bool = False) -> Parser:
    """A number >= low (> low when `above`); strings (environment) are parsed."""

    def parse(value: object, where: str) -> float | int:
        number = value
        ok = isinstance(number, int | float) and not isinstance(number, bool)
        if ok and integer and not isinstance(number, int):
            ok = False
        if not ok or (number <= low if above else number < low):  # type: ignore[operator]
            kind = "a whole number" if integer else "a number"
            bound = f"> {low:g}" if above else f">= {low:g}"
            raise ConfigError(f"{where}: must be {kind} {bound}, got {value!r}")
        return number  # type: ignore[return-value]

    parse.numeric = True  # type: ignore[attr-defined]
    return parse


def _kv_type(value: object, where: str) -> KvType:
    try:
        return KvType(str(value))
    except ValueError:
        choices = ", ".join(t.value for t in KvType)
        raise ConfigError(f"{where}: must be one of {choices}, got {value!r}") from None


def _recipe(value: object, where: str) -> str:
    name = _text(value, where)
    if name not in RECIPES:
        raise ConfigError(f"{where}: unknown recipe {name!r} (known: {', '.join(sorted(RECIPES))})")
    return name


def _choice(*choices: str) -> Parser:
    def parse(value: object, where: str) -> str:
        if value not in choices:
            raise ConfigError(f"{where}: must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return parse


def _patterns(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: must be a list of glob patterns (strings)")
    return tuple(value)


_TOP: dict[str, Parser] = {
    "db": _path,
    "model": _text,
    "chat_model": _text,
    "embedder": _text,
    "recipe": _recipe,
    "context": _number(MIN_CONTEXT, integer=True),
    "kv_type": _kv_type,
    "flash_attn": _boolean,
    "gpu_layers": _number(-1, integer=True),
    "kv_budget_gib": _number(0),
    "kv_disk_format": _choice("raw", "q8_rows"),
}
# config.toml [index] key -> (ParseLimits field, bytes per unit)
_INDEX_LIMITS = {
    "max_file_mib": ("file_bytes", MIB),
    "parse_timeout_s": ("seconds", 1),
    "parse_memory_mib": ("memory_bytes", MIB),
    "parse_output_mib": ("output_bytes", MIB),
}
_INDEX: dict[str, Parser] = {
    **{key: _number(0, above=True) for key in _INDEX_LIMITS},
    "ocr": _boolean,
    **{f"{kind}_max_mib": _number(0) for kind in DATA_KINDS},
    "include": _patterns,
    "exclude": _patterns,
    "skip_vendored": _boolean,
    "confirm_above_min": _number(0),
}
_SERVE: dict[str, Parser] = {
    "host": _text,
    "port": _number(0, integer=True),
    "api_key": _text,
    "queue_size": _number(1, integer=True),
    "max_body_bytes": _number(1, integer=True),
    "max_input_tokens": _number(1, integer=True),
    "max_tokens": _number(1, integer=True),
}


def read_config_file(path: Path) -> dict[str, object]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _table(config: Mapping[str, object], name: str, path: Path) -> Mapping[str, object]:
    table = config.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    return table


def _check_keys(
    table: Mapping[str, object], known: Mapping[str, object], prefix: str, path: Path
) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{path}: unknown key {prefix}{key} (known: {', '.join(known)})")


def load_settings(
    *,
    flags: Mapping[str, object] | None = None,
    serve_flags: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Resolve every setting once: flag > GRITDESK_<KEY> > config.toml > default. Flags
    given as None count as not given."""
    env = os.environ if environ is None else environ
    path = config_file or config_path()
    config = read_config_file(path)
    index_table = _table(config, "index", path)
    serve_table = _table(config, "serve", path)
    _check_keys({k: v for k, v in config.items() if k not in ("index", "serve")}, _TOP, "", path)
    _check_keys(index_table, _INDEX, "index.", path)
    _check_keys(serve_table, _SERVE, "serve.", path)
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    unknown = set(given) - set(_TOP)
    if unknown:
        raise TypeError(f"unknown settings: {sorted(unknown)}")

    top: dict[str, object] = {}
    for key, parse in _TOP.items():
        if key in given:
            top[key] = parse(given[key], _flag(key))
        elif env.get(_env(key)):
            top[key] = parse(_from_environment(parse, env[_env(key)]), _env(key))
        elif key in config:
            top[key] = parse(config[key], f"{path}: {key}")
    return Settings(
        **top,  # type: ignore[arg-type]
        index=_index_settings(index_table, path),
        serve=_serve_settings(serve_table, serve_flags or {}, env, path),
    )


def _index_settings(table: Mapping[str, object], path: Path) -> IndexSettings:
    values = {key: _INDEX[key](value, f"{path}: index.{key}") for key, value in table.items()}
    limits = ParseLimits()
    for key, (name, unit) in _INDEX_LIMITS.items():
        if key in values:
            number = values[key]
            limits = replace(limits, **{name: number if unit == 1 else int(number * unit)})  # type: ignore[operator]
    if "ocr" in values:
        limits = replace(limits, ocr=bool(values["ocr"]))
    selection = FileSelection()
    kind_limits = dict(selection.kind_limits)
    for kind in DATA_KINDS:
        if f"{kind}_max_mib" in values:
            kind_limits[kind] = int(values[f"{kind}_max_mib"] * MIB)  # type: ignore[operator]
    selection = FileSelection(
        kind_limits,
        values.get("include", ()),  # type: ignore[arg-type]
        values.get("exclude", ()),  # type: ignore[arg-type]
        bool(values.get("skip_vendored", selection.skip_vendored)),
    )
    confirm = IndexSettings().confirm_above_s
    if "confirm_above_min" in values:
        confirm = float(values["confirm_above_min"]) * 60  # type: ignore[arg-type]
    return IndexSettings(limits, selection, confirm)


def _serve_settings(
    table: Mapping[str, object], flags: Mapping[str, object], env: Mapping[str, str], path: Path
) -> ServeSettings:
    values: dict[str, object] = {}
    for key, parse in _SERVE.items():
        if flags.get(key) is not None:
            values[key] = parse(flags[key], _flag(key))
        elif key == "api_key" and env.get(API_KEY_ENV):
            values[key] = env[API_KEY_ENV]
        elif key in table:
            values[key] = parse(table[key], f"{path}: serve.{key}")
    return ServeSettings(**values)  # type: ignore[arg-type]
