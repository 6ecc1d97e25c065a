"""What kind of fact a question asks for, and whether a sentence holds one it did not say.

"How much water goes into the loaf?" asks for a number: of "Makes one loaf." and
"| water | 350 g |" a small model should read the row, though the first shares the rarer
word. Who asks for a name, where for a place (a name or a number: "loading dock 4"), when
for a date or time. A sentence holds such a fact when it has a number or a capitalised
name (as `grounding.answer_facts` finds them) that the question does not already hold:
"Class teacher, 7B" repeats the question's "7B" and answers nothing, and a sentence's
first word is capitalised for being first ("Makes one loaf."). Question words are
the English ones; another language's question gets no kind, and nothing changes for it.
"""

from __future__ import annotations

import re
from typing import Literal

from gritdesk.rag.grounding import answer_facts

Kind = Literal["number", "date", "name", "place"]

_KINDS: tuple[tuple[Kind, re.Pattern[str]], ...] = (
    (
        "date",
        re.compile(
            r"\b(?:when|what time|what date|which date|what day|which day|what year|"
            r"which year|how late|how early|until when|since when)\b"
        ),
    ),
    (
        "number",
        re.compile(
            r"\b(?:how (?:much|many|long|old|big|large|far|often|fast|heavy|high|tall|wide|"
            r"warm|hot|cold)|what (?:is the |are the )?(?:price|cost|fee|amount|number|"
            r"percentage|rate|size|limit|temperature|extension|budget|age|deposit|total)|"
            r"at what (?:temperature|speed|age|time))\b"
        ),
    ),
    ("name", re.compile(r"\b(?:who|whom|whose)\b")),
    (
        "place",
        re.compile(
            r"\b(?:where|which (?:city|country|town|room|building|floor|office|street|venue)|"
            r"what (?:city|country|town|room|building|floor|address))\b"
        ),
    ),
)
_MONTHS_AND_DAYS = frozenset(
    """january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday
    friday saturday sunday""".split()
)
_DIGIT = re.compile(r"\d")
_WORD = re.compile(r"\w[\w'-]*")


def asked_kind(question: str) -> Kind | None:
    """The kind of fact `question` asks for; None when its words do not say (what, which,
    yes or no)."""
    lowered = question.lower()
    for kind, pattern in _KINDS:
        if pattern.search(lowered):
            return kind
    return None


def holds_kind(sentence: str, kind: Kind, question: str) -> bool:
    """Whether `sentence` holds a fact of `kind` that `question` does not already hold."""
    said = {fact.lower() for fact in answer_facts(question)} | set(_WORD.findall(question.lower()))
    first = _WORD.search(sentence)
    for fact in answer_facts(sentence):
        if fact.lower() in said or (first and fact == first.group(0) and first.start() == 0):
            continue
        number = bool(_DIGIT.search(fact))
        if kind == "number" and number:
            return True
        if kind == "date" and (number or fact.lower() in _MONTHS_AND_DAYS):
            return True
        if kind == "name" and not number and fact.lower() not in _MONTHS_AND_DAYS:
            return True
        if kind == "place" and fact.lower() not in _MONTHS_AND_DAYS:
            return True
    return False
