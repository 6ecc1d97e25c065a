"""The answering rules of issue 22 steps 5-7 (rag/ask_service.py, rag/focus.py): the files
cannot answer -> "I can't find that in your files" and nothing generated; an answer is never
empty; a small model reads the sentences that match the question; a follow-up retrieves with
the conversation. Unit checks first, then the real models (MiniLM embeds, SmolLM2 answers)
on the demo corpus; the 135M model's free text is never asserted word for word."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gritdesk.rag.abstention import (
    asked_not_found,
    cannot_answer,
    names_not_found,
    noun_phrase_words,
    same_word,
)
from gritdesk.rag.answer import AskOptions, PreparedAnswer
from gritdesk.rag.ask_defaults import CANNOT_ANSWER, SMALL_MODEL_CONTRAST_ALPHA, FocusPlan
from gritdesk.rag.ask_service import AskService, answered_before
from gritdesk.rag.evidence import choose_evidence
from gritdesk.rag.focus import focus_passages, question_similarity
from gritdesk.rag.retrieve import Hit
from gritdesk.runtime.contrast import Contrast
from gritdesk.runtime.engine import ChatTurn
from gritdesk.store.citations import Citation

CORPUS = Path(__file__).resolve().parents[2] / "app" / "gritdesk" / "demo_corpus"
POLICY = (
    "Hotel costs are refunded up to 160 euros a night in Western Europe.\n"
    "In North America the hotel limit is 210 US dollars a night.\n"
    "Meals are covered by a daily allowance of 45 euros."
)


def hit(text: str, *, keyword_rank: int | None = 1, similarity: float | None = 0.5) -> Hit:
    return Hit(
        chunk_id=1, path="/docs/policy.md", start_line=1, end_line=text.count("\n") + 1,
        page=None, heading_path="", score=0.1, snippet="", text=text,
        vector_similarity=similarity, keyword_rank=keyword_rank,
    )  # fmt: skip


def citation(text: str, locator: str | None = None) -> Citation:
    return Citation(
        number=1, path="/docs/policy.md", start_line=1, end_line=text.count("\n") + 1,
        page=None, heading_path="", score=0.1, text=text, locator=locator,
    )  # fmt: skip


# --- abstaining ---------------------------------------------------------------------------------


def test_a_name_no_passage_holds_is_not_found() -> None:
    assert names_not_found("What is the hotel limit in Australia?", [POLICY]) == ["Australia"]
    assert names_not_found("And in North America?", [POLICY]) == []
    # a plain number is a quantity asked about, not a name; a possessive is the name
    assert names_not_found("Is a 7-hour flight refunded in Western Europe?", [POLICY]) == []
    assert names_not_found("What is Samir's badge number?", ["Samir, your badge is 70412."]) == []
    assert names_not_found("When will Orbit 5.0 be released?", ["Orbit 4.2 is out."]) == ["5.0"]
    # a version is a number with a point: the 5 of "5 nights" or "5,000" is not Orbit 5.0
    notes = "Orbit 4.0: search holds 5,000 messages. Laundry on trips shorter than 5 nights."
    assert names_not_found("When will Orbit 5.0 be released?", [notes]) == ["5.0"]
    assert names_not_found("What did Orbit 4.0 remove?", [notes]) == []
    assert names_not_found("Does the dish cost 6.8 euros?", ["It costs 6.80 euros."]) == []
    # a name in another form is the same name; a code must be the same code
    offices = "Nairobi, Kenya: 63 employees. Budget for Q1: 120,000."
    assert names_not_found("How many staff are in the Kenyan branch?", [offices]) == []
    assert names_not_found("What is the budget for Q3?", [offices]) == ["Q3"]


def test_same_word_takes_forms_of_one_word() -> None:
    forms = [("day", "days"), ("submitted", "submit"), ("encrypted", "encryption"),
             ("coordinates", "coordinator"), ("kenyan", "kenya"), ("spend", "spent")]  # fmt: skip
    for a, b in forms:
        assert same_word(a, b) and same_word(b, a)
    for a, b in [("australia", "austria"), ("meat", "meal"), ("q3", "q30"), ("cars", "carrots")]:
        assert not same_word(a, b)


WELCOME = (
    "Hi Samir Haddad, your first day is 1 April. Your badge number is 70412.\n"
    "Your mentor is Olivia Tremblay from the Toronto office."
)


def test_what_a_question_asks_of_its_names() -> None:
    """The passages that hold a question's names hold nothing of the thing it asks of them:
    the files do not say it. An action asked of a name is no such thing (release notes
    answer "When did Aurora 2.4 ship?" with a date and no "ship")."""
    assert noun_phrase_words("Who is the chief executive of Northwind Traders?") == {
        "chief", "executive"
    }  # fmt: skip
    assert noun_phrase_words("What is Samir Haddad's salary?") == {"salary"}
    assert noun_phrase_words("What changed in Aurora 2.3?") == set()
    assert noun_phrase_words("What's new in Aurora 2.4?") == set()
    assert asked_not_found("What is Samir Haddad's salary?", [WELCOME, POLICY]) == ["salary"]
    assert asked_not_found("Who is Samir Haddad's mentor?", [WELCOME]) == []
    assert asked_not_found("When does Samir start?", [WELCOME]) == []  # an action
    assert asked_not_found("And in Osaka?", [WELCOME]) == []  # nothing asked past a name
    assert asked_not_found("How many hotel nights in Australia?", [POLICY]) == []  # no name held
    notes = "## Version 2.4 (9 March)\n- The sync engine resumes interrupted uploads."
    assert asked_not_found("When did Aurora 2.4 ship?", [f"Aurora\n{notes}"]) == []
    assert asked_not_found("How many users does Aurora 2.4 have?", [f"Aurora\n{notes}"]) == [
        "users"
    ]


def test_cannot_answer_what_the_named_passages_do_not_say() -> None:
    hits = [hit(WELCOME), hit(POLICY)]
    why = cannot_answer("What is Samir Haddad's salary?", hits, 0.2)
    assert "Samir Haddad" in why and "salary" in why
    # a sentence the embedder finds close may say it in other words; one far away does not
    asked = "What is Samir Haddad's salary?"
    assert cannot_answer(asked, hits, 0.2, best_sentence=lambda: 0.6, stated_similarity=0.45) == ""
    assert cannot_answer(asked, hits, 0.2, best_sentence=lambda: 0.3, stated_similarity=0.45)
    assert cannot_answer("Who is Samir Haddad's mentor?", hits, 0.2) == ""


def test_cannot_answer_reads_keywords_and_cosines() -> None:
    unrelated = [hit(POLICY, keyword_rank=None, similarity=0.05)]
    assert cannot_answer("What is the boiling point of mercury?", unrelated, 0.2)
    close = [hit(POLICY, keyword_rank=None, similarity=0.45)]
    assert cannot_answer("How much for food each day?", close, 0.2) == ""
    # uncalibrated cosines (None): no keyword in any passage decides alone
    assert cannot_answer("How much for food each day?", close, None)
    assert cannot_answer("What is the daily allowance for meals?", [hit(POLICY)], 0.2) == ""
    assert "Australia" in cannot_answer("Hotel limit in Australia?", [hit(POLICY)], 0.2)
    assert cannot_answer("anything", [], 0.2)


def test_a_follow_up_of_an_answered_question_is_not_taken_for_matching_nothing() -> None:
    """A follow-up ("At what time does it start?") may match nothing by its own words; after
    a question the files answered, its passages are the conversation's. A name no passage
    holds still abstains."""
    unrelated = [hit(POLICY, keyword_rank=None, similarity=0.05)]
    assert cannot_answer("At what time does it start?", unrelated, 0.2)
    assert cannot_answer("At what time does it start?", unrelated, 0.2, follows_answer=True) == ""
    assert cannot_answer("And in Australia?", [hit(POLICY)], 0.2, follows_answer=True)
    assert answered_before([ChatTurn("When is the fire drill?", "On 23 April.")])
    assert not answered_before([ChatTurn("When is the fire drill?", CANNOT_ANSWER)])
    assert not answered_before([ChatTurn("When is the fire drill?", None)])
    assert not answered_before([])


class _SilentAnswerer:
    """Generates nothing (or must not be asked to)."""

    sentence_embedder = None  # evidence by shared words alone

    def __init__(self, *, may_generate: bool) -> None:
        self.may_generate = may_generate

    def stream(self, prepared: PreparedAnswer, should_stop: object = None) -> Iterator[str]:
        assert self.may_generate, "nothing may be generated when the files cannot answer"
        prepared.finish_reason = "stop"
        return iter(())

    def citations(self, prepared: PreparedAnswer) -> list[Citation]:
        return [citation(POLICY)]


def _service(answerer: _SilentAnswerer) -> AskService:
    service = AskService.__new__(AskService)
    service.answerer = answerer  # type: ignore[assignment]
    return service


def test_an_answer_is_never_empty() -> None:
    service = _service(_SilentAnswerer(may_generate=True))
    prepared = PreparedAnswer("How much is the daily allowance for meals?", AskOptions(), [])
    text = "".join(service.stream(prepared))
    assert text == prepared.text and "45 euros" in text and "policy.md:3" in text
    assert any("no answer" in notice for notice in prepared.notices)


def test_nothing_is_generated_when_the_files_cannot_answer() -> None:
    service = _service(_SilentAnswerer(may_generate=False))
    prepared = PreparedAnswer("Hotel limit in Australia?", AskOptions(), [])
    prepared.cannot_answer = "no passage mentions Australia"
    assert "".join(service.stream(prepared)) == CANNOT_ANSWER == prepared.text


# --- what a small model reads ---------------------------------------------------------------------


def test_focus_keeps_the_sentence_that_matches() -> None:
    plan = FocusPlan(sentences=1)
    [focused] = focus_passages("What is the daily allowance for meals?", [], [citation(POLICY)],
                               plan, None)  # fmt: skip
    assert focused.text == "Meals are covered by a daily allowance of 45 euros."
    # a follow-up's earlier question counts too
    [focused] = focus_passages("And in North America?", ["What is the hotel limit?"],
                               [citation(POLICY)], plan, None)  # fmt: skip
    assert "210" in focused.text and "45" not in focused.text


DEMO_QUESTION = "How much food money do I get per day on a trip?"
BOOKING = "Economy class for trips under six hours; business class needs approval."
MEALS = "Meals are covered by a daily allowance of 45 euros; alcohol is never refunded."


class _Cosines:
    """An embedder whose cosine of each sentence to any question is given (else 0)."""

    def __init__(self, cosines: dict[str, float]) -> None:
        self.cosines = cosines

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        c = np.array([self.cosines.get(text, 0.0) for text in texts])
        return np.stack([c, np.sqrt(1 - c**2)], axis=1)

    def embed_queries(self, texts: list[str], instruction: str) -> np.ndarray:
        return np.array([[1.0, 0.0]] * len(texts))


def test_the_cosine_outweighs_one_shared_word() -> None:
    """One word of the question in a sentence ("trips") is a small share of it: the
    sentence the embedder ranks far above is read and shown, not the one sharing it."""
    passage = f"{BOOKING}\n{MEALS}"
    embedder = _Cosines({MEALS: 0.46, BOOKING: 0.21})
    plan = FocusPlan(sentences=1)
    [focused] = focus_passages(DEMO_QUESTION, [], [citation(passage)], plan, embedder)  # type: ignore[arg-type]
    assert focused.text == MEALS
    words_only = FocusPlan(sentences=1, kind_weight=0.0)
    [by_words] = focus_passages(DEMO_QUESTION, [], [citation(passage)], words_only, None)
    assert by_words.text == BOOKING  # words alone cannot tell "daily" from "trips"
    [by_kind] = focus_passages(DEMO_QUESTION, [], [citation(passage)], plan, None)
    assert by_kind.text == MEALS  # ... the number "how much" asks for can
    similarity = question_similarity(DEMO_QUESTION, embedder)  # type: ignore[arg-type]
    evidence = choose_evidence(DEMO_QUESTION, "", [citation(passage)], (), similarity, 0.2)
    assert evidence[0].text == MEALS
    # a close sentence qualifies by its cosine; below min_similarity only its words count
    assert [e.text for e in choose_evidence(DEMO_QUESTION, "", [citation(MEALS)], (),
                                            similarity, 0.2)] == [MEALS]  # fmt: skip
    assert choose_evidence(DEMO_QUESTION, "", [citation(MEALS)], (), similarity, 0.5) == []


class _Directions:
    """An embedder whose unit vectors are given per text (queries and sentences alike)."""

    def __init__(self, vectors: dict[str, tuple[float, float]]) -> None:
        self.vectors = vectors

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.array([self.vectors.get(text, (0.0, 0.0)) for text in texts])

    def embed_queries(self, texts: list[str], instruction: str) -> np.ndarray:
        return self.embed_documents(texts)


def test_a_follow_up_reads_by_its_own_cosine() -> None:
    """Joined to the question before it, a follow-up's query stays closest to the row that
    answered that one; the follow-up alone finds its own row, the earlier question's words
    still counting in the keyword share."""
    earlier = "Who is the manager in Nairobi?"
    nairobi, toronto = "Nairobi | Grace Wanjiru | 63", "Toronto | Olivia Tremblay | 37"
    table = f"city | manager | staff\n{nairobi}\n{toronto}"
    embedder = _Directions({
        nairobi: (1.0, 0.0), toronto: (0.6, 0.8),
        "And in Toronto?": (0.0, 1.0), f"{earlier}\nAnd in Toronto?": (1.0, 0.0),
    })  # fmt: skip
    [focused] = focus_passages("And in Toronto?", [earlier], [citation(table, "A1:C3")],
                               FocusPlan(sentences=1), embedder)  # type: ignore[arg-type]  # fmt: skip
    assert focused.text.splitlines() == ["city | manager | staff", toronto]


def test_focus_keeps_a_table_header_with_its_row() -> None:
    table = "city | manager | staff\nLisbon | Beatriz Santos | 85\nTallinn | Kaspar Tamm | 42"
    [focused] = focus_passages("Who is the manager in Tallinn?", [], [citation(table, "A1:C3")],
                               FocusPlan(sentences=1), None)  # fmt: skip
    assert focused.text.splitlines() == ["city | manager | staff", "Tallinn | Kaspar Tamm | 42"]


# --- the real models on the demo corpus -----------------------------------------------------------


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, minilm_path: Path, smollm2_path: Path
) -> Iterator[AskService]:
    from gritdesk.rag.index_service import IndexService
    from gritdesk.session import open_session
    from gritdesk.settings import Settings

    db = tmp_path_factory.mktemp("rules") / "index.db"
    settings = Settings(
        db=db, model=str(minilm_path), recipe="minilm", chat_model=str(smollm2_path)
    )
    session = open_session(settings)
    assert session.engine is not None
    IndexService.of_session(session).run([CORPUS])
    yield AskService(session)
    session.close()


def test_small_model_defaults(service: AskService) -> None:
    options = service.options()
    assert service.small_model and options.focus is not None and options.first_line
    assert options.generation.stop == ()  # the first line ends it; the KV is kept
    assert options.contrast == Contrast(SMALL_MODEL_CONTRAST_ALPHA)  # context-aware decoding
    off = service.resolve(AskOptions(contrast=Contrast(0.0)))
    assert off.contrast == Contrast(0.0)  # plain decoding, as asked


def test_an_unrelated_question_is_not_answered(service: AskService) -> None:
    answer = service.ask("What is the boiling point of liquid nitrogen in kelvin?")
    assert answer.text == CANNOT_ANSWER
    assert answer.timings.generated_tokens == 0 and answer.not_found == []
    assert answer.sources  # the closest passages are still listed


def test_a_question_about_a_place_the_files_do_not_mention(service: AskService) -> None:
    answer = service.ask("What is the hotel limit per night in Australia?")
    assert answer.text == CANNOT_ANSWER
    assert any("Australia" in notice for notice in answer.notices)


def test_what_the_files_never_say_of_a_name_is_not_answered(service: AskService) -> None:
    # the release notes name Aurora in every passage and never its product manager
    answer = service.ask("Who is the product manager of Aurora?")
    assert answer.text == CANNOT_ANSWER and answer.timings.generated_tokens == 0
    assert any("manager" in notice for notice in answer.notices)
    # the same notes answer what changed (an action asked, the notes' words differ)
    assert not service.prepare("What changed in Aurora 2.3?").cannot_answer
    assert not service.prepare("Which keys open the command palette in Aurora?").cannot_answer


def test_the_demo_question_is_answered_from_the_allowance(service: AskService) -> None:
    # "trips" is in the booking rule, no word of the question in the meals sentence: MiniLM's
    # cosine leads both the focus and the evidence (what the 135M model then says of the
    # sentence it read is its own: only that it says something is asserted)
    prepared = service.prepare(DEMO_QUESTION)
    assert not prepared.cannot_answer
    assert Path(prepared.sources[0].hit.path).name == "travel-policy.md"
    assert [s.read for s in prepared.sources if s.read] == [MEALS]
    for _ in service.stream(prepared):
        pass
    answer = service.result(prepared)
    assert answer.text.strip() and answer.text != CANNOT_ANSWER
    assert answer.evidence[0].text == MEALS
    assert answer.evidence[0].location.endswith("travel-policy.md:13")


def test_a_follow_up_retrieves_with_the_conversation(service: AskService) -> None:
    first = service.ask("How much are hotel costs refunded per night in Europe?")
    assert "140" in first.text + " ".join(e.text for e in first.evidence)
    history = [ChatTurn(first.question, first.text)]
    prepared = service.prepare("And in North America?", None, history)
    assert prepared.earlier_questions == (first.question,)
    assert not prepared.cannot_answer
    assert Path(prepared.sources[0].hit.path).name == "travel-policy.md"
    read = " ".join(s.read or "" for s in prepared.sources)
    assert "210" in read  # the model reads the North America sentence
    for _ in service.stream(prepared):
        pass
    answer = service.result(prepared)
    assert "210" in answer.text + " ".join(e.text for e in answer.evidence)


def test_a_follow_up_that_changes_the_subject_finds_its_own_file(service: AskService) -> None:
    # joined to the hotel question, "cafeteria ... Fridays" still ranked the travel policy
    # first; fused with the follow-up's own ranking, the onboarding notes lead
    history = [ChatTurn("How much are hotel costs refunded per night in Europe?", "140 euros.")]
    prepared = service.prepare("And when does the cafeteria close on Fridays?", None, history)
    assert not prepared.cannot_answer
    assert Path(prepared.sources[0].hit.path).name == "onboarding.txt"
    assert "travel-policy.md" in {Path(s.hit.path).name for s in prepared.sources}
