"""A full disk while saving KV caches costs the cache, never the index or the answer.

The CLI runs in a child whose blob writes fail with ENOSPC after the first bytes (the
temp file exists, then the disk is "full"): the same code path a real full disk takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "app" / "gritdesk" / "demo_corpus"
QUESTION = "Hotel costs are refunded up to how many euros a night in Europe?"

# io.open as the child sees it: writes to a KV blob's temp file fail with ENOSPC
FULL_DISK = """
import errno, io, os
_open = io.open
class _FullDisk:
    def __init__(self, raw):
        self._raw = raw
    def write(self, data):
        self._raw.write(bytes(data[:16]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self._raw.close()
    def __getattr__(self, name):
        return getattr(self._raw, name)
def _open_on_a_full_disk(file, mode="r", *args, **kwargs):
    handle = _open(file, mode, *args, **kwargs)
    if "w" in mode and str(file).endswith(".tmp") and ".gkv." in str(file):
        return _FullDisk(handle)
    return handle
io.open = _open_on_a_full_disk
from gritdesk.cli import main
main()
"""


def gritdesk(*args: str, full_disk: bool, cache: Path) -> subprocess.CompletedProcess[str]:
    code = FULL_DISK if full_disk else "from gritdesk.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GRITDESK_CACHE_DIR": str(cache)},
    )


def leftovers(cache: Path) -> list[Path]:
    return [
        p for p in cache.rglob("*")
        if p.is_file() and p.suffix in (".tmp", ".gkv") and "normal" not in p.parts
    ]


@pytest.fixture
def full_disk_index(tmp_path: Path, tiny_model_path: Path) -> tuple[Path, Path, dict]:
    db, cache = tmp_path / "index.db", tmp_path / "cache"
    args = ("index", str(CORPUS), "--db", str(db), "--model", str(tiny_model_path), "--json")
    proc = gritdesk(*args, full_disk=True, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return db, cache, json.loads(proc.stdout.strip().splitlines()[-1])


def test_index_keeps_every_file_when_no_kv_cache_can_be_written(
    full_disk_index: tuple[Path, Path, dict], tiny_model_path: Path
) -> None:
    db, cache, report = full_disk_index
    normal = gritdesk(
        "index", str(CORPUS), "--db", str(db.with_name("normal.db")), "--model",
        str(tiny_model_path), "--json", full_disk=False, cache=cache / "normal",
    )
    expected = json.loads(normal.stdout.strip().splitlines()[-1])
    assert expected["kv_saved"] > 0 and expected["kv_save_failed"] == 0
    assert (report["indexed"], report["chunks_written"], report["skipped"]) == (
        expected["indexed"], expected["chunks_written"], []
    ), report
    assert report["kv_saved"] == 0 and report["kv_save_failed"] == report["chunks_written"] > 0
    assert "No space left on device" in report["kv_save_failure"]
    assert leftovers(cache) == []  # no temp file left behind

    args = ("search", "euros a night", "--db", str(db), "--json")
    proc = gritdesk(*args, full_disk=False, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert any(h["path"].endswith("travel-policy.md") for h in json.loads(proc.stdout))


def test_ask_answers_when_its_kv_cannot_be_saved(
    full_disk_index: tuple[Path, Path, dict],
) -> None:
    db, cache, _ = full_disk_index
    args = ("ask", QUESTION, "--db", str(db), "--max-tokens", "4", "--json")
    proc = gritdesk(*args, full_disk=True, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    out = json.loads(proc.stdout)
    timings = out["timings"]
    assert timings["kv_cache_hits"] == 0
    assert timings["kv_cache_save_failures"] == timings["kv_cache_misses"] > 0
    assert any("No space left on device" in n for n in out["notices"])
    assert leftovers(cache) == []


def test_summary_line_names_the_failure(tmp_path: Path, tiny_model_path: Path) -> None:
    db, cache = tmp_path / "index.db", tmp_path / "cache"
    proc = gritdesk(
        "index", str(CORPUS), "--db", str(db), "--model", str(tiny_model_path),
        full_disk=True, cache=cache,
    )
    assert proc.returncode == 0, proc.stderr
    assert "KV caches not saved" in proc.stdout and "No space left on device" in proc.stdout
