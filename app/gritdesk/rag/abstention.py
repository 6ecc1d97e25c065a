"""When the files cannot answer: the abstention rules AskService applies before generating.

Judged from what retrieval found, never from what the model would say: nothing matches
(no keyword, a low cosine), the question names something no passage holds, or the passages
that hold its names never say what it asks of them. Measured by `benchmarks/answer_eval.py
--decisions-only` (README, "Answers").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from gritdesk.rag.evidence import STOP_WORDS as SENTENCE_STOP_WORDS
from gritdesk.rag.grounding import answer_facts, normal_number, ungrounded_facts
from gritdesk.rag.retrieve import STOP_WORDS, Hit, keyword_terms

_POSSESSIVE = re.compile(r"(?<=\w)['\u2019]s\b")
_WORD = re.compile(r"\w+")
_DOTTED_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)+")  # a version (4.2) or a decimal (6.80)


def same_word(a: str, b: str) -> bool:
    """Whether two lowercased words may be forms of one word: equal; or, for words of
    letters, alike up to an ending of at most three letters each, the shorter one's start
    (day, days; Kenya, Kenyan) or four letters or more (encrypted, encryption; spend,
    spent), so Austria is not Australia. Lenient on purpose: a word taken for present
    answers, one taken for missing abstains. Words with digits (Q3, B214) must be equal."""
    if a == b:
        return True
    if not (a.isalpha() and b.isalpha()):
        return False
    shorter = min(len(a), len(b))
    shared = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), shorter)
    endings = max(len(a), len(b)) - shared
    return endings <= 3 and (shared >= 4 or shared == shorter >= 3)


def _holds_word(words: set[str], word: str) -> bool:
    return word in words or any(same_word(word, w) for w in words)


def _holds_name(passage: str, name: str) -> bool:
    """Whether `passage` holds `name`: a version or decimal as a number with a point (5.0 is
    not the 5 of "5 nights"), any other number as `ungrounded_facts` reads it, a name's
    every word in any of its forms (`same_word`: Kenyan holds for Kenya)."""
    if _DOTTED_NUMBER.fullmatch(name):
        return normal_number(name) in {normal_number(n) for n in _DOTTED_NUMBER.findall(passage)}
    if any(c.isdigit() for c in name):
        return not ungrounded_facts(name, [passage])
    words = {w.lower() for w in _WORD.findall(passage)}
    return all(_holds_word(words, w.lower()) for w in _WORD.findall(name))


def question_names(question: str) -> list[str]:
    """The names a question asks about: capitalised words past its first, codes such as Q3
    or B214, versions such as 5.0. Plain integers are not names ("a 7-hour flight" is asked
    of a rule for 6 hours or more)."""
    rest = _POSSESSIVE.sub("", question).split(None, 1)
    return [
        fact
        for fact in answer_facts(rest[1] if len(rest) > 1 else "")
        if not fact.isdigit() and fact.lower() not in STOP_WORDS
    ]


def names_not_found(question: str, passages: Sequence[str]) -> list[str]:
    """The names the question asks about (`question_names`) that none of `passages` holds:
    a question about Australia or Orbit 5.0 when the files speak of Europe and Orbit 4.2."""
    return [
        name
        for name in question_names(question)
        if not any(_holds_name(passage, name) for passage in passages)
    ]


def content_words(question: str) -> list[str]:
    """The question's words that say what it asks (lowercased, once each): its keywords
    less the words any question or sentence has ("how many", "much", "time") and plain
    numbers."""
    words = keyword_terms(_POSSESSIVE.sub("", question))
    return [w for w in words if w not in SENTENCE_STOP_WORDS and not w.isdigit()]


# Words that open a noun phrase: what follows them names a thing ("the chief executive",
# "how many users", "Samir's salary"), not an action ("when did Aurora ship")
_DETERMINERS = frozenset(
    "a an the this that these those my your his her its our their whose which many much "
    "each every".split()
)
_QUESTION_TOKEN = re.compile(r"['\u2019]s\b|\w+(?:[.-]\w+)*|[^\w\s]")


def noun_phrase_words(question: str) -> set[str]:
    """The words (lowercased) of the question's noun phrases: those after a determiner or a
    possessive, up to the next function word or mark ("Who is the chief executive of
    Northwind Traders?" -> chief, executive; "What changed in Aurora 2.3?" -> none)."""
    found: set[str] = set()
    open_phrase, previous = False, ""
    for token in _QUESTION_TOKEN.findall(question):
        word = token.lower()
        possessive = word in ("'s", "\u2019s") and previous not in STOP_WORDS
        if word in _DETERMINERS or possessive:
            open_phrase = True
        elif open_phrase and token[0].isalnum() and word not in STOP_WORDS:
            found.update(_WORD.findall(word))
        else:
            open_phrase = False
        previous = word
    return found


def asked_not_found(question: str, passages: Sequence[str]) -> list[str]:
    """What the question asks of the names it gives, when the passages that hold those
    names hold none of it: "What is Samir Haddad's salary?" of a welcome mail to Samir
    Haddad that says nothing of pay -> ["salary"]. [] when the question names nothing, asks
    nothing past its names ("And in Osaka?"), a passage holding the names holds one of its
    other words in any form (`same_word`), or what it asks holds no thing, only an action
    ("When did Aurora 2.4 ship?": release notes say "Version 2.4 (9 March)";
    `noun_phrase_words`)."""
    names = question_names(question)
    naming = [
        {w.lower() for w in _WORD.findall(passage)}
        for passage in passages
        if names and all(_holds_name(passage, name) for name in names)
    ]
    if not naming:
        return []
    named = {w.lower() for name in names for w in _WORD.findall(name)}
    asked = [w for w in content_words(question) if w not in named]
    if any(_holds_word(words, w) for words in naming for w in asked):
        return []
    if not noun_phrase_words(question) & set(asked):
        return []
    return asked


def cannot_answer(
    question: str,
    hits: Sequence[Hit],
    no_match_similarity: float | None,
    *,
    best_sentence: Callable[[], float] | None = None,
    stated_similarity: float | None = None,
    follows_answer: bool = False,
) -> str:
    """Why the files cannot answer `question`, judged from what retrieval found; "" when they
    may. Nothing matches: no keyword of the question in any passage and (for an embedder
    with calibrated cosines) the best cosine below `no_match_similarity`; the question
    names something no passage holds (`names_not_found`); or the passages that hold its
    names hold nothing else it asks (`asked_not_found`), unless a sentence may say it in
    other words: `best_sentence()` (the embedder's best cosine of a passage sentence to the
    question) reaches `stated_similarity` (uncalibrated, None: the words alone decide).

    A follow-up of a question the files answered (`follows_answer`) is never taken for
    matching nothing: its own words may match nothing ("At what time does it start?") while
    its passages are the conversation's. A name or a thing it asks that no passage holds
    still is ("And in Australia?" after the hotel limit in Europe)."""
    if not hits:
        return "no passage matches the question"
    if not follows_answer and all(hit.keyword_rank is None for hit in hits):
        best = max((hit.vector_similarity or 0.0 for hit in hits), default=0.0)
        if no_match_similarity is None or best < no_match_similarity:
            return "no passage matches the question"
    passages = [f"{h.heading_path}\n{h.text}" for h in hits]
    missing = names_not_found(question, passages)
    if missing:
        return "no passage mentions " + ", ".join(missing)
    unasked = asked_not_found(question, passages)
    if unasked:
        if (
            stated_similarity is not None
            and best_sentence is not None
            and best_sentence() >= stated_similarity
        ):
            return ""
        names = " ".join(question_names(question))
        return f"no passage about {names} mentions " + ", ".join(unasked)
    return ""
