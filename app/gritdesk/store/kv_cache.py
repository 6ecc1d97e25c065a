"""Saved KV caches of chunks: blob files under a cache directory, indexed in SQLite, kept
under a disk budget by an admission rule that never churns while indexing.

The admission rule (issue 13):
- **Indexing admits into free room only.** A chunk's KV is written while the index embeds it
  only if it fits in what the budget has left; indexing never evicts. Once the budget is full
  the rest of the corpus is embedded without keeping KV, so indexing writes at most the
  budget, whatever the corpus size (LRU eviction wrote ~100x the budget for a corpus 10x it,
  all of it evicted again before any answer could use it). Which chunks get the first room
  is arbitrary: at index time nothing says which will be asked about.
- **Answers admit on a miss.** An answer whose chunk has no blob computes its KV (the
  recipe's document format, bidirectional pass) and admits it, evicting to make room.
- **Answers' hits count; eviction prefers blobs no answer has used.** Every restore by an
  answer counts a hit. Eviction takes blobs with no hits first (oldest first), then the
  least recently used of those answers did use. So the first room goes to chunks answers
  need, index-time blobs are the first to give way, and a blob that served an answer
  survives any number of index-time blobs.

Blobs are content-addressed by the chunk text's hash and the engine's KV signature
(model fingerprint, KV type, flash attention, ...): a changed chunk simply has another
key, and `sweep_orphans` deletes blobs no chunk refers to any more. What the bytes are
is the runtime's business; this module only stores, checks and evicts them.

Files and rows can disagree (a crash between writing a blob and recording it, a file
deleted by hand): `reconcile` makes them agree again. The folder is named by an id stored
in the database (`kv_folder`), not by its path, so a moved database keeps its blobs.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import apsw

from gritdesk.errors import GritdeskError
from gritdesk.store.connection import read_transaction, write_transaction
from gritdesk.store.kv_blob_format import KvBlobRejected, blob_size, read_blob, write_blob

DEFAULT_BUDGET_BYTES = 4 * 2**30  # table: migrations.m002_kv_blobs
# A blob file no row knows is deleted only once it is this old: another process may have
# written it a moment ago and be about to record it.
RECONCILE_GRACE_S = 600.0
OWNER_FILE = "database"  # in a KV folder: the path of the database it was last opened as
# Who offers a blob (see the admission rule above): indexing fills free room only, an answer
# may evict.
Admission = Literal["index", "answer"]


def signature_key(signature: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(dict(signature), sort_keys=True).encode()).hexdigest()


class KvCacheWriteError(GritdeskError):
    """A blob could not be written (disk full, quota, permissions). Nothing was recorded and
    no partial file is left: the KV is a cache, so callers go on without it."""


@dataclass(frozen=True)
class Reconciled:
    rows_dropped: int  # rows whose file was gone
    files_deleted: int  # blob files no row knew, and interrupted writes
    bytes_freed: int


@dataclass(frozen=True)
class KvCacheStats:
    blobs: int
    bytes: int
    budget_bytes: int
    by_kv_type: dict[str, tuple[int, int, int]]  # kv_type -> (blobs, bytes, tokens)

    def bytes_per_token(self, kv_type: str) -> float | None:
        _, size, tokens = self.by_kv_type.get(kv_type, (0, 0, 0))
        return size / tokens if tokens else None


class BlobCodec(Protocol):
    """How payloads look on disk when not as the runtime handed them (smaller, maybe lossy).
    Its name joins the signature: blobs of another disk format are other keys (misses)."""

    name: str

    def encode(self, payload: bytes | bytearray) -> bytes: ...

    def decode(self, stored: bytearray) -> bytearray: ...  # raises ValueError when malformed


class KvCacheStore:
    """Blob files + an index table; the total on disk stays within `budget_bytes`."""

    def __init__(
        self,
        db: apsw.Connection,
        directory: Path,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        codec: BlobCodec | None = None,
    ):
        if budget_bytes < 0:
            raise ValueError(f"KV cache budget must be >= 0 bytes, got {budget_bytes}")
        self.db = db
        self.directory = Path(directory)
        self.budget_bytes = budget_bytes
        self.codec = codec  # None: payloads stored as the runtime serialised them
        self.last_rejection: str | None = None

    def _on_disk(self, signature: Mapping[str, object]) -> Mapping[str, object]:
        return signature if self.codec is None else {**signature, "disk_format": self.codec.name}

    def _path(self, text_hash: str, signature: str) -> str:
        return f"{text_hash[:2]}/{text_hash}-{signature[:16]}.gkv"

    def get(
        self, text_hash: str, signature: Mapping[str, object], tokens: Sequence[int]
    ) -> bytearray | None:
        """The saved payload for an answer, or None (absent, or rejected: then it is deleted).
        A returned payload counts as a hit (answers are the only readers)."""
        signature = self._on_disk(signature)
        key = signature_key(signature)
        with read_transaction(self.db):
            row = self.db.execute(
                "SELECT id, file FROM kv_blobs WHERE text_hash = ? AND signature = ?",
                (text_hash, key),
            ).fetchone()
        if row is None:
            return None
        blob_id, file = row
        try:
            payload = read_blob(self.directory / file, signature, tokens)
            if self.codec is not None:
                payload = self.codec.decode(payload)
        except (KvBlobRejected, FileNotFoundError, ValueError) as exc:
            self.last_rejection = str(exc)
            self._delete([(blob_id, file)])
            return None
        with write_transaction(self.db):
            self.db.execute(
                "UPDATE kv_blobs SET last_used_at = ?, hits = hits + 1 WHERE id = ?",
                (time.time(), blob_id),
            )
        return payload

    def free_bytes(self) -> int:
        """What the budget has left (indexing admits blobs into this room only)."""
        with read_transaction(self.db):
            total = self.db.execute("SELECT coalesce(sum(bytes), 0) FROM kv_blobs").fetchone()[0]
        return self.budget_bytes - total

    def put(
        self,
        text_hash: str,
        signature: Mapping[str, object],
        tokens: Sequence[int],
        payload: bytes,
        *,
        by: Admission = "answer",
    ) -> bool:
        """Save a payload under the admission rule (module docstring); True if it is kept.

        `by="index"`: kept only if it fits in the free room (nothing is evicted; a blob already
        saved for this text is kept as it is, not rewritten). `by="answer"`: first evicts blobs
        no answer has used, then the least recently used, until it fits; it counts one hit.
        Returns False (saving nothing) when it does not fit (or is larger than the whole
        budget); raises KvCacheWriteError when the file cannot be written."""
        signature = self._on_disk(signature)
        if self.codec is not None:
            payload = self.codec.encode(payload)
        key = signature_key(signature)
        file = self._path(text_hash, key)
        size = blob_size(signature, tokens, payload)
        if size > self.budget_bytes:
            return False
        evicted: list[tuple[int, str]] = []
        with write_transaction(self.db):
            if by == "index" and self.db.execute(
                "SELECT 1 FROM kv_blobs WHERE text_hash = ? AND signature = ?", (text_hash, key)
            ).fetchone():
                return True
            self.db.execute(
                "DELETE FROM kv_blobs WHERE text_hash = ? AND signature = ?", (text_hash, key)
            )
            total = self.db.execute("SELECT coalesce(sum(bytes), 0) FROM kv_blobs").fetchone()[0]
            if by == "index" and total + size > self.budget_bytes:
                return False
            for blob_id, blob_file, blob_bytes in self.db.execute(
                "SELECT id, file, bytes FROM kv_blobs ORDER BY (hits > 0), last_used_at, id"
            ).fetchall():
                if total + size <= self.budget_bytes:
                    break
                evicted.append((blob_id, blob_file))
                total -= blob_bytes
            self.db.executemany("DELETE FROM kv_blobs WHERE id = ?", [(i,) for i, _ in evicted])
        for _, blob_file in evicted:
            (self.directory / blob_file).unlink(missing_ok=True)
        try:
            written = write_blob(self.directory / file, signature, tokens, payload)
        except OSError as exc:
            raise KvCacheWriteError(
                f"could not save a KV cache in {self.directory}: {exc.strerror or exc}"
            ) from exc
        now = time.time()
        with write_transaction(self.db):
            self.db.execute(
                "INSERT OR REPLACE INTO kv_blobs (text_hash, signature, kv_type, file, bytes, "
                "n_tokens, created_at, last_used_at, hits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    text_hash,
                    key,
                    str(signature.get("kv_type", "")),
                    file,
                    written,
                    len(tokens),
                    now,
                    now,
                    1 if by == "answer" else 0,
                ),
            )
        return True

    def _delete(self, rows: Sequence[tuple[int, str]]) -> None:
        with write_transaction(self.db):
            self.db.executemany("DELETE FROM kv_blobs WHERE id = ?", [(i,) for i, _ in rows])
        for _, file in rows:
            (self.directory / file).unlink(missing_ok=True)

    def sweep_orphans(self) -> int:
        """Delete blobs whose text no chunk holds any more (changed or removed files)."""
        with read_transaction(self.db):
            rows = self.db.execute(
                "SELECT id, file FROM kv_blobs "
                "WHERE text_hash NOT IN (SELECT text_hash FROM chunks)"
            ).fetchall()
        if rows:
            self._delete(rows)
        return len(rows)

    def reconcile(self, *, grace_s: float = RECONCILE_GRACE_S) -> Reconciled:
        """Make rows and files agree: drop rows whose file is gone (the budget counted bytes
        that are not there), delete files no row knows and temp files of interrupted
        writes, once older than `grace_s` (a concurrent `put` records its file right after
        writing it)."""
        with read_transaction(self.db):
            rows = self.db.execute("SELECT id, file FROM kv_blobs").fetchall()
        known = {file for _, file in rows}
        gone = [(i, file) for i, file in rows if not (self.directory / file).is_file()]
        if gone:
            with write_transaction(self.db):
                self.db.executemany(
                    "DELETE FROM kv_blobs WHERE id = ? AND file = ?", [(i, f) for i, f in gone]
                )
        deleted = freed = 0
        cutoff = time.time() - grace_s
        for path in [*self.directory.glob("*/*.gkv"), *self.directory.glob("*/.*.tmp")]:
            if path.relative_to(self.directory).as_posix() in known:
                continue
            try:
                st = path.stat()
                if st.st_mtime > cutoff:
                    continue
                path.unlink()
            except OSError:
                continue  # gone meanwhile, or not ours to delete: the next run looks again
            deleted += 1
            freed += st.st_size
        return Reconciled(len(gone), deleted, freed)

    def stats(self) -> KvCacheStats:
        with read_transaction(self.db):
            total = self.db.execute(
                "SELECT count(*), coalesce(sum(bytes), 0) FROM kv_blobs"
            ).fetchone()
            by_type = {
                kv_type: (n, size, tokens)
                for kv_type, n, size, tokens in self.db.execute(
                    "SELECT kv_type, count(*), sum(bytes), sum(n_tokens) "
                    "FROM kv_blobs GROUP BY kv_type"
                )
            }
        return KvCacheStats(total[0], total[1], self.budget_bytes, by_type)

    def clear(self) -> int:
        with read_transaction(self.db):
            rows = self.db.execute("SELECT id, file FROM kv_blobs").fetchall()
        self._delete(rows)
        for stray in [*self.directory.glob("*/*.gkv"), *self.directory.glob("*/.*.tmp")]:
            stray.unlink(missing_ok=True)  # files no row knows: interrupted writes
        return len(rows)


def store_id(db: apsw.Connection) -> str:
    """The random id this database holds (migrations.m004_store_id)."""
    with read_transaction(db):
        row = db.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
    if row is None:
        raise RuntimeError("database without a store_id: its migrations did not run")
    return str(row[0])


def kv_folder(db: apsw.Connection, db_path: Path, parent: Path) -> Path:
    """The folder under `parent` holding this database's KV blobs: `parent/<store id>`.

    The id travels with the database, so a moved database, or one reached through two mount
    paths, finds its blobs. A *copy* carries the id too: when the folder was last used by
    another database file that still exists and holds the same id, this one takes a new id
    and a folder of its own, starting with hard links to the blobs its rows name. A folder
    named after the database path (gritdesk before store ids) is moved into place.
    """
    here = Path(db_path).expanduser().resolve()
    ident = store_id(db)
    folder = parent / ident
    owner_file = folder / OWNER_FILE
    try:
        owner: str | None = owner_file.read_text()
    except OSError:
        owner = None
    if owner is not None and owner != str(here) and _is_live_copy(Path(owner), here, ident):
        new_ident = secrets.token_hex(16)
        try:
            _link_blobs(db, folder, parent / new_ident)
            with write_transaction(db):
                db.execute("UPDATE meta SET value = ? WHERE key = 'store_id'", (new_ident,))
        except apsw.Error:
            pass  # a read-only copy keeps sharing the original's folder
        else:
            ident, folder, owner = new_ident, parent / new_ident, None
            owner_file = folder / OWNER_FILE
    if not folder.exists():
        legacy = parent / hashlib.sha256(str(here).encode()).hexdigest()[:16]
        try:
            if legacy.is_dir():
                os.rename(legacy, folder)
        except OSError:
            pass  # another process moved it first, or it cannot be moved: start empty
    if owner != str(here):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{OWNER_FILE}.{os.getpid()}.tmp"
            tmp.write_text(str(here))
            os.replace(tmp, owner_file)
        except OSError:
            pass  # only copy detection needs it; a read-only cache still works
    return folder


def _link_blobs(db: apsw.Connection, source: Path, target: Path) -> None:
    """Give `target` the blobs `db`'s rows name in `source`, as hard links: blob files are
    never changed in place (written whole, then renamed), so two folders can share them at
    no cost in space. Rows whose file cannot be linked are dropped."""
    with read_transaction(db):
        rows = db.execute("SELECT id, file FROM kv_blobs").fetchall()
    lost = []
    for blob_id, file in rows:
        try:
            (target / file).parent.mkdir(parents=True, exist_ok=True)
            os.link(source / file, target / file)
        except FileExistsError:
            pass
        except OSError:
            lost.append((blob_id,))
    if lost:
        with write_transaction(db):
            db.executemany("DELETE FROM kv_blobs WHERE id = ?", lost)


def _is_live_copy(other: Path, here: Path, ident: str) -> bool:
    """`other` is another database file (not `here` by another path) holding `ident`."""
    try:
        if not other.is_file() or os.path.samefile(other, here):
            return False
        conn = apsw.Connection(str(other), flags=apsw.SQLITE_OPEN_READONLY)
    except (OSError, apsw.Error):
        return False
    try:
        conn.set_busy_timeout(2000)
        row = conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        return row is not None and row[0] == ident
    except apsw.Error:
        return False
    finally:
        conn.close()
