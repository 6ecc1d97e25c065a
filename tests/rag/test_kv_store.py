"""The KV cache store: what it refuses, what it evicts, what a changed file invalidates."""

from __future__ import annotations

import ctypes
from pathlib import Path

import llama_cpp as ll
import pytest

from gritdesk.ingest.chunk import text_digest
from gritdesk.runtime.engine import Engine, EngineSettings
from gritdesk.store.connection import open_database
from gritdesk.store.kv_blob_format import KvBlobRejected, read_blob, write_blob
from gritdesk.store.kv_cache import KvCacheStore

TEXT = "The Aurora project ships its first release on the ninth of March."


@pytest.fixture()
def store(tmp_path: Path) -> KvCacheStore:
    return KvCacheStore(open_database(tmp_path / "index.db"), tmp_path / "kv", budget_bytes=1 << 30)


def test_blob_of_same_shaped_other_model_is_rejected(
    tiny_engine: Engine, tiny_b_model_path: Path, tmp_path: Path
) -> None:
    with Engine(tiny_b_model_path, EngineSettings(n_ctx=512)) as other:
        _, [foreign] = other.embed_documents_with_kv([TEXT])
        foreign_signature = other.kv_signature
    # llama.cpp alone accepts the foreign bytes: same shapes, no model identity in the blob
    buf = (ctypes.c_uint8 * len(foreign.data)).from_buffer_copy(foreign.data)
    assert ll.llama_state_seq_set_data(tiny_engine._ctx, buf, len(foreign.data), 1) > 0
    tiny_engine.reset()
    blob = tmp_path / "foreign.gkv"
    write_blob(blob, foreign_signature, foreign.tokens, foreign.data)
    assert foreign.tokens == tuple(tiny_engine.tokenize("<|embed|>\n" + TEXT, add_bos=True))
    with pytest.raises(KvBlobRejected, match="other model or settings"):
        read_blob(blob, tiny_engine.kv_signature, foreign.tokens)


def test_truncated_and_bit_flipped_blobs_are_rejected(tiny_engine: Engine, tmp_path: Path) -> None:
    _, [state] = tiny_engine.embed_documents_with_kv([TEXT])
    sig = tiny_engine.kv_signature
    blob = tmp_path / "good.gkv"
    size = write_blob(blob, sig, state.tokens, state.data)
    assert read_blob(blob, sig, state.tokens) == state.data
    data = blob.read_bytes()

    blob.write_bytes(data[: size - 100])
    with pytest.raises(KvBlobRejected, match="payload is"):
        read_blob(blob, sig, state.tokens)
    blob.write_bytes(data[:10])
    with pytest.raises(KvBlobRejected):
        read_blob(blob, sig, state.tokens)
    flipped = bytearray(data)
    flipped[-500] ^= 0x10
    blob.write_bytes(bytes(flipped))
    with pytest.raises(KvBlobRejected, match="checksum"):
        read_blob(blob, sig, state.tokens)
    blob.write_bytes(data)
    with pytest.raises(KvBlobRejected, match="other text"):
        read_blob(blob, sig, (*state.tokens[:-1], state.tokens[-1] + 1))
    with pytest.raises(KvBlobRejected, match="kv_type"):
        read_blob(blob, {**sig, "kv_type": "q8_0"}, state.tokens)


def test_store_deletes_a_rejected_blob_and_reports_a_miss(
    tiny_engine: Engine, store: KvCacheStore
) -> None:
    _, [state] = tiny_engine.embed_documents_with_kv([TEXT])
    key = text_digest(TEXT)
    assert store.put(key, tiny_engine.kv_signature, state.tokens, state.data)
    assert store.get(key, tiny_engine.kv_signature, state.tokens) == state.data
    [blob] = list(store.directory.rglob("*.gkv"))
    blob.write_bytes(blob.read_bytes()[:-7])
    assert store.get(key, tiny_engine.kv_signature, state.tokens) is None
    assert "payload is" in (store.last_rejection or "")
    assert not blob.exists() and store.stats().blobs == 0


def _disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def test_budget_evicts_least_recently_used(tiny_engine: Engine, tmp_path: Path) -> None:
    texts = [f"Chunk number {i} talks about topic {i} at some length." for i in range(4)]
    _, states = tiny_engine.embed_documents_with_kv(texts)
    sig = tiny_engine.kv_signature
    one_blob = len(states[0].data) + 1024
    db = open_database(tmp_path / "index.db")
    store = KvCacheStore(db, tmp_path / "kv", budget_bytes=int(one_blob * 2.5))
    keys = [text_digest(t) for t in texts]
    for i in range(3):
        assert store.put(keys[i], sig, states[i].tokens, states[i].data)
        assert _disk_bytes(store.directory) <= store.budget_bytes
    assert store.get(keys[0], sig, states[0].tokens) is None  # oldest, evicted by the third
    assert store.get(keys[1], sig, states[1].tokens) is not None  # now most recently used
    assert store.put(keys[3], sig, states[3].tokens, states[3].data)
    assert _disk_bytes(store.directory) <= store.budget_bytes
    assert store.get(keys[2], sig, states[2].tokens) is None  # least recently used went
    assert store.get(keys[1], sig, states[1].tokens) is not None
    assert store.get(keys[3], sig, states[3].tokens) is not None
    tiny = KvCacheStore(db, tmp_path / "kv", budget_bytes=100)
    assert not tiny.put(keys[0], sig, states[0].tokens, states[0].data)  # larger than the budget


def test_changed_source_file_invalidates_its_blobs(tiny_engine: Engine, tmp_path: Path) -> None:
    from gritdesk.ingest.indexer import IndexOptions, index_paths
    from gritdesk.rag.kv_saving_embedder import KvSavingEmbedder

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Alpha paragraph about invoices and payments.\n")
    (folder / "b.txt").write_text("Beta paragraph about the cafeteria opening hours.\n")
    db = open_database(tmp_path / "index.db")
    store = KvCacheStore(db, tmp_path / "kv")
    embedder = KvSavingEmbedder(tiny_engine, store)
    index_paths(db, embedder, [folder], IndexOptions(model_path=str(tiny_engine.path)))
    assert store.stats().blobs == 2
    old_hashes = {row[0] for row in db.execute("SELECT text_hash FROM chunks")}

    (folder / "a.txt").write_text("Alpha paragraph, rewritten: invoices are now paid weekly.\n")
    index_paths(db, embedder, [folder], IndexOptions(model_path=str(tiny_engine.path)))
    assert store.sweep_orphans() == 1
    new_hashes = {row[0] for row in db.execute("SELECT text_hash FROM chunks")}
    stale = (old_hashes - new_hashes).pop()
    assert (
        db.execute("SELECT count(*) FROM kv_blobs WHERE text_hash = ?", (stale,)).fetchone()[0] == 0
    )
    assert store.stats().blobs == 2  # b's blob kept, a's replaced by the new text's
    assert len(list(store.directory.rglob("*.gkv"))) == 2
