"""OpenAI chat messages as the engine's turns (user message, the answer given to it).

GritLM was not trained with system prompts, so a system (or developer) message is put in
front of the first user message, separated by a blank line. Consecutive user messages are
one turn. The last message is the one to answer, so it must come from the user.
"""

from __future__ import annotations

from collections.abc import Sequence

from gritdesk.runtime.engine import ChatTurn
from gritdesk.server.errors import ApiError
from gritdesk.server.schemas import Message


def chat_turns(messages: Sequence[Message]) -> list[ChatTurn]:
    system: list[str] = []
    turns: list[ChatTurn] = []
    pending: list[str] = []
    for i, message in enumerate(messages):
        text = message.text()
        if message.role in ("system", "developer"):
            system.append(text)
        elif message.role == "user":
            pending.append(text)
        else:  # assistant
            if not pending:
                raise ApiError(
                    400,
                    f"messages.{i}: an assistant message must follow a user message",
                    param=f"messages.{i}.role",
                )
            turns.append(ChatTurn("\n\n".join(pending), text))
            pending = []
    if not pending:
        raise ApiError(
            400,
            "the last message must come from the user (it is the one answered)",
            param="messages",
        )
    turns.append(ChatTurn("\n\n".join(pending)))
    if system:
        first = turns[0]
        turns[0] = ChatTurn("\n\n".join([*system, first.user]), first.assistant)
    if not turns[-1].user.strip():
        raise ApiError(400, "the last user message is empty", param="messages")
    return turns
