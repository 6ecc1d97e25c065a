"""Hostile folders through the real `gritdesk index` (issue 11, items 1-4, 7 and watch).

Each test builds the input on disk, runs the CLI in a subprocess and checks that the
run finishes, indexes the good files, names each bad one with its reason, reads
nothing outside the root and loses nothing already indexed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gritdesk.store.connection import open_database
from ingest.cli_runs import cli_env, gritdesk_command, run_index, skip_reasons
from ingest.fixture_files import make_docx, make_pdf
from ingest.hostile_files import (
    BACKTRACKING_IGNORE,
    BACKTRACKING_NAME,
    markdown_heading_spaces,
    nested_html,
    one_char_lines,
    pdf_shared_content_stream,
    write_docx_bomb,
)

pytestmark = pytest.mark.slow

BAD_NAME = os.fsdecode(b"caf\xe9 latin1 name.txt")  # not UTF-8: a surrogate-escaped str
LIMITS = """
[index]
parse_timeout_s = 20
parse_memory_mib = 768
parse_output_mib = 32
"""


def sources(db: Path) -> dict[str, tuple[str, str | None]]:
    """rel_path -> (status, reason) of every source, paths as the file system names them."""
    conn = open_database(db)
    try:
        rows = conn.execute("SELECT rel_path, status, reason FROM sources").fetchall()
    finally:
        conn.close()
    return {os.fsdecode(rel) if isinstance(rel, bytes) else rel: (s, r) for rel, s, r in rows}


def chunk_texts(db: Path) -> str:
    conn = open_database(db)
    try:
        return "\n".join(row[0] for row in conn.execute("SELECT text FROM chunks"))
    finally:
        conn.close()


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


# --- 2: a file name that is not UTF-8 ---------------------------------------------------


def test_non_utf8_name_is_indexed_and_the_run_goes_on(tmp_path: Path, tiny_model_path: Path):
    root = tmp_path / "notes"
    root.mkdir()
    (root / BAD_NAME).write_text("croissant recipe from an old zip\n")
    (root / "later.txt").write_text("a file sorted after the odd name\n")
    (root / "gone.txt").write_text("this file will be deleted\n")
    db = tmp_path / "index.db"

    report, _ = run_index(tiny_model_path, db, root)
    assert report["indexed"] == 3, report
    assert sources(db)[BAD_NAME] == ("indexed", None)  # stored losslessly
    assert "croissant" in chunk_texts(db)

    (root / "gone.txt").unlink()
    report, _ = run_index(tiny_model_path, db, root)
    assert (report["unchanged"], report["removed"]) == (2, 1), report
    assert set(sources(db)) == {BAD_NAME, "later.txt"}

    search = subprocess.run(
        gritdesk_command("search", "croissant recipe", "--db", db, "--model", tiny_model_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert search.returncode == 0, search.stderr
    assert "caf\ufffd latin1 name.txt" in search.stdout  # shown with a replacement character


# --- 7: a root that is missing ----------------------------------------------------------


def test_missing_root_keeps_its_index(tmp_path: Path, tiny_model_path: Path):
    drive, other = tmp_path / "drive", tmp_path / "other"
    for folder in (drive, other):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "a.md").write_text(f"# {folder.name}\n\nkept words\n")
        (folder / "b.txt").write_text("more kept words\n")
    db = tmp_path / "index.db"
    run_index(tiny_model_path, db, drive)
    run_index(tiny_model_path, db, other)
    before = chunk_texts(db)

    drive.rename(tmp_path / "unmounted")  # the drive's folder is gone
    (other / "b.txt").unlink()  # a real deletion in a readable root still counts
    report, _ = run_index(tiny_model_path, db)  # every known root
    assert report["removed"] == 1, report
    assert any(
        s["path"] == str(drive) and "missing" in s["reason"] for s in report["skipped"]
    ), report
    assert {"sub/a.md", "b.txt"} <= set(sources(db)), "the missing root's files were dropped"
    assert "# drive" in chunk_texts(db) and "# drive" in before

    (tmp_path / "unmounted").rename(drive)  # back: nothing to redo
    report, _ = run_index(tiny_model_path, db, drive)
    assert (report["indexed"], report["unchanged"]) == (0, 2), report


# --- 3: a folder swapped for a symlink after the scan -----------------------------------

_SWAP_HOOK = """
import os, sys
done = []
def in_the_run():  # not the estimate made before it, which reads files too
    frame = sys._getframe()  # the run reads on its preparing thread, in prepare.py
    while frame is not None:
        if frame.f_code.co_filename.endswith("prepare.py"):
            return True
        frame = frame.f_back
    return False
def swap(event, args):
    if event == "open" and not done and str(args[0]).endswith("/a-first.txt") and in_the_run():
        done.append(1)
        os.rename({sub!r}, {sub!r} + "-moved")
        os.symlink({outside!r}, {sub!r})
sys.addaudithook(swap)
"""


def test_folder_swapped_for_symlink_mid_run_is_not_read(tmp_path: Path, tiny_model_path: Path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "a-first.txt").write_text("read first, while the swap happens\n")
    (root / "sub" / "note.txt").write_text("the real note inside the root\n")
    (outside / "note.txt").write_text("private words outside the root\n")
    hook = _SWAP_HOOK.format(sub=str(root / "sub"), outside=str(outside))
    command = gritdesk_command(
        "index", root, "--db", tmp_path / "i.db", "--model", tiny_model_path, "--json"
    )
    command[2] = hook + command[2]  # the swap runs inside the CLI process, right after the scan
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert (root / "sub").is_symlink(), "the swap did not happen"
    assert "private" not in chunk_texts(tmp_path / "i.db")
    assert "changed" in skip_reasons(report).get("note.txt", ""), report


# --- 4: parsers without bounds, all hostile files together ------------------------------


def _hostile_folder(root: Path) -> dict[str, str]:
    """Write good and hostile files; return the hostile ones that must be skipped, by name,
    with a word their reason must contain."""
    root.mkdir()
    (root / "good.md").write_text("# Good\n\nplain markdown words\n")
    (root / "good.txt").write_text("plain text words\n")
    (root / "good.pdf").write_bytes(make_pdf([["pdf words on a page"]]))
    (root / "good.docx").write_bytes(make_docx([(None, "docx words in a paragraph")]))
    (root / BAD_NAME).write_text("odd name words\n")
    (root / "spaces.md").write_bytes(markdown_heading_spaces())  # quadratic heading regex
    (root / "nested.html").write_bytes(nested_html(100_000))  # quadratic parent walk
    (root / "shared.pdf").write_bytes(pdf_shared_content_stream(pages=2000, ops=2000))
    (root / ".gitignore").write_text(BACKTRACKING_IGNORE)
    (root / BACKTRACKING_NAME).write_text("a name the ignore pattern backtracks on\n")
    write_docx_bomb(root / "bomb.docx", inflated_bytes=1 << 30)
    (root / "lines.txt").write_bytes(one_char_lines())
    (root / "slow.pdf").write_bytes(pdf_shared_content_stream(pages=8, ops=300_000, shared=False))
    return {"bomb.docx": "MiB", "lines.txt": "MiB", "slow.pdf": "took over 20 s"}


def test_hostile_files_are_bounded_named_and_not_retried(tmp_path: Path, tiny_model_path: Path):
    root = tmp_path / "hostile"
    bad = _hostile_folder(root)
    db = tmp_path / "index.db"
    env = cli_env(
        tmp_path / "data",
        LIMITS,
        GRITDESK_TEST_AUDIT=tmp_path / "opened-1.log",
        GRITDESK_TEST_RUSAGE=tmp_path / "rusage.txt",
    )

    report, _ = run_index(tiny_model_path, db, root, env=env, timeout=600)
    reasons = skip_reasons(report)
    for name, word in bad.items():
        assert word in reasons.get(name, ""), (name, reasons)
    state = sources(db)
    good = set(state) - set(bad) - {".gitignore"}
    assert len(good) == 9
    assert all(state[name] == ("indexed", None) for name in good), state
    own_kib, children_kib = map(int, (tmp_path / "rusage.txt").read_text().split())
    assert own_kib < 1024 * 1024, "the indexer itself held over 1 GiB"
    assert children_kib < 1024 * 1024, "a parser went past its memory limit"

    env["GRITDESK_TEST_AUDIT"] = str(tmp_path / "opened-2.log")
    again, _ = run_index(tiny_model_path, db, root, env=env, timeout=600)
    assert again["indexed"] == 0 and again["unchanged"] == len(state), again
    assert skip_reasons(again) == reasons
    opened = (tmp_path / "opened-2.log").read_text().splitlines()
    assert not [p for p in opened if Path(p).name in bad], "an unchanged bad file was retried"


def test_interrupted_parse_is_not_retried(tmp_path: Path, tiny_model_path: Path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "slow.pdf").write_bytes(pdf_shared_content_stream(pages=8, ops=300_000, shared=False))
    (root / "good.txt").write_text("plain text words\n")
    db = tmp_path / "index.db"
    env = cli_env(tmp_path / "data", LIMITS.replace("= 20", "= 600"))
    proc = subprocess.Popen(
        gritdesk_command("index", root, "--db", db, "--model", tiny_model_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        started = wait_for(
            lambda: db.exists() and _attempts(db) > 0, timeout=120
        )  # the parse has run long enough to be marked
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=60) == 130
        assert started
    finally:
        proc.kill()
        proc.wait()

    env["GRITDESK_TEST_AUDIT"] = str(tmp_path / "opened.log")
    report, _ = run_index(tiny_model_path, db, root, env=env)
    assert "interrupted" in skip_reasons(report).get("slow.pdf", ""), report
    opened = (tmp_path / "opened.log").read_text().splitlines()
    assert not [p for p in opened if p.endswith("slow.pdf")], "the interrupted file was parsed"
    assert sources(db)["good.txt"] == ("indexed", None)


def _attempts(db: Path) -> int:
    conn = open_database(db)
    try:
        return conn.execute("SELECT count(*) FROM parse_attempts").fetchone()[0]
    except Exception:
        return 0
    finally:
        conn.close()


# --- 1 and 11: watch mode ---------------------------------------------------------------


class _Watcher:
    """`gritdesk index --watch --json` in the background, its reports collected."""

    def __init__(self, model: Path, db: Path, root: Path) -> None:
        self.reports: list[dict] = []
        self.stderr: list[str] = []
        self.proc = subprocess.Popen(
            gritdesk_command("index", root, "--watch", "--db", db, "--model", model, "--json"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read(self, stream, is_report: bool) -> None:
        for line in stream:
            if is_report:
                self.reports.append(json.loads(line))
            else:
                self.stderr.append(line)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.proc.kill()
            for thread in self._threads:
                thread.join(timeout=5)


def test_watch_keeps_symlinks_inside_the_root(tmp_path: Path, tiny_model_path: Path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "first.txt").write_text("first words\n")
    (outside / "secret.txt").write_text("private words outside the root\n")
    db = tmp_path / "index.db"
    watcher = _Watcher(tiny_model_path, db, root)
    try:
        assert wait_for(lambda: len(watcher.reports) >= 1), watcher.stderr
        time.sleep(0.5)  # the watcher is set up after the first run
        (root / "link").symlink_to(Path("..") / "outside")
        (root / "later.txt").write_text("later words\n")
        assert wait_for(lambda: "later.txt" in sources(db)), watcher.stderr
    finally:
        assert watcher.stop() == 130, watcher.stderr
    conn = open_database(db)
    roots = [row[0] for row in conn.execute("SELECT path FROM roots")]
    conn.close()
    assert roots == [str(root)]
    assert "private" not in chunk_texts(db)
    run_index(tiny_model_path, db)  # a plain run over the known roots stays inside too
    assert "private" not in chunk_texts(db)


def test_watch_goes_on_after_a_busy_database(tmp_path: Path, tiny_model_path: Path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "first.txt").write_text("first words\n")
    db = tmp_path / "index.db"
    watcher = _Watcher(tiny_model_path, db, root)
    try:
        assert wait_for(lambda: len(watcher.reports) >= 1), watcher.stderr
        time.sleep(0.5)
        blocker = open_database(db)
        blocker.execute("BEGIN IMMEDIATE")  # holds the write lock past the busy timeout
        (root / "blocked.txt").write_text("written while the database is busy\n")
        assert wait_for(lambda: any("locked" in line for line in watcher.stderr)), watcher.stderr
        blocker.execute("ROLLBACK")
        blocker.close()
        (root / "after.txt").write_text("written after the lock is gone\n")
        assert wait_for(lambda: {"blocked.txt", "after.txt"} <= set(sources(db))), watcher.stderr
    finally:
        assert watcher.stop() == 130, watcher.stderr
