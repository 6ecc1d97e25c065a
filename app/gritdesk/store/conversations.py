"""Chat history: conversations and their messages, kept in the index database.

`gritdesk chat` lists, resumes, renames, deletes and exports conversations through these
functions only (the TUI writes no SQL). An answer keeps the chunks it was given, text
included, so a resumed conversation still shows its sources after the files change.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Literal

import apsw

from gritdesk.store.citations import Citation
from gritdesk.store.connection import read_transaction, write_transaction

Role = Literal["user", "assistant"]
TITLE_CHARS = 60


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    created_at: float
    updated_at: float
    message_count: int = 0


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: Role
    content: str
    sources: list[Citation] = field(default_factory=list)
    finish_reason: str | None = None
    created_at: float = 0.0


def title_for(question: str) -> str:
    """A conversation's default title: its first question on one line, cut at a word."""
    line = " ".join(question.split())
    if len(line) <= TITLE_CHARS:
        return line or "(untitled)"
    cut = line[:TITLE_CHARS].rsplit(" ", 1)[0]
    return (cut or line[:TITLE_CHARS]) + "…"


def _conversation(row: tuple) -> Conversation:
    return Conversation(*row)


_CONVERSATION_COLUMNS = """
    c.id, c.title, c.created_at, c.updated_at,
    (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)
"""


def list_conversations(conn: apsw.Connection) -> list[Conversation]:
    """Every conversation, the most recently active first."""
    rows = conn.execute(
        f"SELECT {_CONVERSATION_COLUMNS} FROM conversations c ORDER BY c.updated_at DESC, c.id DESC"
    )
    return [_conversation(row) for row in rows]


def get_conversation(conn: apsw.Connection, conversation_id: int) -> Conversation | None:
    row = conn.execute(
        f"SELECT {_CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = ?", (conversation_id,)
    ).fetchone()
    return None if row is None else _conversation(row)


def latest_conversation(conn: apsw.Connection) -> Conversation | None:
    conversations = list_conversations(conn)
    return conversations[0] if conversations else None


def create_conversation(conn: apsw.Connection, title: str) -> Conversation:
    now = time.time()
    with write_transaction(conn):
        row = conn.execute(
            "INSERT INTO conversations (title, created_at, updated_at) VALUES (?, ?, ?) "
            "RETURNING id",
            (title, now, now),
        ).fetchone()
    return Conversation(row[0], title, now, now, 0)


def append_message(
    conn: apsw.Connection,
    conversation_id: int,
    role: Role,
    content: str,
    *,
    sources: list[Citation] | None = None,
    finish_reason: str | None = None,
) -> int:
    """Add a message at the end of a conversation; returns its id."""
    now = time.time()
    payload = json.dumps([asdict(s) for s in sources or []])
    with write_transaction(conn):
        row = conn.execute(
            "INSERT INTO messages (conversation_id, role, content, sources, finish_reason, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (conversation_id, role, content, payload, finish_reason, now),
        ).fetchone()
        conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
    return row[0]


def load_messages(conn: apsw.Connection, conversation_id: int) -> list[StoredMessage]:
    """A conversation's messages in the order they were written (to resume it)."""
    with read_transaction(conn):
        rows = conn.execute(
            "SELECT id, role, content, sources, finish_reason, created_at FROM messages "
            "WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        ).fetchall()
    return [
        StoredMessage(
            id=row[0],
            role=row[1],
            content=row[2],
            sources=[Citation(**item) for item in json.loads(row[3] or "[]")],
            finish_reason=row[4],
            created_at=row[5],
        )
        for row in rows
    ]


def rename_conversation(conn: apsw.Connection, conversation_id: int, title: str) -> None:
    title = " ".join(title.split())
    if not title:
        raise ValueError("a conversation's title cannot be empty")
    with write_transaction(conn):
        conn.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))


def delete_conversation(conn: apsw.Connection, conversation_id: int) -> None:
    """Remove a conversation and its messages (ON DELETE CASCADE)."""
    with write_transaction(conn):
        conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))


def conversation_markdown(conn: apsw.Connection, conversation_id: int) -> str:
    """The conversation as a Markdown document: each question, its answer, its sources."""
    conversation = get_conversation(conn, conversation_id)
    if conversation is None:
        raise KeyError(f"no conversation {conversation_id}")
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.created_at))
    lines = [f"# {conversation.title}", "", f"*gritdesk conversation, started {started}*", ""]
    for message in load_messages(conn, conversation_id):
        if message.role == "user":
            lines += ["## You", "", message.content.strip(), ""]
            continue
        lines += ["## gritdesk", "", message.content.strip() or "*(no answer)*", ""]
        if message.finish_reason == "cancelled":
            lines += ["*(stopped)*", ""]
        if message.sources:
            lines += ["Sources:", ""]
            lines += [
                f"{s.number}. `{s.location}` (score {s.score:.4f}, KV {s.kv})"
                for s in message.sources
            ]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
