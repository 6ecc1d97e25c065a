"""Saved KV caches and their records agree, whatever happens to the process or the file.

A crash between writing a blob and recording it leaves a file no row knows; a moved
database, a second path to the same database (a hard link here, a bind mount or another
mount point in life) or a copy must neither orphan nor delete the other's blobs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gritdesk.store.connection import open_database

CORPUS = Path(__file__).resolve().parents[2] / "app" / "gritdesk" / "demo_corpus"
QUESTION = "Hotel costs are refunded up to how many euros a night in Europe?"

# the CLI, dying (as a kill -9 would) right after writing its third blob, before recording it
CRASH_AFTER_THIRD_BLOB = """
import os
import gritdesk.store.kv_cache as kv_cache
_write = kv_cache.write_blob
_count = [0]
def _write_then_die(*args, **kwargs):
    size = _write(*args, **kwargs)
    _count[0] += 1
    if _count[0] == 3:
        os._exit(137)
    return size
kv_cache.write_blob = _write_then_die
from gritdesk.cli import main
main()
"""


def gritdesk(cache: Path, *args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code or "from gritdesk.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GRITDESK_CACHE_DIR": str(cache)},
    )


def folders(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "kv").iterdir() if p.is_dir())


def rows_and_files(db_path: Path, folder: Path) -> tuple[set[str], set[str], int, int]:
    db = open_database(db_path)
    try:
        rows = dict(db.execute("SELECT file, bytes FROM kv_blobs").fetchall())
    finally:
        db.close()
    files = {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.glob("*/*.gkv")}
    return set(rows), set(files), sum(rows.values()), sum(files.values())


def ask_hits(cache: Path, db: Path) -> int:
    proc = gritdesk(cache, "ask", QUESTION, "--db", str(db), "--json", "--max-tokens", "4")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["timings"]["kv_cache_hits"]


@pytest.fixture
def indexed(tmp_path: Path, tiny_model_path: Path) -> tuple[Path, Path]:
    cache, db = tmp_path / "cache", tmp_path / "a" / "index.db"
    proc = gritdesk(cache, "index", str(CORPUS), "--db", str(db), "--model", str(tiny_model_path))
    assert proc.returncode == 0, proc.stderr
    return cache, db


def test_a_crash_between_write_and_record_is_reconciled(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    cache, db = tmp_path / "cache", tmp_path / "index.db"
    args = ("index", str(CORPUS), "--db", str(db), "--model", str(tiny_model_path))
    crashed = gritdesk(cache, *args, code=CRASH_AFTER_THIRD_BLOB)
    assert crashed.returncode == 137, crashed.stderr
    [folder] = folders(cache)
    rows, files, _, _ = rows_and_files(db, folder)
    assert len(files - rows) == 1  # the blob written and never recorded
    (folder / "00").mkdir(exist_ok=True)
    (folder / "00" / ".interrupted.gkv.123.tmp").write_bytes(b"half a blob")
    an_hour_ago = time.time() - 3600
    for path in folder.glob("*/*"):
        os.utime(path, (an_hour_ago, an_hour_ago))  # older than the grace for writers

    assert gritdesk(cache, *args).returncode == 0  # the next run saves the rest, reconciles
    rows, files, row_bytes, file_bytes = rows_and_files(db, folder)
    assert rows == files and row_bytes == file_bytes and rows
    assert not list(folder.glob("*/.*.tmp"))

    # a blob deleted by hand: its row no longer counts against the budget
    gone = sorted(files)[0]
    (folder / gone).unlink()
    stats = gritdesk(cache, "cache", "stats", "--db", str(db), "--model", str(tiny_model_path))
    assert stats.returncode == 0, stats.stderr
    assert "1 records without a file dropped" in stats.stdout, stats.stdout
    rows, files, row_bytes, file_bytes = rows_and_files(db, folder)
    assert rows == files and row_bytes == file_bytes and gone not in rows


def test_a_moved_database_keeps_its_kv_caches(indexed: tuple[Path, Path], tmp_path: Path) -> None:
    cache, db = indexed
    moved = tmp_path / "elsewhere" / "moved.db"
    moved.parent.mkdir()
    shutil.move(db, moved)
    assert ask_hits(cache, moved) > 0  # before: a new, empty folder (and the old one orphaned)
    assert len(folders(cache)) == 1


def test_two_paths_to_one_database_share_one_folder(
    indexed: tuple[Path, Path], tmp_path: Path
) -> None:
    cache, db = indexed
    other_path = tmp_path / "mount2" / "index.db"
    other_path.parent.mkdir()
    os.link(db, other_path)  # same file, another path that does not resolve to the first
    hits = [ask_hits(cache, other_path), ask_hits(cache, db), ask_hits(cache, other_path)]
    assert all(h > 0 for h in hits), hits  # before: each path deleted the other's rows
    assert len(folders(cache)) == 1
    [folder] = folders(cache)
    rows, files, _, _ = rows_and_files(db, folder)
    assert rows == files


def test_a_copied_database_gets_its_own_folder(indexed: tuple[Path, Path], tmp_path: Path) -> None:
    cache, db = indexed
    copy = tmp_path / "copy.db"
    shutil.copyfile(db, copy)
    assert ask_hits(cache, copy) > 0  # a new id, and links to the blobs it knew
    assert len(folders(cache)) == 2
    assert ask_hits(cache, db) > 0  # the original's blobs were not touched
    gritdesk(cache, "cache", "clear", "--db", str(copy))
    assert ask_hits(cache, db) > 0  # clearing the copy's cache leaves the original's
    assert ask_hits(cache, copy) == 0
    for database in (db, copy):
        conn = open_database(database)
        (ident,) = conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        conn.close()
        rows, files, _, _ = rows_and_files(database, cache / "kv" / ident)
        assert rows == files


def test_a_folder_named_by_the_old_rule_is_taken_over(indexed: tuple[Path, Path]) -> None:
    """gritdesk before store ids named the folder by the database path: it is moved, not
    orphaned (nor its budget recomputed)."""
    import hashlib

    cache, db = indexed
    [folder] = folders(cache)
    old_name = hashlib.sha256(str(db.resolve()).encode()).hexdigest()[:16]
    (folder / "database").unlink()
    folder.rename(cache / "kv" / old_name)
    assert ask_hits(cache, db) > 0
    assert folders(cache) == [folder]
