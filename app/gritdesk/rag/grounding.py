"""Which facts of an answer the model was given: numbers, dates and capitalised names in the
answer that appear in no passage (nor in the question) are listed, so an interface can say
"not found in your files: 12.50" instead of letting an invented figure pass as read.

Small models invent exactly these (a price, a date, a person from another file); plain
word matching finds them cheaply and without a second model. A fact counts as found when
the same number (thousands separators, leading zeros and trailing decimal zeros aside) or
the same word (any case) is in the given text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# a number as written: 1,500  6.80  15:30  2026  (a trailing full stop is not part of it)
_NUMBER = re.compile(r"(?<![\w.,:])\d+(?:[.,:]\d+)*")
# a capitalised word (a name, a month, a product: Ledgerly, Halvorsen, B214, Wi-Fi)
_CAPITALISED = re.compile(r"\b[A-Z][\w]*(?:[-'][\w]+)*")
_LIST_MARKER = re.compile(r"(?:^\s*|(?<=:\s))\d+[.)]\s", re.MULTILINE)
_CITATION_MARK = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_WORD = re.compile(r"\w+")
MAX_FACT_CHARS = 40  # a longer "name" is a small model's run-on (Northwind-Expansion-Expansion-…)

# Capitalised because they start a sentence or are the reader's own words, not facts.
COMMON_WORDS = frozenset(
    """a about according after also although an and answer answers any are as at based be
    because before both but by can could did do does each either for from given has have he
    her here hers his how however i if in is it its let many may maybe more most much my no
    not note of on one or our per please she since so some sorry source sources sure than
    thank thanks that the their them then there these they this those though to too unfortunately
    us we were what when where which while who whom whose why will with would yes yet you your
    ok okay hello hi dear yours mr mrs ms dr""".split()
)


def answer_facts(text: str) -> list[str]:
    """The numbers and capitalised names of `text` as written, in order, once each. Numbered
    list markers ("1. ") and citation marks ("[2]") are left out."""
    text = _CITATION_MARK.sub(" ", _LIST_MARKER.sub(" ", text))
    found: dict[str, None] = {}
    for match in sorted([*_NUMBER.finditer(text), *_names(text)], key=lambda m: m.start()):
        found.setdefault(match.group(0).strip(), None)
    return list(found)


def _names(text: str) -> list[re.Match[str]]:
    return [m for m in _CAPITALISED.finditer(text) if m.group(0).lower() not in COMMON_WORDS]


def normal_number(number: str) -> str:
    """`1,500` -> `1500`, `06:00` -> `6:00`, `6.80` -> `6.8`, `3.0` -> `3`."""
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", number):
        number = number.replace(",", "")
    if ":" in number:
        return ":".join(part.lstrip("0") or "0" for part in number.split(":"))
    number = number.replace(",", ".")
    if "." in number:
        whole, _, decimals = number.partition(".")
        decimals = decimals.rstrip("0")
        number = f"{whole}.{decimals}" if decimals else whole
    return number.lstrip("0") or "0"


def ungrounded_facts(answer: str, given: Iterable[str]) -> list[str]:
    """The facts of `answer` (see `answer_facts`) that none of the `given` texts (the
    passages the model read, the question) holds."""
    given_text = "\n".join(given)
    numbers = {normal_number(n) for n in _NUMBER.findall(given_text)}
    numbers |= {n.split(":")[0] for n in numbers if ":" in n}  # "10:00" grounds "10 am"
    words = {w.lower() for w in _WORD.findall(given_text)}
    missing = []
    for fact in answer_facts(answer):
        if fact[0].isdigit():
            if normal_number(fact) not in numbers:
                missing.append(fact)
        elif any(part.lower() not in words for part in _WORD.findall(fact)):
            missing.append(fact)
    return [
        fact if len(fact) <= MAX_FACT_CHARS else fact[:MAX_FACT_CHARS] + "…" for fact in missing
    ]
