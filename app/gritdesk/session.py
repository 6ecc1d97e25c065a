"""What every index-backed command opens: the database, the model it was built with, the
KV cache store. One place, so `index`, `search`, `ask`, `chat` and `cache` agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import apsw

from gritdesk.config import ConfigError, load_config, require_model, resolve_db, resolve_model
from gritdesk.errors import GritdeskError
from gritdesk.paths import cache_dir
from gritdesk.runtime.engine import Engine, EngineSettings
from gritdesk.runtime.kv_state_codec import Q8RowsCodec
from gritdesk.runtime.recipes import Recipe, get_recipe
from gritdesk.store.connection import open_database
from gritdesk.store.kv_cache import DEFAULT_BUDGET_BYTES, KvCacheStore, kv_folder
from gritdesk.store.model_record import read_model_record


@dataclass
class SessionOptions:
    db: str | os.PathLike[str] | None = None
    model: str | os.PathLike[str] | None = None
    n_ctx: int | None = None
    kv_type: str | None = None
    flash_attn: bool | None = None
    kv_budget_gib: float | None = None
    kv_disk_format: str | None = None  # "raw" (as llama.cpp saves it) or "q8_rows"
    recipe: str | None = None  # flag, else config, else registry/GGUF key, else gritlm
    chat_model: str | os.PathLike[str] | None = None  # pair mode: a separate model answers


class EmbeddingOnlyModelError(GritdeskError):
    """The model's recipe only embeds and no chat model was given to answer."""


@dataclass
class Session:
    db_path: Path
    db: apsw.Connection
    engine: Engine | None = None  # embeds; also answers unless `chat_engine` is set
    kv_store: KvCacheStore | None = None
    chat_engine: Engine | None = None  # pair mode
    notices: list[str] = field(default_factory=list)

    @property
    def pair_mode(self) -> bool:
        return self.chat_engine is not None

    def require_answering_model(self) -> None:
        """An embedding-only recipe (E5, LLM2Vec...) answers only with a chat model beside it."""
        engine = self.engine
        if engine is not None and not self.pair_mode and not engine.recipe.generates:
            raise EmbeddingOnlyModelError(
                f"{engine.path.name} uses the embedding-only recipe {engine.recipe.name!r}: "
                "give a model to answer with --chat-model PATH"
            )

    def close(self) -> None:
        for engine in (self.engine, self.chat_engine):
            if engine is not None:
                engine.close()
        self.db.close()


def kv_cache_directory(db_path: Path, db: apsw.Connection | None = None) -> Path:
    """Blobs of one index live in their own folder, named by the id the database holds
    (see `kv_cache.kv_folder`); `db` is the open database, else it is opened for this."""
    if db is not None:
        return kv_folder(db, db_path, cache_dir() / "kv")
    conn = open_database(db_path)
    try:
        return kv_folder(conn, db_path, cache_dir() / "kv")
    finally:
        conn.close()


def _setting(options_value: object, key: str, default: object) -> object:
    if options_value is not None:
        return options_value
    return load_config().get(key, default)


def engine_settings(options: SessionOptions) -> EngineSettings:
    n_ctx = int(_setting(options.n_ctx, "context", 4096))  # type: ignore[arg-type]
    kv_type = str(_setting(options.kv_type, "kv_type", "f16"))
    flash = bool(_setting(options.flash_attn, "flash_attn", False))
    if n_ctx < 256:
        raise ConfigError(f"context {n_ctx} is too small (at least 256 tokens)")
    return EngineSettings(n_ctx=n_ctx, kv_type=kv_type, flash_attn=flash)


def kv_disk_codec(options: SessionOptions) -> Q8RowsCodec | None:
    """How saved KV rows are stored (runtime/kv_state_codec.py): "raw" (the default), or
    "q8_rows" (f16 rows as 8-bit blocks: 0.53x the disk, but an 8-bit cache's drift and a
    slower restore, benchmarks/kv_blob_formats.py)."""
    name = str(_setting(options.kv_disk_format, "kv_disk_format", "raw"))
    if name == "raw":
        return None
    if name == Q8RowsCodec.name:
        return Q8RowsCodec()
    raise ConfigError(f"kv_disk_format {name!r}: choose raw or {Q8RowsCodec.name}")


def open_session(options: SessionOptions, *, load_model: bool = True) -> Session:
    """Open the index and load its model: --model, else the one the index was built with,
    else GRITDESK_MODEL or config."""
    db_path = resolve_db(options.db)
    try:
        db = open_database(db_path)
    except apsw.Error as exc:
        raise GritdeskError(f"cannot open index database {db_path}: {exc}") from None
    session = Session(db_path, db)
    budget = _setting(options.kv_budget_gib, "kv_budget_gib", DEFAULT_BUDGET_BYTES / 2**30)
    folder = kv_cache_directory(db_path, db)
    session.kv_store = KvCacheStore(
        db, folder, int(float(budget) * 2**30), kv_disk_codec(options)  # type: ignore[arg-type]
    )
    if not load_model:
        return session
    # the flag, then the model the index was built with, then GRITDESK_MODEL / config
    model = resolve_model(options.model) if options.model else None
    record = read_model_record(db)
    if model is None:
        model = Path(record.path) if record is not None and record.path else resolve_model(None)
    try:
        path = require_model(model)
        settings = engine_settings(options)
        recipe = choose_recipe(path, options.recipe, record.recipe if record else None)
        session.engine = Engine(path, settings, recipe=recipe)
        chat = options.chat_model or load_config().get("chat_model")
        if chat:
            chat_path = resolve_model(chat)  # type: ignore[arg-type]
            assert chat_path is not None
            session.chat_engine = Engine(
                chat_path, settings, recipe=choose_recipe(chat_path, None, None)
            )
            session.notices.append(
                f"pair mode: {path.name} embeds, {chat_path.name} answers; "
                "no KV is shared, so answers use --cache off"
            )
        elif not session.engine.recipe.generates:
            session.notices.append(
                f"recipe {session.engine.recipe.name!r} only embeds: give --chat-model to answer"
            )
    except BaseException:
        session.close()
        raise
    return session


def choose_recipe(path: Path, flag: str | None, indexed_with: str | None) -> Recipe | None:
    """The flag, `recipe` in config, the recipe the index was built with, what `gritdesk
    models add/pull` recorded for this file, the recipe of a known build with this file
    name; None lets the engine take the GGUF's own
    `gritdesk.recipe` key, else GritLM."""
    name = flag or load_config().get("recipe") or indexed_with
    if not name:
        from gritdesk.models.catalog import load_catalog
        from gritdesk.models.installed import InstalledModels

        installed = InstalledModels().by_path(path)
        known = load_catalog().by_filename(path.name)  # a known build used by its path
        name = installed.recipe if installed is not None else known.recipe if known else None
    return get_recipe(str(name)) if name else None
