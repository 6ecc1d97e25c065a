"""The walk: ignore files, junk, symlinks, special files, scopes."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from gritdesk.ingest.file_selection import FileSelection
from gritdesk.ingest.walk import FoundFile, SkippedPath, WalkStats, walk_root


def write(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def walk(root: Path, scope: str | None = None, **kwargs) -> tuple[list[str], dict[str, str]]:
    found, skipped = [], {}
    for item in walk_root(root.resolve(), scope, **kwargs):
        if isinstance(item, FoundFile):
            found.append(item.rel_path)
        else:
            assert isinstance(item, SkippedPath)
            skipped[item.rel_path] = item.reason
    return found, skipped


def test_nested_gitignore_negation_and_gritdeskignore(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / ".gitignore", "*.log\n!keep.log\ncache/\n/top_only.txt\n")
    write(root / ".gritdeskignore", "private.md\n")
    for name in ["a.log", "keep.log", "top_only.txt", "private.md", "notes.md"]:
        write(root / name)
    write(root / "cache" / "c.txt")
    write(root / "sub" / "top_only.txt")  # anchored pattern: only the root one is ignored
    write(root / "sub" / ".gitignore", "!special.log\n*.tmp\n")
    write(root / "sub" / "special.log")  # re-included by the deeper file
    write(root / "sub" / "other.log")
    write(root / "sub" / "x.tmp")
    write(root / "other" / "x.tmp")  # sub's rule does not apply here
    write(root / "sub" / ".gritdeskignore", "!x.tmp\n")  # gritdeskignore beats gitignore
    found, skipped = walk(root)
    assert found == [
        "keep.log",
        "notes.md",
        "other/x.tmp",
        "sub/special.log",
        "sub/top_only.txt",
        "sub/x.tmp",
    ]
    assert skipped == {}


def test_hidden_left_out_and_vendored_reported(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "readme.md")
    write(root / ".env", "SECRET=1")
    write(root / ".git" / "config")
    write(root / ".hidden" / "a.txt")
    write(root / "node_modules" / "pkg" / "index.js")
    write(root / "src" / "__pycache__" / "m.pyc")
    write(root / "myenv" / "pyvenv.cfg")  # a virtualenv by its marker, whatever its name
    write(root / "myenv" / "lib" / "x.py")
    write(root / "target" / "CACHEDIR.TAG")
    write(root / "target" / "debug" / "out.txt")
    write(root / "src" / "main.py")
    stats = WalkStats()
    found, skipped = walk(root, stats=stats)
    assert found == ["readme.md", "src/main.py"]
    assert {path: reason.split(";")[0] for path, reason in skipped.items()} == {
        "node_modules": "vendored or generated folder (node_modules)",
        "src/__pycache__": "vendored or generated folder (__pycache__)",
        "myenv": "vendored or cache folder (holds pyvenv.cfg)",
        "target": "vendored or cache folder (holds CACHEDIR.TAG)",
    }
    assert stats.ignored == 3  # .env, .git, .hidden

    everything = FileSelection(skip_vendored=False)
    found, skipped = walk(root, selection=everything)
    assert "node_modules/pkg/index.js" in found and "target/debug/out.txt" in found
    assert skipped == {}
    chosen = FileSelection(include=("node_modules",), exclude=("src/",))
    found, skipped = walk(root, selection=chosen)
    assert sorted(found) == ["node_modules/pkg/index.js", "readme.md"]
    assert set(skipped) == {"myenv", "target"}


def test_symlinks_never_leave_the_root_and_loops_end(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    write(outside / "secret.txt", "outside")
    write(root / "real" / "doc.txt")
    os.symlink(outside / "secret.txt", root / "escape_file")
    os.symlink(outside, root / "escape_dir")
    os.symlink("../../outside", root / "real" / "escape_relative")
    os.symlink("loop_b", root / "loop_a")
    os.symlink("loop_a", root / "loop_b")
    os.symlink(".", root / "real" / "self")  # a folder loop inside the root
    os.symlink("nowhere", root / "dangling")
    os.symlink("real/doc.txt", root / "inside_link.txt")  # inside the root: followed
    os.symlink("real", root / "alias")  # a second way into a walked folder

    found, skipped = walk(root)
    assert found == ["inside_link.txt", "real/doc.txt"]
    assert skipped["escape_file"].startswith(f"symlink to {outside / 'secret.txt'}, outside")
    assert "outside the indexed folder" in skipped["escape_dir"]
    assert "outside the indexed folder" in skipped["real/escape_relative"]
    assert skipped["loop_a"].startswith("symlink loop")
    assert skipped["loop_b"].startswith("symlink loop")
    assert skipped["dangling"] == "broken symlink to nowhere"
    assert skipped["real/self"].startswith("symlink to a folder already walked")
    assert skipped["alias"].startswith("symlink to a folder already walked")
    assert set(skipped) == {
        "escape_file",
        "escape_dir",
        "real/escape_relative",
        "loop_a",
        "loop_b",
        "real/self",
        "dangling",
        "alias",
    }


def test_followed_file_symlink_reads_its_target_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "real" / "doc.txt")
    os.symlink("real/doc.txt", root / "link.txt")
    items = {i.rel_path: i for i in walk_root(root.resolve()) if isinstance(i, FoundFile)}
    assert items["link.txt"].path == (root / "real" / "doc.txt").resolve()


def test_fifo_and_socket_are_skipped_without_being_opened(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "a.txt")
    os.mkfifo(root / "pipe")  # opening it for reading would block forever
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "sock"))
    try:
        found, skipped = walk(root)
    finally:
        server.close()
    assert found == ["a.txt"]
    assert skipped == {"pipe": "not a regular file (FIFO)", "sock": "not a regular file (socket)"}


def test_deep_nesting(tmp_path: Path) -> None:
    root = tmp_path / "root"
    deep = root.joinpath(*["d"] * 120)
    write(deep / "bottom.txt")
    found, _ = walk(root)
    assert found == ["/".join(["d"] * 120 + ["bottom.txt"])]


def test_scope_walks_only_part_of_the_root_with_the_rules_above_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / ".gitignore", "*.log\nbuild_out/\n")
    write(root / "a" / "b" / "one.txt")
    write(root / "a" / "b" / "two.log")
    write(root / "a" / "c.txt")
    write(root / "build_out" / "x.txt")
    assert walk(root, "a/b") == (["a/b/one.txt"], {})
    assert walk(root, "a/c.txt") == (["a/c.txt"], {})
    assert walk(root, "a/b/two.log") == ([], {})  # ignored
    assert walk(root, "build_out/x.txt") == ([], {})  # under an ignored folder
    assert walk(root, "a/missing.txt") == ([], {})


def test_excluded_files_are_not_yielded(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "index.db")
    write(root / "a.txt")
    found, _ = walk(root, exclude=[root / "index.db"])
    assert found == ["a.txt"]


def test_gitignore_of_enclosing_repository_applies(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    write(repo / ".gitignore", "docs/generated/\n*.bak\n")
    write(repo / "docs" / "guide.md")
    write(repo / "docs" / "old.bak")
    write(repo / "docs" / "generated" / "api.md")
    found, _ = walk(repo / "docs")
    assert found == ["guide.md"]


def test_symlinked_ignore_file_is_not_read(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(tmp_path / "outside_rules", "*.txt\n")
    write(root / "a.txt")
    os.symlink(tmp_path / "outside_rules", root / ".gitignore")
    found, _ = walk(root)
    assert found == ["a.txt"]
