"""Saved conversations: resume, rename, delete, export; newest first.

All reads and writes go through the chat store (its own thread); the screen reports what
changed when it closes so the chat screen can follow (a renamed or deleted current chat).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, OptionList
from textual.widgets.option_list import Option

from gritdesk.store.conversations import (
    Conversation,
    delete_conversation,
    list_conversations,
    rename_conversation,
)
from gritdesk.terminal_text import printable_line
from gritdesk.tui.chat_store import ChatStore
from gritdesk.tui.keys import CONVERSATIONS_KEYS, bindings
from gritdesk.tui.screens.confirm_screen import ConfirmScreen
from gritdesk.tui.screens.text_prompt_screen import TextPromptScreen


@dataclass
class ConversationsOutcome:
    open_id: int | None = None  # resume this one
    new_chat: bool = False
    deleted: set[int] = field(default_factory=set)
    renamed: dict[int, str] = field(default_factory=dict)


class ExportRequested(Message):
    """Export a conversation as Markdown (the app asks where and writes the file)."""

    def __init__(self, conversation_id: int, title: str) -> None:
        super().__init__()
        self.conversation_id = conversation_id
        self.title = title


def conversation_label(conversation: Conversation, current: bool) -> Text:
    label = Text()
    label.append("● " if current else "  ", style="bold")
    label.append(printable_line(conversation.title), style="bold" if current else "")
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.updated_at))
    label.append(f"\n    {conversation.message_count} messages · {when}", style="dim")
    return label


class ConversationsScreen(ModalScreen[ConversationsOutcome]):
    CSS_PATH = "conversations_screen.tcss"
    BINDINGS: ClassVar[list[BindingType]] = bindings(CONVERSATIONS_KEYS)  # type: ignore[assignment]

    def __init__(self, store: ChatStore, current_id: int | None) -> None:
        super().__init__()
        self.store = store
        self.current_id = current_id
        self.conversations: list[Conversation] = []
        self.outcome = ConversationsOutcome()

    def compose(self) -> ComposeResult:
        with Vertical(id="conversations-box"):
            yield Label("Conversations", id="conversations-title")
            yield OptionList(id="conversation-list")
            yield Label("", id="conversations-empty")
        yield Footer()

    async def on_mount(self) -> None:
        await self.reload()

    async def reload(self) -> None:
        self.conversations = await self.store.call(list_conversations)
        options = self.query_one(OptionList)
        highlighted = options.highlighted
        options.clear_options()
        options.add_options(
            [
                Option(conversation_label(c, c.id == self.current_id), id=str(c.id))
                for c in self.conversations
            ]
        )
        empty = self.query_one("#conversations-empty", Label)
        empty.update("" if self.conversations else "No saved conversations yet.")
        if self.conversations:
            current = next(
                (i for i, c in enumerate(self.conversations) if c.id == self.current_id), 0
            )
            options.highlighted = (
                min(highlighted, len(self.conversations) - 1)
                if (highlighted is not None)
                else current
            )
        options.focus()

    def _highlighted(self) -> Conversation | None:
        index = self.query_one(OptionList).highlighted
        if index is None or not 0 <= index < len(self.conversations):
            return None
        return self.conversations[index]

    @on(OptionList.OptionSelected)
    def resume(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.outcome.open_id = self.conversations[event.option_index].id
        self.dismiss(self.outcome)

    def action_close(self) -> None:
        self.dismiss(self.outcome)

    def action_new_chat(self) -> None:
        self.outcome.new_chat = True
        self.dismiss(self.outcome)

    @work
    async def action_rename(self) -> None:
        conversation = self._highlighted()
        if conversation is None:
            return
        title = await self.app.push_screen_wait(
            TextPromptScreen("Rename the conversation to:", conversation.title)
        )
        if title:
            await self.store.call(rename_conversation, conversation.id, title)
            self.outcome.renamed[conversation.id] = " ".join(title.split())
            await self.reload()

    @work
    async def action_delete(self) -> None:
        conversation = self._highlighted()
        if conversation is None:
            return
        if await self.app.push_screen_wait(
            ConfirmScreen(f"Delete “{conversation.title}” and its messages?")
        ):
            await self.store.call(delete_conversation, conversation.id)
            self.outcome.deleted.add(conversation.id)
            await self.reload()

    def action_export(self) -> None:
        conversation = self._highlighted()
        if conversation is not None:
            self.post_message(ExportRequested(conversation.id, conversation.title))
