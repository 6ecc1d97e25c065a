"""Issue 22's last check: after `gritdesk demo`, the demo corpus's questions typed into the
real `gritdesk chat` (no flags: SmolLM2-135M answers, all-MiniLM-L6-v2 finds the passages)
are answered right, or show the right evidence, follow-ups included; read off a tmux screen.

The data dir is fresh and set up as the demo sets up a machine with no model configured:
both models pulled through `pull_model` (SmolLM2, the demo's starter model, and the pair
embedder, from the cache the `smollm2_path`/`minilm_path` fixtures fill), then the corpus
indexed by the real `gritdesk index`. Each answer is read as a user reads the screen: the
answer box, then every source the sources panel marks "· evidence", reached as a user
reaches it (Tab to the list, ↑/↓ to the source, its chunk shown below the list with the
evidence highlighted in reverse video; Shift+Tab back to the question box). The fact must be
in the answer or in the highlighted evidence of one of those sources, the answer is never
empty, and the file that holds the fact is the first source or one marked "· evidence".
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import CORPUS
from .tmux_pane import INSTALL_TMUX, TmuxPane, answer_lines, screen_cells, tmux_binary

WIDTH, HEIGHT = 120, 50
GRITDESK = [sys.executable, "-c", "from gritdesk.cli import main; main()"]
TOAST_EDGE = "▌"  # a notification's left edge; it may cover the answer's and the panel's end


@dataclass(frozen=True)
class Asked:
    question: str
    file: str  # the file that holds the fact: the first source or one marked "· evidence"
    fact: str  # a regex (case-insensitive) the answer or its highlighted evidence must match


# benchmarks/smollm2_embedding_recipes.py's QUESTIONS, word for word, with their facts
DEMO_QUESTIONS = [
    Asked("What is the nightly limit for a hotel in North America?",
          "travel-policy.md", r"210\s*(dollars|USD|\$)|\$\s?210"),
    Asked("How much money do I get per day for food?",
          "travel-policy.md", r"45\s*(euros?|EUR|€)|€\s?45"),
    Asked("How long do I have to file an expense claim after a trip?",
          "travel-policy.md", r"\b(thirty|30)\s+days"),
    Asked("Can I fly business class?",
          "travel-policy.md", r"director'?s?\s+approv|approv\w*\s+(of|from|by)\s+(a|the|your)\s+director"),  # noqa: E501
    Asked("Who do I ask about my salary?",
          "onboarding.txt", r"payroll@example\.org"),
    Asked("When can I eat lunch at the cafeteria?",
          "onboarding.txt", r"half past eleven|11[:.]30"),
    Asked("Which keyboard shortcut opens the command palette?",
          "aurora-release-notes.md", r"ctrl\s*\+\s*k\b"),
    Asked("Does the app continue a broken upload where it stopped?",
          "aurora-release-notes.md", r"resum\w*\s+(\w+\s+){0,2}uploads?"),
    Asked("How do I find which quarter a month is in?",
          "notes.py", r"quarter_of|\(month\s*-\s*1\)\s*//\s*3\s*\+\s*1"),
    Asked("What should I index instead of the sample folder?",
          "README.md", r"~/Documents"),
]  # fmt: skip

FOLLOW_UPS = [
    (
        Asked("How much are hotel costs refunded per night in Europe?",
              "travel-policy.md", r"140\s*(euros?|EUR|€)|€\s?140"),
        Asked("And in North America?",
              "travel-policy.md", r"210\s*(dollars|USD|\$)|\$\s?210"),
    ),
    (
        Asked("When does the cafeteria serve lunch?",
              "onboarding.txt", r"half past eleven|11[:.]30"),
        Asked("And on Fridays in summer?",
              "onboarding.txt", r"clos\w*\s+at\s+(three|3)\b|\b(three|3)\s*(pm|p\.m\.|o'clock)|15[:.]00"),  # noqa: E501
    ),
]  # fmt: skip


def cli_env(data_dir: Path) -> dict[str, str]:
    """The user's defaults: no GRITDESK_* setting but the data dir (and the shared cache)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GRITDESK_") or key == "GRITDESK_CACHE_DIR"
    }
    return {**env, "GRITDESK_DATA_DIR": str(data_dir), "TERM": "xterm-256color"}


@pytest.fixture(scope="module")
def demo_data_dir(
    tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path, minilm_path: Path
) -> Iterator[Path]:
    """A data dir as `gritdesk demo` leaves it (its two models in models.json), with the demo
    corpus indexed into the default index by `gritdesk index`."""
    from gritdesk.demo import STARTER_MODEL
    from gritdesk.model_choice import PAIR_EMBEDDER
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.installed import InstalledModels
    from gritdesk.models.pull import pull_model
    from gritdesk.session import kv_cache_directory

    data = tmp_path_factory.mktemp("demo-data")
    env = cli_env(data)
    with pytest.MonkeyPatch.context() as mp:  # pull_model reads GRITDESK_* here, in-process
        for key in [k for k in os.environ if k.startswith("GRITDESK_")]:
            mp.delenv(key)
        for key in [k for k in env if k.startswith("GRITDESK_")]:
            mp.setenv(key, env[key])
        store, catalog = InstalledModels(), load_catalog()
        assert store.path == data / "models.json"
        pulled = [pull_model(name, store, catalog).model for name in (STARTER_MODEL, PAIR_EMBEDDER)]
    assert [Path(m.path) for m in pulled] == [smollm2_path, minilm_path]
    run = subprocess.run(
        [*GRITDESK, "index", str(CORPUS)], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    yield data
    shutil.rmtree(kv_cache_directory(data / "index.db"), ignore_errors=True)


@pytest.fixture(scope="module")
def chat(demo_data_dir: Path) -> Iterator[TmuxPane]:
    """`gritdesk chat`, no flags, in a tmux pane: one app for every question of this file."""
    tmux = tmux_binary()
    if tmux is None:
        pytest.fail(INSTALL_TMUX)
    pane = TmuxPane(tmux)
    command = shlex.join(GRITDESK) + " chat; echo CHAT-EXIT=$?; exec sleep 600"
    pane.start(
        f"sh -c {shlex.quote(command)}", width=WIDTH, height=HEIGHT, env=cli_env(demo_data_dir)
    )
    try:
        pane.wait_for(lambda s: status(s).startswith(" ready │"), 120, "the models to load")
        yield pane
    finally:
        pane.kill()


def status(screen: str) -> str:
    """The status line: the one above the footer."""
    lines = screen.splitlines()
    return lines[-2] if len(lines) >= 2 else ""


def settled(pane: TmuxPane, check: Callable[[str], bool], timeout: float, what: str) -> str:
    """The screen once `check` holds on it and it stays the same for a moment (a notice
    posted with the answer may be drawn a frame after it)."""
    deadline = time.monotonic() + timeout
    while True:
        screen = pane.wait_for(check, max(deadline - time.monotonic(), 0), what)
        time.sleep(0.3)
        if pane.screen() == screen:
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"the screen kept changing while waiting for {what}:\n{screen}")


@dataclass(frozen=True)
class Panel:
    """The sources panel as drawn."""

    sources: list[str]  # each source's "[n] path:lines" line, top to bottom
    marked: list[str]  # the sources marked "· evidence"
    highlighted: str  # the source drawn on a background of its own: the one shown below
    cursor: str  # that background (it changes when the list has the focus)
    chunk: str  # the chunk view's text
    evidence: str  # the chunk view's highlighted (reverse-video) text


def read_panel(styled: str) -> Panel:
    rows = screen_cells(styled)
    top = "".join(cell.char or " " for cell in rows[0])
    left = top.index("╭─ Sources") + 1  # inside the panel's border
    inner = [row[left : WIDTH - 1] for row in rows]
    lines = ["".join(cell.char for cell in row) for row in inner]
    split = next(i for i, line in enumerate(lines) if i and set(line.strip()) == {"─"})
    end = next(i for i in range(split, len(rows)) if rows[i][left - 1].char == "╰")
    sources: list[str] = []
    marked: list[str] = []
    highlighted = cursor = ""
    for row, line in zip(inner[1:split], lines[1:split], strict=True):
        text = line.strip()
        if re.match(r"\[\d+\] ", text):
            sources.append(text)
            number = row[line.index("[")]
            if number.background != row[0].background:  # row[0]: the panel's margin
                highlighted, cursor = text, number.background
        elif text.endswith("· evidence") and sources:
            marked.append(sources[-1])
    runs = []
    for row in inner[split + 1 : end]:
        run = "".join(cell.char if cell.reverse else "\n" for cell in row)
        runs += [part.strip() for part in run.split("\n") if part.strip()]
    chunk = "\n".join(line.rstrip() for line in lines[split + 1 : end]).strip()
    return Panel(sources, marked, highlighted, cursor, chunk, " ".join(runs))


def panel_when(pane: TmuxPane, check: Callable[[Panel], bool], what: str) -> Panel:
    """The sources panel once `check` holds on it and it stays the same for a moment (the
    chunk is shown a frame after the list moves)."""
    deadline = time.monotonic() + 30
    while True:
        panel = read_panel(pane.styled_screen())
        if check(panel):
            time.sleep(0.3)
            if read_panel(pane.styled_screen()) == panel:
                return panel
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; the screen:\n{pane.screen()}")
        time.sleep(0.1)


@dataclass(frozen=True)
class Reply:
    screen: str
    answer: str
    panel: Panel  # as drawn when the answer is done
    evidence: dict[str, str]  # each source marked "· evidence": its highlighted text

    def report(self, question: str) -> str:
        return (
            f"Q: {question}\nanswer: {self.answer!r}\nsources: {self.panel.sources!r}\n"
            f"marked as evidence: {self.panel.marked!r}\nevidence: {self.evidence!r}\n"
            f"the screen:\n{self.screen}"
        )


def read_evidence(pane: TmuxPane, shown: Panel) -> dict[str, str]:
    """The highlighted text of every source marked "· evidence", read as a user reads it: the
    one shown below the list, then Tab to the list and ↑/↓ to each other one; Shift+Tab
    gives the focus back to the question box."""
    evidence = {source: "" for source in shown.marked}
    if shown.highlighted in evidence:
        evidence[shown.highlighted] = shown.evidence
    others = [source for source in shown.marked if source != shown.highlighted]
    if not others:
        return evidence
    blurred = shown.cursor
    pane.press("Tab")
    at = panel_when(pane, lambda p: p.cursor != blurred, "the sources list to take the focus")
    for source in others:
        steps = shown.sources.index(source) - shown.sources.index(at.highlighted)
        pane.press(*(["Down"] * steps if steps > 0 else ["Up"] * -steps))
        at = panel_when(pane, lambda p, s=source: p.highlighted == s, f"{source} to be shown")
        evidence[source] = at.evidence
    pane.press("BTab")
    panel_when(pane, lambda p: p.cursor == blurred, "the question box to take the focus back")
    return evidence


def read_reply(pane: TmuxPane) -> Reply:
    """The last answer, its sources and their evidence, once the answer is done and no
    notice covers them."""
    screen = settled(
        pane,
        lambda s: status(s).startswith(" ready │") and TOAST_EDGE not in s,
        120,
        "the answer to finish and its notices to go",
    )
    answer = " ".join(answer_lines(screen))
    shown = panel_when(pane, lambda p: True, "the sources panel")
    return Reply(screen, answer, shown, read_evidence(pane, shown))


def ask(pane: TmuxPane, question: str) -> Reply:
    pane.type(question)
    pane.press("Enter")
    pane.wait_for(lambda s: " answering" in status(s), 60, f"{question!r} to be taken")
    return read_reply(pane)


def new_chat(pane: TmuxPane) -> None:
    pane.press("C-n")
    pane.wait_for(lambda s: "╭─ New conversation" in s, 30, "a new conversation")


def check(reply: Reply, asked: Asked) -> None:
    """The answer is not empty, the right file is the first source or marked "· evidence",
    and the fact is in the answer or in the highlighted evidence of a source marked
    "· evidence"; prints which (pytest -s shows it)."""
    where = reply.report(asked.question)
    assert reply.answer, f"the answer is empty:\n{where}"
    first = reply.panel.sources[:1]
    assert any(asked.file in source for source in first + reply.panel.marked), (
        f"{asked.file} is neither the first source nor marked as evidence:\n{where}"
    )
    fact = re.compile(asked.fact, re.IGNORECASE)
    held_by = "the answer" if fact.search(reply.answer) else None
    for source, text in reply.evidence.items():
        if held_by is None and fact.search(text):
            held_by = f"the evidence of {source}"
    assert held_by is not None, (
        f"neither the answer nor the evidence of a source marked as evidence holds "
        f"/{asked.fact}/:\n{where}"
    )
    print(f"\n[fact in {held_by}] {asked.question} -> {reply.answer!r} | {reply.evidence!r}")


@pytest.mark.slow
@pytest.mark.parametrize("asked", DEMO_QUESTIONS, ids=lambda a: a.question)
def test_demo_question(chat: TmuxPane, asked: Asked) -> None:
    new_chat(chat)
    check(ask(chat, asked.question), asked)


@pytest.mark.slow
@pytest.mark.parametrize("first, follow_up", FOLLOW_UPS, ids=lambda a: a.question)
def test_follow_up(chat: TmuxPane, first: Asked, follow_up: Asked) -> None:
    new_chat(chat)
    for asked in (first, follow_up):
        check(ask(chat, asked.question), asked)
