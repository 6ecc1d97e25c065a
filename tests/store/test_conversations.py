"""Chat history in the index database: create, append, resume, rename, delete, export."""

from __future__ import annotations

from pathlib import Path

import pytest

from gritdesk.store.connection import open_database
from gritdesk.store.conversations import (
    Citation,
    append_message,
    conversation_markdown,
    create_conversation,
    delete_conversation,
    get_conversation,
    latest_conversation,
    list_conversations,
    load_messages,
    rename_conversation,
    title_for,
)

CHUNK = Citation(
    1, "/docs/travel.md", 3, 9, None, "Travel > Hotels", 0.0321, "cached", "Hotels: 140 euros.",
    "docs/travel.md",
)  # fmt: skip


@pytest.fixture
def db(tmp_path: Path):
    conn = open_database(tmp_path / "index.db")
    yield conn
    conn.close()


def test_messages_come_back_in_order_with_their_sources(db) -> None:
    chat = create_conversation(db, "Hotels")
    append_message(db, chat.id, "user", "How much for hotels?")
    append_message(
        db, chat.id, "assistant", "140 euros [1].", sources=[CHUNK], finish_reason="stop"
    )
    append_message(db, chat.id, "user", "And meals?")
    messages = load_messages(db, chat.id)
    assert [(m.role, m.content) for m in messages] == [
        ("user", "How much for hotels?"),
        ("assistant", "140 euros [1]."),
        ("user", "And meals?"),
    ]
    assert messages[1].sources == [CHUNK] and messages[1].finish_reason == "stop"
    assert messages[1].sources[0].location == "docs/travel.md:3-9"
    assert get_conversation(db, chat.id).message_count == 3


def test_most_recently_active_conversation_comes_first(db) -> None:
    old = create_conversation(db, "old")
    new = create_conversation(db, "new")
    assert [c.id for c in list_conversations(db)] == [new.id, old.id]
    append_message(db, old.id, "user", "back to this one")
    assert latest_conversation(db).id == old.id


def test_rename_and_delete(db) -> None:
    chat = create_conversation(db, "first title")
    append_message(db, chat.id, "user", "q")
    rename_conversation(db, chat.id, "  a   better\ntitle ")
    assert get_conversation(db, chat.id).title == "a better title"
    with pytest.raises(ValueError):
        rename_conversation(db, chat.id, "   ")
    delete_conversation(db, chat.id)
    assert get_conversation(db, chat.id) is None
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0  # cascaded


def test_markdown_export(db) -> None:
    chat = create_conversation(db, "Hotels")
    append_message(db, chat.id, "user", "How much for hotels?")
    append_message(db, chat.id, "assistant", "140 euros.", sources=[CHUNK], finish_reason="stop")
    append_message(db, chat.id, "user", "Longer?")
    append_message(db, chat.id, "assistant", "It dep", finish_reason="cancelled")
    text = conversation_markdown(db, chat.id)
    assert text.startswith("# Hotels\n")
    assert "## You\n\nHow much for hotels?\n\n## gritdesk\n\n140 euros.\n" in text
    assert "1. `docs/travel.md:3-9` (score 0.0321, KV cached)" in text
    assert "It dep\n\n*(stopped)*" in text
    with pytest.raises(KeyError):
        conversation_markdown(db, 999)


def test_title_is_the_first_question_on_one_line() -> None:
    assert title_for("  How much\nfor hotels? ") == "How much for hotels?"
    long = title_for("word " * 40)
    assert len(long) <= 61 and long.endswith("…") and not long.endswith(" …")
