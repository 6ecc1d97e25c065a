"""What every index-backed command opens: the database, the model it was built with, the
KV cache store. One place, so `index`, `search`, `ask`, `chat` and `cache` agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import apsw

from gritdesk.errors import GritdeskError
from gritdesk.model_choice import (
    PAIR_EMBEDDER,
    default_chat_model,
    pair_embedder,
    require_model,
    resolve_model,
)
from gritdesk.paths import cache_dir
from gritdesk.runtime.engine import Engine
from gritdesk.runtime.kv_state_codec import Q8RowsCodec
from gritdesk.runtime.recipes import Recipe, get_recipe
from gritdesk.settings import Settings
from gritdesk.store.connection import open_database
from gritdesk.store.index_size import index_size
from gritdesk.store.kv_cache import KvCacheStore, kv_folder
from gritdesk.store.model_record import read_model_record


class EmbeddingOnlyModelError(GritdeskError):
    """The model's recipe only embeds and no chat model was given to answer."""


@dataclass
class Session:
    db_path: Path
    db: apsw.Connection
    kv_store: KvCacheStore
    settings: Settings
    engine: Engine | None = None  # embeds; also answers unless `chat_engine` is set
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


def kv_disk_codec(name: str) -> Q8RowsCodec | None:
    """How saved KV rows are stored (runtime/kv_state_codec.py): "raw" (the default), or
    "q8_rows" (f16 rows as 8-bit blocks: 0.53x the disk, but an 8-bit cache's drift and a
    slower restore, benchmarks/kv_blob_formats.py)."""
    return Q8RowsCodec() if name == Q8RowsCodec.name else None


def open_kv_store(db_path: Path, db: apsw.Connection, settings: Settings) -> KvCacheStore:
    """The KV blob store of the index database `db` at `db_path`, as the settings size it."""
    return KvCacheStore(
        db,
        kv_cache_directory(db_path, db),
        settings.kv_budget_bytes,
        kv_disk_codec(settings.kv_disk_format),
    )


def open_session(
    settings: Settings, *, load_model: bool = True, rebuilding: bool = False
) -> Session:
    """Open the index and load its model: the configured one (flag, environment, config),
    else the one the index was built with, else an installed one."""
    db_path = settings.db
    try:
        db = open_database(db_path)
    except apsw.Error as exc:
        raise GritdeskError(f"cannot open index database {db_path}: {exc}") from None
    session = Session(db_path, db, open_kv_store(db_path, db, settings), settings)
    if not load_model:
        return session
    record = read_model_record(db)
    model = resolve_model(settings.model) if settings.model else None
    if model is None:
        model = Path(record.path) if record is not None and record.path else resolve_model(None)
    try:
        path = require_model(model)
        indexed_here = (
            not rebuilding
            and record is not None
            and bool(record.path)
            and _same_file(record.path, path)
        )
        recipe = choose_recipe(path, settings.recipe, record.recipe if indexed_here else None)
        session.engine = Engine(path, settings.engine_settings(), recipe=recipe)
        if settings.chat_model:
            _pair(session, require_model(settings.chat_model), answering=True)
        elif not session.engine.recipe.generates:
            chat = default_chat_model()
            if chat is not None:
                _pair(session, chat, answering=True)
            else:
                session.notices.append(
                    f"recipe {session.engine.recipe.name!r} only embeds: give --chat-model to "
                    "answer"
                )
        elif not session.engine.recipe.trained_to_embed:
            _pair_with_embedder(session, settings.embedder, indexed_here=indexed_here)
    except BaseException:
        session.close()
        raise
    return session


def _same_file(recorded: str, path: Path) -> bool:
    try:
        return Path(recorded).resolve() == path.resolve()
    except OSError:
        return False


def _pair(session: Session, other: Path, *, answering: bool) -> None:
    """Pair mode: `other` answers beside the loaded embedder, or (`answering` False)
    embeds beside the loaded chat model."""
    assert session.engine is not None
    engine_settings = session.settings.engine_settings()
    if answering:
        session.chat_engine = Engine(
            other, engine_settings, recipe=choose_recipe(other, None, None)
        )
    else:
        session.chat_engine = session.engine
        session.engine = Engine(other, engine_settings, recipe=choose_recipe(other, None, None))
    embedder, chat = session.engine, session.chat_engine
    session.notices.append(f"pair mode: {embedder.path.name} embeds, {chat.path.name} answers")


def _pair_with_embedder(session: Session, setting: str, *, indexed_here: bool) -> None:
    """A chat model not trained to embed (its recipe says so) answers; a real embedder finds
    the passages. An index its own vectors built stays as it is until `index --rebuild`."""
    engine = session.engine
    assert engine is not None
    embedder = pair_embedder(setting)
    name = engine.path.name
    if embedder is None:
        if setting == "auto":
            session.notices.append(
                f"{name} was not trained to embed, so search leans on keywords: "
                f"`gritdesk models pull {PAIR_EMBEDDER}` gets a real embedder (90 MB)"
            )
        return
    if indexed_here and setting == "auto":
        size = index_size(session.db)
        session.notices.append(
            f"this index holds {name}'s own vectors; `gritdesk index --rebuild` re-embeds "
            f"its {size.files} files (about {size.tokens:,} tokens) with {embedder.name}, "
            "which finds passages better; `--dry-run` first estimates the time, and the old "
            "index keeps answering until the new one is complete"
        )
        return
    _pair(session, embedder, answering=False)


def choose_recipe(path: Path, configured: str | None, indexed_with: str | None) -> Recipe | None:
    """The configured recipe (flag, environment, config), the recipe the index was built
    with, what `gritdesk models add/pull` recorded for this file, the recipe of a known
    build with this file name; None lets the engine take the file's own
    (`chat_template.file_recipe_name`: its `gritdesk.recipe` key, else its chat template
    for a chat model, else GritLM)."""
    name = configured or indexed_with
    if not name:
        from gritdesk.models.catalog import load_catalog
        from gritdesk.models.installed import InstalledModels

        installed = InstalledModels().by_path(path)
        known = load_catalog().by_filename(path.name)  # a known build used by its path
        name = installed.recipe if installed is not None else known.recipe if known else None
    return get_recipe(str(name)) if name else None
