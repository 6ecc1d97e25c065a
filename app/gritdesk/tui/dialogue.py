"""How a conversation becomes one `Answerer` call: the turns it sees, what it retrieves with.

Follow-up questions ("and in Asia?") mean little alone, so retrieval uses the last few
questions together with the new one (as many as fit its token bound, see
`Answerer.retrieval_query`); generation sees the earlier turns in GritLM's turn
format. Old turns are dropped first when the context is too small for all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from gritdesk.rag.answer import AskOptions, PreparedAnswer
from gritdesk.runtime.engine import ChatTurn
from gritdesk.runtime.errors import InputTooLongError
from gritdesk.store.conversations import StoredMessage
from gritdesk.tui.backend import ChatBackend

MAX_HISTORY_TURNS = 4  # earlier turns the model sees, at most
RETRIEVAL_QUESTIONS = 2  # earlier questions added to the retrieval query


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


def earlier_questions(history: Sequence[ChatTurn]) -> list[str]:
    """The last few questions before the new one, oldest first, for the retrieval query."""
    return [turn.user for turn in history[-RETRIEVAL_QUESTIONS:]]


def prepare_turn(
    backend: ChatBackend, question: str, options: AskOptions, history: Sequence[ChatTurn]
) -> PreparedAnswer:
    """Prepare an answer with as many recent turns as fit the context (at most
    MAX_HISTORY_TURNS); raises InputTooLongError only if the question alone does not fit."""
    turns = [t for t in history if t.assistant is not None][-MAX_HISTORY_TURNS:]
    earlier = earlier_questions(history)
    left_out = 0
    while True:
        try:
            prepared = backend.prepare(question, options, turns, earlier)
        except InputTooLongError:
            if not turns:
                raise
            turns, left_out = turns[1:], left_out + 1
            continue
        if left_out:
            prepared.notices.append(
                f"left out the {left_out} oldest turn(s) of the conversation to fit the context"
            )
        return prepared
