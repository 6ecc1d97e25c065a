"""Which model an index was built with, so vectors from two models never get mixed.

The first index run records the model (fingerprint, path, dimension, recipe) in
`meta` and creates the vector table for that dimension. Every later run and every
search compares fingerprints and refuses a different model with a message that names
both and says how to rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import apsw

from gritdesk.errors import GritdeskError
from gritdesk.runtime.protocols import DocumentEmbedder
from gritdesk.runtime.recipes import DEFAULT_RECIPE
from gritdesk.store.connection import write_transaction
from gritdesk.store.vectors import create_vector_table, drop_vector_table


@dataclass(frozen=True)
class ModelRecord:
    fingerprint: str
    path: str | None  # the GGUF the index was built with; a search without --model uses it
    embedding_dim: int
    recipe: str
    # a loaded model's fingerprint as gritdesk computed it before full-file hashes: an index
    # recorded with it is recognised once and upgraded to the full hash
    legacy_fingerprint: str | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls, embedder: DocumentEmbedder, path: str | None = None, recipe: str | None = None
    ) -> ModelRecord:
        """The record for a loaded model.

        `path` and `recipe` default to the embedder's `path` (or `model_path`) and
        `recipe.name` attributes when it has them (the Engine does; the protocol does not
        require them).
        """
        if path is None:
            found = getattr(embedder, "path", None) or getattr(embedder, "model_path", None)
            path = str(found) if found else None
        if recipe is None:
            recipe = getattr(getattr(embedder, "recipe", None), "name", None) or DEFAULT_RECIPE
        legacy = getattr(embedder, "legacy_fingerprint", None)
        return cls(embedder.fingerprint, path, embedder.embedding_dim, recipe, legacy)

    def same_embeddings_as(self, other: ModelRecord) -> bool:
        """Vectors are comparable only from the same file, dimension and embedding recipe."""
        mine = (self.fingerprint, self.embedding_dim, self.recipe)
        return mine == (other.fingerprint, other.embedding_dim, other.recipe)

    def recorded_by_older_gritdesk(self, recorded: ModelRecord) -> bool:
        """`recorded` is this model under the sampled fingerprint of gritdesk before full
        hashes (the same file, dimension and recipe as far as that fingerprint can tell)."""
        return (
            self.legacy_fingerprint is not None
            and recorded.fingerprint == self.legacy_fingerprint
            and (recorded.embedding_dim, recorded.recipe) == (self.embedding_dim, self.recipe)
        )


class ModelMismatchError(GritdeskError):
    """The loaded model is not the one the index was built with."""

    def __init__(self, db_path: str, recorded: ModelRecord, loaded: ModelRecord) -> None:
        self.recorded = recorded
        self.loaded = loaded
        super().__init__(
            f"the index {db_path} was built with model {recorded.path or '(unknown path)'} "
            f"(fingerprint {recorded.fingerprint[:16]}, {recorded.embedding_dim}-d, "
            f"recipe {recorded.recipe}), but the loaded model is "
            f"{loaded.path or '(unknown path)'} (fingerprint {loaded.fingerprint[:16]}, "
            f"{loaded.embedding_dim}-d, recipe {loaded.recipe}). Vectors from different "
            f"models cannot be compared. Use --model {recorded.path or '<the original model>'} "
            f"to use this index, or re-embed everything with the new model: "
            f"gritdesk index --rebuild --model {loaded.path or '<model.gguf>'} --db {db_path}"
        )


class EmptyIndexError(GritdeskError):
    """Nothing has been indexed into this database yet."""


_KEYS = ("model_fingerprint", "model_path", "embedding_dim", "recipe")


def read_model_record(conn: apsw.Connection) -> ModelRecord | None:
    """The model this index was built with, or None for an index with no model yet."""
    values = dict(
        conn.execute(
            f"SELECT key, value FROM meta WHERE key IN ({', '.join('?' * len(_KEYS))})", _KEYS
        ).fetchall()
    )
    if "model_fingerprint" not in values:
        return None
    return ModelRecord(
        fingerprint=values["model_fingerprint"],
        path=values.get("model_path") or None,
        embedding_dim=int(values["embedding_dim"]),
        recipe=values.get("recipe", DEFAULT_RECIPE),
    )


def database_path(conn: apsw.Connection) -> str:
    return conn.filename or "(in-memory database)"


def check_model(conn: apsw.Connection, loaded: ModelRecord) -> ModelRecord:
    """Raise ModelMismatchError unless the index was built with `loaded` (or EmptyIndexError)."""
    recorded = read_model_record(conn)
    if recorded is None:
        raise EmptyIndexError(
            f"nothing has been indexed into {database_path(conn)} yet: run gritdesk index PATH"
        )
    if loaded.recorded_by_older_gritdesk(recorded):
        return _upgrade_fingerprint(conn, recorded, loaded)
    if not recorded.same_embeddings_as(loaded):
        raise ModelMismatchError(database_path(conn), recorded, loaded)
    return recorded


def _upgrade_fingerprint(
    conn: apsw.Connection, recorded: ModelRecord, loaded: ModelRecord
) -> ModelRecord:
    with write_transaction(conn):
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'model_fingerprint' AND value = ?",
            (loaded.fingerprint, recorded.fingerprint),
        )
    return replace(recorded, fingerprint=loaded.fingerprint)


def bind_model(conn: apsw.Connection, loaded: ModelRecord) -> ModelRecord:
    """Record `loaded` as this index's model (first run) or check it matches the recorded one.

    A model whose file moved keeps its fingerprint: the recorded path is updated.
    """
    with write_transaction(conn):
        recorded = read_model_record(conn)
        if recorded is None:
            _write_meta(conn, loaded)
            create_vector_table(conn, loaded.embedding_dim)
            return loaded
        if loaded.recorded_by_older_gritdesk(recorded):
            conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'model_fingerprint'", (loaded.fingerprint,)
            )
            recorded = replace(recorded, fingerprint=loaded.fingerprint)
        if not recorded.same_embeddings_as(loaded):
            raise ModelMismatchError(database_path(conn), recorded, loaded)
        if loaded.path and loaded.path != recorded.path and Path(loaded.path).exists():
            conn.execute("UPDATE meta SET value = ? WHERE key = 'model_path'", (loaded.path,))
            return loaded
        return recorded


def clear_index(conn: apsw.Connection) -> None:
    """Forget every source, chunk and vector and the recorded model; keep the roots.

    For `gritdesk index --rebuild`: the next index run records the new model and
    re-embeds everything under the known roots (see `sources.list_roots`).
    """
    with write_transaction(conn):
        drop_vector_table(conn)
        conn.execute(
            """
            DELETE FROM chunks;
            DELETE FROM sources;
            DELETE FROM parse_attempts;
            INSERT INTO chunks_fts(chunks_fts) VALUES ('delete-all');
            DELETE FROM meta
            WHERE key IN ('model_fingerprint', 'model_path', 'embedding_dim', 'recipe');
            """
        )


def _write_meta(conn: apsw.Connection, record: ModelRecord) -> None:
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [
            ("model_fingerprint", record.fingerprint),
            ("model_path", record.path or ""),
            ("embedding_dim", str(record.embedding_dim)),
            ("recipe", record.recipe),
        ],
    )
