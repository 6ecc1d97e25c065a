"""The chat's entries in the command palette (Ctrl+P), next to Textual's own (theme, quit...).

Built each time the palette opens, so the list of folders to re-index and the current
cache mode are up to date.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import SystemCommand

from gritdesk.rag.layouts import CacheMode
from gritdesk.tui.keys import shortcut

if TYPE_CHECKING:
    from gritdesk.tui.app import GritdeskApp

CACHE_MODE_HELP = {
    CacheMode.OFF: "plain RAG: the chunks are prefilled as text every time",
    CacheMode.DOC: "reuse each chunk's saved KV (the paper's best answers, fastest on long chunks)",
    CacheMode.QUERY: "cache the question's KV, chunks as text",
    CacheMode.QUERY_DOC: "question KV, then the chunks' KV",
    CacheMode.DOC_QUERY: "the chunks' KV, then the question KV",
}


def chat_commands(app: GritdeskApp) -> Iterator[SystemCommand]:
    screen = app.chat_screen
    new, chats, copy = shortcut("new_chat"), shortcut("conversations"), shortcut("copy_answer")
    code, help_key = shortcut("copy_code"), shortcut("help")
    yield SystemCommand("New chat", f"Start a new conversation ({new})", screen.action_new_chat)
    yield SystemCommand(
        "Conversations", f"Resume, rename, delete or export ({chats})", screen.action_conversations
    )
    yield SystemCommand(
        "Export conversation", "Write this conversation as Markdown", app.export_current
    )
    yield SystemCommand("Copy last answer", f"To the clipboard ({copy})", screen.action_copy_answer)
    yield SystemCommand(
        "Copy last code block", f"From the last answer ({code})", screen.action_copy_code
    )
    yield SystemCommand(
        "Switch database", f"Open another index (now {app.db_path})", app.action_switch_database
    )
    yield SystemCommand("Index a folder", "Add a folder to this index", app.action_index_folder)
    if app.roots:
        yield SystemCommand(
            "Re-index all folders",
            f"Bring all {len(app.roots)} folders up to date",
            lambda: app.start_indexing([], "all folders"),
        )
    for root in app.roots:
        yield SystemCommand(
            f"Re-index {Path(root).name}",
            root,
            lambda root=root: app.start_indexing([Path(root)], Path(root).name),
            discover=False,
        )
    current = app.cache_mode
    for mode in CacheMode:
        marker = " (current)" if mode is current else ""
        yield SystemCommand(
            f"Cache mode: {mode.value}{marker}",
            CACHE_MODE_HELP[mode],
            lambda mode=mode: app.set_cache_mode(mode),
            discover=False,
        )
    yield SystemCommand("Help", f"Key bindings ({help_key})", app.action_help)
