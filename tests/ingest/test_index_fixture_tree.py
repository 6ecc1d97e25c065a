"""The issue's fixture tree: every hostile kind of file, one run that completes.

The indexer runs in a child process so that unreadable files are really unreadable:
these tests usually run as root, which reads any file whatever its mode bits. The
child then runs without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (via util-linux
`setpriv`), so mode 000 means "permission denied" to it, as it would to a user. An
audit hook in the child logs every path it opens or lists, to show that nothing
outside the root is read.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gritdesk.store.connection import open_database
from ingest.fixture_files import make_docx, make_pdf
from ingest.index_content import assert_index_consistent

CHILD = Path(__file__).with_name("index_child.py")


def without_file_permission_override(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    assert setpriv, "running as root: util-linux `setpriv` is needed to make files unreadable"
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", *command]


def build_tree(base: Path) -> tuple[Path, Path]:
    root = base / "root"
    outside = base / "outside"
    outside.mkdir(parents=True)
    (outside / "secret.txt").write_text("exfiltrated credentials\n")
    root.mkdir()

    (root / "notes.md").write_text("# Notes\n\n## Topic\n\nordinary markdown words\n")
    (root / "binary.data").write_bytes(b"\x7fELF\x00\x01\x02" + bytes(range(256)) * 4)
    (root / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    (root / "invalid_utf8.txt").write_bytes(
        "début valide ".encode() + b"\xff\xfe\xfd" + " puis la suite été\n".encode()
    )
    (root / "latin1.txt").write_bytes(
        "La crème brûlée du café français est très appréciée.\n".encode("latin-1")
    )
    (root / "empty.txt").write_bytes(b"")
    (root / "large.txt").write_text(
        "\n".join(f"line {i} of a large file with steady words" for i in range(60_000))
    )
    os.symlink("loop_b", root / "loop_a")
    os.symlink("loop_a", root / "loop_b")
    os.symlink("..", root / "parent_loop")  # points at the root's parent: outside
    os.symlink(outside / "secret.txt", root / "escape.txt")
    os.symlink(outside, root / "escape_dir")
    (root / "unreadable.txt").write_text("you cannot read me\n")
    (root / "unreadable.txt").chmod(0)
    (root / "locked_dir").mkdir()
    (root / "locked_dir" / "inside.txt").write_text("hidden behind a locked folder\n")
    (root / "locked_dir").chmod(0)
    os.mkfifo(root / "pipe")
    deep = root.joinpath(*[f"level{i}" for i in range(40)])
    deep.mkdir(parents=True)
    (deep / "bottom.md").write_text("# Bottom\n\nthe deepest note\n")
    (root / ".gitignore").write_text("*.log\nbuild_output/\n")
    (root / "debug.log").write_text("ignored log\n")
    (root / "build_output").mkdir()
    (root / "build_output" / "generated.txt").write_text("ignored output\n")
    (root / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R")
    (root / "good.pdf").write_bytes(make_pdf([["Page one text"], ["Page two text about otters"]]))
    (root / "report.docx").write_bytes(make_docx([("Heading 1", "Summary"), (None, "docx body")]))
    (root / "broken.docx").write_bytes(b"PK\x03\x04not really a zip file")
    (root / "page.html").write_text("<h1>Welcome</h1><p>html body text</p><script>x()</script>")
    return root, outside


@pytest.fixture
def tree(tmp_path: Path):
    root, outside = build_tree(tmp_path)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "socket"))
    yield root, outside
    sock.close()
    (root / "locked_dir").chmod(0o755)


def test_fixture_tree_indexes_completely_and_reports_every_skip(tmp_path: Path, tree) -> None:
    root, outside = tree
    db_path = tmp_path / "index.db"
    audit_log = tmp_path / "opened.tsv"
    command = [sys.executable, str(CHILD), "--db", str(db_path), "--audit-log", str(audit_log)]
    proc = subprocess.run(
        without_file_permission_override([*command, str(root)]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)

    skipped = {Path(s["path"]).relative_to(root.resolve()).as_posix(): s for s in report["skipped"]}
    reasons = {rel: s["reason"] for rel, s in skipped.items()}
    assert reasons == {
        "binary.data": "binary file (contains NUL bytes)",
        "photo.png": "binary file type (.png)",
        "empty.txt": "empty file",
        "loop_a": "symlink loop (Too many levels of symbolic links)",
        "loop_b": "symlink loop (Too many levels of symbolic links)",
        "parent_loop": f"symlink to {root.parent.resolve()}, outside the indexed folder",
        "escape.txt": f"symlink to {outside.resolve() / 'secret.txt'}, outside the indexed folder",
        "escape_dir": f"symlink to {outside.resolve()}, outside the indexed folder",
        "unreadable.txt": "cannot open: Permission denied",
        "locked_dir": "cannot list folder: Permission denied",
        "pipe": "not a regular file (FIFO)",
        "socket": "not a regular file (socket)",
        "broken.pdf": reasons["broken.pdf"],
        "broken.docx": reasons["broken.docx"],
    }
    assert reasons["broken.pdf"].startswith("cannot read PDF: ")
    assert reasons["broken.docx"].startswith("cannot read DOCX: ")
    errors = {rel for rel, s in skipped.items() if s["status"] == "error"}
    assert errors == {"unreadable.txt", "broken.pdf", "broken.docx"}

    db = open_database(db_path)
    assert_index_consistent(db)
    indexed = {
        row[0] for row in db.execute("SELECT rel_path FROM sources WHERE status = 'indexed'")
    }
    deep_note = "/".join(f"level{i}" for i in range(40)) + "/bottom.md"
    assert indexed == {
        "notes.md",
        "invalid_utf8.txt",
        "latin1.txt",
        "large.txt",
        deep_note,
        "good.pdf",
        "report.docx",
        "page.html",
    }
    assert report["indexed"] == len(indexed)
    assert report["ignored"] == 3  # .gitignore itself (hidden), debug.log, build_output/

    def chunk_text(rel: str) -> str:
        rows = db.execute(
            "SELECT c.text FROM chunks c JOIN sources s ON s.id = c.source_id "
            "WHERE s.rel_path = ? ORDER BY c.ordinal",
            (rel,),
        )
        return "\n".join(row[0] for row in rows)

    assert "crème brûlée" in chunk_text("latin1.txt")
    assert chunk_text("invalid_utf8.txt").startswith("début valide ")
    assert "suite été" in chunk_text("invalid_utf8.txt")
    pages = db.execute(
        "SELECT c.page FROM chunks c JOIN sources s ON s.id = c.source_id WHERE s.rel_path = ?",
        ("good.pdf",),
    ).fetchall()
    assert pages == [(1,), (2,)]
    large_chunks = db.execute(
        "SELECT count(*), max(c.token_count), min(c.start_line), max(c.end_line) FROM chunks c "
        "JOIN sources s ON s.id = c.source_id WHERE s.rel_path = 'large.txt'"
    ).fetchone()
    assert large_chunks[0] > 1000 and large_chunks[1] <= 64
    assert large_chunks[2:] == (1, 60_000)

    everything = " ".join(row[0] for row in db.execute("SELECT text FROM chunks"))
    for secret in ["exfiltrated", "you cannot read me", "locked folder", "ignored"]:
        assert secret not in everything

    outside_prefix = str(outside.resolve())
    opened = [line.split("\t", 1)[1] for line in audit_log.read_text().splitlines()]
    assert any(path.startswith(str(root.resolve())) for path in opened)  # the log works
    assert [p for p in opened if p.startswith(outside_prefix)] == []

    rerun = subprocess.run(
        without_file_permission_override([*command, str(root)]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    again = json.loads(rerun.stdout)
    assert again["indexed"] == 0
    assert {Path(s["path"]).name for s in again["skipped"]} == {
        Path(s["path"]).name for s in report["skipped"]
    }
