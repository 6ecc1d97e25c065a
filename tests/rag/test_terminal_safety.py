"""File text and names never drive the terminal: no escape sequence from a document reaches
the output of `index`, `search` or `ask`, and names that look like Rich markup print as is.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from gritdesk.terminal_text import printable

GRITDESK = [sys.executable, "-c", "from gritdesk.cli import main; main()"]
TITLE = "\x1b]0;pwned\x07"  # sets the window title
CLEAR = "\x1b[2J"  # clears the screen
# "/" makes folders: `[bold]x[` holding `].md` prints as the markup `[bold]x[/].md`
NAMES = ["[bold]x[/].md", "[/]stray.md", "[red]y[/red].txt", "evil\x1b]0;name\x07.md"]


def body(i: int) -> str:
    """A few sequences in enough text not to look binary (under 1% control bytes)."""
    hostile = f"Zygomorphic flowers {TITLE}are bilaterally {CLEAR}symmetric, note {i}. "
    plain = f"Zygomorphic flowers are bilaterally symmetric, note {i}. "
    return f"# Heading \x1b[31m{i}\x1b[0m\n\n" + hostile + plain * 12 + "\n"


@pytest.fixture(scope="module")
def hostile_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile") / "docs"
    root.mkdir()
    for i, name in enumerate(NAMES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(body(i))
    return root


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GRITDESK, *args], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )


def run_on_a_terminal(*args: str) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal (so the Rich progress bar draws); all of it."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [*GRITDESK, *args], stdout=follower, stderr=follower, env=dict(os.environ)
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 300)
        if not ready:
            proc.kill()
            raise AssertionError("no output for 300 s")
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def assert_no_escapes(text: str) -> None:
    assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text, repr(text[:2000])
    assert "MarkupError" not in text and "Traceback" not in text, text


@pytest.fixture(scope="module")
def indexed(hostile_corpus: Path, tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path):
    db = tmp_path_factory.mktemp("hostile-db") / "index.db"
    code, output = run_on_a_terminal(
        "index", str(hostile_corpus), "--db", str(db), "--model", str(tiny_model_path)
    )
    assert code == 0, output
    # the progress bar draws with escape sequences of its own; none of the documents' may pass
    assert TITLE not in output and CLEAR not in output and "pwned" not in output, repr(output)
    assert "\x1b]0;name" not in output
    assert "MarkupError" not in output and "Traceback" not in output, output
    return db


def test_search_prints_names_and_snippets_without_control_sequences(indexed: Path) -> None:
    proc = run("search", "zygomorphic flowers", "--db", str(indexed))
    assert proc.returncode == 0, proc.stderr
    assert_no_escapes(proc.stdout + proc.stderr)
    assert "[bold]x[/].md" in proc.stdout and "[/]stray.md" in proc.stdout  # shown as is
    assert "evil]0;name.md" not in proc.stdout and "evil.md" in proc.stdout
    assert "Zygomorphic flowers are bilaterally symmetric" in proc.stdout


def test_ask_notices_and_citations_with_markup_names(indexed: Path) -> None:
    """--ctx 512 leaves chunks out, and the notice names their files (markup-like)."""
    args = ("ask", "zygomorphic flowers", "--db", str(indexed), "--ctx", "512", "-k", "4")
    proc = run(*args, "--max-tokens", "8")
    assert proc.returncode == 0, proc.stderr
    assert "left out" in proc.stderr, proc.stderr
    assert_no_escapes(proc.stdout + proc.stderr)
    assert "Sources:" in proc.stdout


def test_printable_strips_every_kind_of_sequence() -> None:
    assert printable(f"a{TITLE}b{CLEAR}c\x1b[31mred\x1b[0m") == "abcred"
    assert printable("8-bit \x9b2J csi and \x9d0;t\x9c osc") == "8-bit  csi and  osc"
    assert printable("keeps\ttabs\nand lines; drops \r\x08\x00\x7f") == (
        "keeps\ttabs\nand lines; drops "
    )
    assert printable("unterminated \x1b]0;" + "x" * 300) == "unterminated " + "x" * 46
    assert printable("café 日本 ✓") == "café 日本 ✓"
