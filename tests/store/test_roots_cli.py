"""`gritdesk roots list` and `roots rm` through the real CLI, checked on the database file
and the KV folder: nothing of a removed root is left, the other root is untouched."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gritdesk.paths import cache_dir
from gritdesk.store.connection import open_database
from ingest.cli_runs import cli_env, gritdesk_command

pytestmark = pytest.mark.slow


def gritdesk(*args, env) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        gritdesk_command(*args), capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def store_id(db_path: Path) -> str:
    db = open_database(db_path)
    try:
        return db.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()[0]
    finally:
        db.close()


def orphans(db_path: Path) -> dict[str, int]:
    """Rows that point at nothing, counted on the real database file."""
    db = open_database(db_path)
    queries = {
        "sources": "SELECT count(*) FROM sources WHERE root_id NOT IN (SELECT id FROM roots)",
        "chunks": "SELECT count(*) FROM chunks WHERE source_id NOT IN (SELECT id FROM sources)",
        "vectors": "SELECT count(*) FROM chunk_vectors "
        "WHERE rowid NOT IN (SELECT id FROM chunks)",
        "fts": "SELECT count(*) FROM chunks_fts_docsize WHERE id NOT IN (SELECT id FROM chunks)",
        "kv_blobs": "SELECT count(*) FROM kv_blobs "
        "WHERE text_hash NOT IN (SELECT text_hash FROM chunks)",
        "parse_attempts": "SELECT count(*) FROM parse_attempts "
        "WHERE root_id NOT IN (SELECT id FROM roots)",
    }
    try:
        return {name: db.execute(sql).fetchone()[0] for name, sql in queries.items()}
    finally:
        db.close()


def test_roots_list_and_rm_leave_nothing_behind(tmp_path: Path, tiny_model_path: Path):
    env = cli_env(tmp_path / "data")
    db = tmp_path / "index.db"
    first, second = tmp_path / "first", tmp_path / "second"
    for root, word in ((first, "zanzibar"), (second, "kilimanjaro")):
        root.mkdir()
        for i in range(3):
            (root / f"note{i}.md").write_text(f"# Note {i}\n\nAbout {word} number {i}.\n")
        (root / "big.csv").write_text("a,b\n" + "1,2\n" * 400_000)  # skipped: over 1 MiB
        gritdesk("index", root, "--db", db, "--model", tiny_model_path, env=env)

    listed = json.loads(gritdesk("roots", "list", "--db", db, "--json", env=env).stdout)
    by_path = {Path(r["path"]).name: r for r in listed}
    assert set(by_path) == {"first", "second"}
    for row in by_path.values():
        assert (row["files"], row["skipped"], row["errors"]) == (3, 1, 0)
        assert row["chunks"] >= 3 and row["tokens"] > 0 and row["last_indexed_at"]
        assert row["vector_bytes"] > 0 and row["kv_bytes"] > 0 and row["kv_blobs"] >= 3
    text = gritdesk("roots", "list", "--db", db, env=env).stdout
    assert "3 files" in text and "KV caches" in text

    model = ("--db", db, "--model", tiny_model_path)
    everywhere = json.loads(gritdesk("search", "zanzibar", *model, "--json", env=env).stdout)
    assert "first" in Path(everywhere[0]["path"]).parent.name
    scoped = json.loads(
        gritdesk("search", "zanzibar", *model, "--root", second, "--json", env=env).stdout
    )
    assert scoped and all(Path(hit["path"]).parent == second.resolve() for hit in scoped)
    answer = json.loads(
        gritdesk("ask", "zanzibar?", *model, "--root", second, "--max-tokens", "2", "--json",
                 env=env).stdout
    )  # fmt: skip
    assert answer["sources"]
    assert all(Path(s["path"]).parent == second.resolve() for s in answer["sources"])

    kv_dir = cache_dir() / "kv" / store_id(db)  # the child's: it inherits this environment
    blobs_before = sorted(kv_dir.glob("*/*.gkv"))
    assert len(blobs_before) == sum(r["kv_blobs"] for r in by_path.values())
    removed = json.loads(gritdesk("roots", "rm", first, "--db", db, "--json", env=env).stdout)
    assert removed["sources"] == 4 and removed["chunks"] == by_path["first"]["chunks"]
    assert removed["kv_blobs"] == by_path["first"]["kv_blobs"]
    assert removed["kv_bytes_freed"] == by_path["first"]["kv_bytes"]

    assert orphans(db) == dict.fromkeys(orphans(db), 0)
    check = open_database(db)
    try:
        match = "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?"
        assert check.execute(match, ("zanzibar",)).fetchone()[0] == 0
        assert check.execute(match, ("kilimanjaro",)).fetchone()[0] == 3
        known = {row[0] for row in check.execute("SELECT file FROM kv_blobs")}
    finally:
        check.close()
    blobs_after = sorted(kv_dir.glob("*/*.gkv"))
    assert len(blobs_after) == len(blobs_before) - removed["kv_blobs"]
    assert {p.relative_to(kv_dir).as_posix() for p in blobs_after} == known

    listed = json.loads(gritdesk("roots", "list", "--db", db, "--json", env=env).stdout)
    assert [Path(r["path"]).name for r in listed] == ["second"]
    hits = json.loads(
        gritdesk("search", "kilimanjaro", "--db", db, "--model", tiny_model_path, "--json",
                 env=env).stdout
    )  # fmt: skip
    assert hits and all("second" in hit["path"] for hit in hits)

    proc = subprocess.run(
        gritdesk_command("roots", "rm", first, "--db", db),
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 2 and "not an indexed folder" in proc.stderr
    assert "Traceback" not in proc.stderr
