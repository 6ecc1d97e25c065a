"""One question too long to embed fails alone: the questions after it are answered.

The retrieval query of a follow-up carries the earlier questions; it is bounded by tokens
(oldest dropped first), so a failed long question does not ride along into every later one.
"""

from __future__ import annotations

from pathlib import Path

from gritdesk.rag.answer import RETRIEVAL_QUERY_TOKENS
from gritdesk.store.connection import open_database
from gritdesk.store.conversations import latest_conversation, load_messages

from .conftest import N_CTX, QUESTION, run_async, tiny_app, type_question, wait_until

LONG = "Tell me everything about the travel policy and its hotels. " * (N_CTX // 4)


ANSWERED = ("length", "stop")  # the tiny model (< 1B params) stops at its first line or not


def finish_reasons(db_path: Path) -> list[str | None]:
    db = open_database(db_path)
    try:
        conversation = latest_conversation(db)
        assert conversation is not None
        return [m.finish_reason for m in load_messages(db, conversation.id) if m.role != "user"]
    finally:
        db.close()


@run_async
async def test_questions_after_an_overlong_one_are_answered(
    chat_db: Path, tiny_model_path: Path
) -> None:
    app = tiny_app(chat_db, tiny_model_path, max_tokens=4)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.chat_screen
        await wait_until(pilot, lambda: app.backend is not None, what="the model to load")
        assert app.backend.engine.count_tokens(LONG) > max(N_CTX, RETRIEVAL_QUERY_TOKENS)
        await type_question(pilot, LONG)
        await wait_until(pilot, lambda: not screen.answering, what="the answer")
    assert finish_reasons(chat_db) == ["error"]

    # the next start resumes the conversation: the failed question is in its history
    app = tiny_app(chat_db, tiny_model_path, max_tokens=4)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.chat_screen
        await wait_until(pilot, lambda: app.backend is not None, what="the model to load")
        assert [t.user for t in screen.history] == [LONG.strip()]
        for question in (QUESTION, "And in Asia?"):
            await type_question(pilot, question)
            await wait_until(pilot, lambda: not screen.answering, what="the answer")
    error, *answered = finish_reasons(chat_db)
    assert error == "error" and len(answered) == 2 and all(r in ANSWERED for r in answered)


@run_async
async def test_two_long_questions_that_fit_alone_are_both_answered(
    chat_db: Path, tiny_model_path: Path
) -> None:
    """Each fits one embedding pass alone; together (as the old query joined them) not."""
    first = "Which hotel rules apply in Europe and in Asia? " * (N_CTX // 20)
    second = "What about receipts for taxis and trains and meals? " * (N_CTX // 20)
    app = tiny_app(chat_db, tiny_model_path, max_tokens=4)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.chat_screen
        await wait_until(pilot, lambda: app.backend is not None, what="the model to load")
        engine = app.backend.engine
        assert engine.count_tokens(first + "\n" + second) > engine.n_ubatch
        for question in (first, second):
            await type_question(pilot, question)
            await wait_until(pilot, lambda: not screen.answering, what="the answer")
    answered = finish_reasons(chat_db)
    assert len(answered) == 2 and all(r in ANSWERED for r in answered)
