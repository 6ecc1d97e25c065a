"""A model's identity is a hash of every byte: two files differing only in the middle are
two models, so an index or a saved KV cache of one is never used with the other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gritdesk.runtime import gguf_check
from gritdesk.runtime.gguf_check import fingerprint, sampled_fingerprint
from gritdesk.store.connection import open_database
from gritdesk.store.kv_cache import KvCacheStore

GRITDESK = [sys.executable, "-c", "from gritdesk.cli import main; main()"]
CORPUS = Path(__file__).resolve().parents[2] / "app" / "gritdesk" / "demo_corpus"
QUESTION = "Hotel costs are refunded up to how many euros a night in Europe?"


def gritdesk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GRITDESK, *args], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )


def near_twin(model: Path, target: Path) -> Path:
    """A copy of `model` with one weight's lowest byte changed, between the blocks that the
    old sampled fingerprint read (the tiny model's weights are f32: still a valid model)."""
    data = bytearray(model.read_bytes())
    size = len(data)
    gap_start, gap_end = size * 8 // 17 + (1 << 16), size * 9 // 17
    offset = (gap_start + gap_end) // 2 // 4 * 4
    data[offset] ^= 0x01
    target.write_bytes(bytes(data))
    return target


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("twins")
    a = folder / "a.gguf"
    a.write_bytes(tiny_model_path.read_bytes())
    return a, near_twin(tiny_model_path, folder / "b.gguf")


def test_files_differing_in_the_middle_have_different_fingerprints(twins) -> None:
    a, b = twins
    assert sampled_fingerprint(a) == sampled_fingerprint(b)  # what collided before
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint(a) == fingerprint(a.with_name("a.gguf"))


def test_a_kv_blob_of_one_model_is_refused_with_the_other(twins, tmp_path: Path) -> None:
    a, b = twins
    store = KvCacheStore(open_database(tmp_path / "index.db"), tmp_path / "kv")
    tokens = [1, 2, 3]
    assert store.put("t" * 64, {"model": fingerprint(a), "kv_type": "f16"}, tokens, b"kv" * 99)
    assert store.get("t" * 64, {"model": fingerprint(a), "kv_type": "f16"}, tokens) is not None
    assert store.get("t" * 64, {"model": fingerprint(b), "kv_type": "f16"}, tokens) is None


def test_the_index_of_one_model_refuses_its_near_twin(twins, tmp_path: Path) -> None:
    a, b = twins
    db = str(tmp_path / "index.db")
    assert gritdesk("index", str(CORPUS), "--db", db, "--model", str(a)).returncode == 0
    proc = gritdesk("ask", QUESTION, "--db", db, "--model", str(b), "--json", "--max-tokens", "4")
    assert proc.returncode == 2, proc.stdout  # before: answered, restoring a's KV caches
    assert "was built with model" in proc.stderr and str(b) in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    ok = gritdesk("ask", QUESTION, "--db", db, "--model", str(a), "--json", "--max-tokens", "4")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["timings"]["kv_cache_hits"] > 0


def test_an_index_recorded_with_the_old_fingerprint_is_upgraded(twins, tmp_path: Path) -> None:
    a, _ = twins
    db_path = tmp_path / "index.db"
    assert gritdesk("index", str(CORPUS), "--db", str(db_path), "--model", str(a)).returncode == 0
    db = open_database(db_path)
    db.execute(  # as gritdesk recorded it before full hashes
        "UPDATE meta SET value = ? WHERE key = 'model_fingerprint'", (sampled_fingerprint(a),)
    )
    db.close()
    proc = gritdesk("search", "euros a night", "--db", str(db_path), "--model", str(a))
    assert proc.returncode == 0, proc.stderr
    db = open_database(db_path)
    (recorded,) = db.execute("SELECT value FROM meta WHERE key = 'model_fingerprint'").fetchone()
    assert recorded == fingerprint(a)


def test_the_hash_is_computed_once_per_file_identity(
    tmp_path: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRITDESK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(gguf_check, "_fingerprints", gguf_check._IdentityCache(
        "gguf-fingerprints.json", encode=str, decode=str
    ))
    model = tmp_path / "m.gguf"
    model.write_bytes(tiny_model_path.read_bytes())
    first = fingerprint(model)
    cached = json.loads((tmp_path / "cache" / "gguf-fingerprints.json").read_text())
    assert list(cached.values()) == [first]
    # what the cache says is what is returned, without reading the file again ...
    (key,) = cached
    (tmp_path / "cache" / "gguf-fingerprints.json").write_text(json.dumps({key: "from-cache"}))
    gguf_check._fingerprints.forget()
    assert fingerprint(model) == "from-cache"
    # ... until the file changes (new mtime): then it is hashed again
    os.utime(model, ns=(1, 1))
    assert fingerprint(model) == first


def test_importing_reads_no_cache_file() -> None:
    code = (
        "import gritdesk.runtime.gguf_check as g; "
        "assert g._summaries._entries is None and g._fingerprints._entries is None"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
