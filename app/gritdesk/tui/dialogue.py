"""A stored conversation as the turns the answering service sees.

How many of them the model sees and which questions retrieval adds is the answering
service's rule (`AskService.prepare`), the same for the chat and the HTTP server.
"""

from __future__ import annotations

from collections.abc import Sequence

from gritdesk.runtime.engine import ChatTurn
from gritdesk.store.conversations import StoredMessage


def turns_from_messages(messages: Sequence[StoredMessage]) -> list[ChatTurn]:
    """Pair each question with the answer after it; a question whose answer failed keeps
    None (and is left out of what the model sees)."""
    turns: list[ChatTurn] = []
    for message in messages:
        if message.role == "user":
            turns.append(ChatTurn(message.content))
        elif turns and turns[-1].assistant is None and message.finish_reason != "error":
            turns[-1] = ChatTurn(turns[-1].user, message.content)
    return turns
