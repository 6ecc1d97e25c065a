"""The q8_rows on-disk form of a KV state: exact outside the f16 rows, 8-bit close inside,
half the size, and any malformed packed blob is a miss, never a crash or a wrong cache.
(Its effect on answers is checked against the numpy reference in test_reference_layouts.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gritdesk.ingest.chunk import text_digest
from gritdesk.runtime.engine import Engine
from gritdesk.runtime.kv_state_codec import (
    KvStateLayoutError,
    Q8RowsCodec,
    f16_regions,
    pack_q8,
    unpack_q8,
)
from gritdesk.store.connection import open_database
from gritdesk.store.kv_cache import KvCacheStore

TEXT = "The Aurora project ships its first release on the ninth of March, after a review."


def test_round_trip_keeps_layout_and_is_close(tiny_engine: Engine) -> None:
    _, states = tiny_engine.embed_documents_with_kv([TEXT])
    raw = bytes(states[0].data)
    regions = f16_regions(raw)
    assert len(regions) == 2 * tiny_engine.n_layer  # K and V of every layer
    packed = pack_q8(raw)
    assert len(packed) < 0.7 * len(raw)  # tiny: positions and row padding weigh more
    back = unpack_q8(bytearray(packed))
    assert len(back) == len(raw)
    outside = np.ones(len(raw), bool)
    for offset, count, _ in regions:
        outside[offset : offset + 2 * count] = False
        a = np.frombuffer(raw, np.float16, count, offset).astype(np.float32)
        b = np.frombuffer(back, np.float16, count, offset).astype(np.float32)
        assert np.abs(a - b).max() <= np.abs(a).max() / 127 + 1e-3
    raw_bytes, back_bytes = np.frombuffer(raw, np.uint8), np.frombuffer(back, np.uint8)
    assert (raw_bytes[outside] == back_bytes[outside]).all()  # positions, types, sizes
    tiny_engine.reset()  # a new prompt: whatever an earlier test kept in sequence 0 goes
    tiny_engine.restore_at(states[0].__class__(states[0].tokens, back), 0)  # llama.cpp takes it


def test_malformed_packed_states_are_refused(tiny_engine: Engine) -> None:
    _, states = tiny_engine.embed_documents_with_kv([TEXT])
    packed = pack_q8(states[0].data)
    for bad in (b"", b"GKQ8", packed[:-7], b"XXXX" + packed[4:], packed + b"\0"):
        with pytest.raises(KvStateLayoutError):
            unpack_q8(bytearray(bad))
    with pytest.raises(KvStateLayoutError):
        f16_regions(bytes(states[0].data)[:-3])


def test_store_with_the_codec_restores_and_drops_a_corrupt_blob(
    tiny_engine: Engine, tmp_path: Path
) -> None:
    _, states = tiny_engine.embed_documents_with_kv([TEXT])
    state, sig, key = states[0], tiny_engine.kv_signature, text_digest(TEXT)
    store = KvCacheStore(open_database(tmp_path / "i.db"), tmp_path / "kv", codec=Q8RowsCodec())
    assert store.put(key, sig, state.tokens, state.data)
    assert store.stats().bytes < 0.7 * len(state.data) + 2048
    payload = store.get(key, sig, state.tokens)
    assert payload is not None and len(payload) == len(state.data)
    raw_store = KvCacheStore(store.db, store.directory)  # raw blobs are other keys
    assert raw_store.get(key, sig, state.tokens) is None
    (blob,) = store.directory.rglob("*.gkv")
    data = bytearray(blob.read_bytes())
    data[-40:] = bytes(40)  # right length, wrong content: the CRC catches it
    blob.write_bytes(bytes(data))
    assert store.get(key, sig, state.tokens) is None
    assert store.last_rejection and "checksum" in store.last_rejection
    assert store.stats().blobs == 0
