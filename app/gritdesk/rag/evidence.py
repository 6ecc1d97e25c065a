"""The sentence or two of the cited passages that best support an answer, with file:line.

A small model's answer cannot be trusted alone; the sentence it should have read can be
shown beside it, so a reader checks the answer in one glance (and still has the fact when
the answer is wrong). Sentences are scored by the words they share with the question and
the answer, each word weighted by how rare it is among the passages' sentences (so "euros"
in every line counts little, "Ledgerly" a lot); the question's words count twice, earlier
questions of a conversation once, so a follow-up ("and in North America?") still finds its
sentence.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from gritdesk.rag.grounding import COMMON_WORDS, answer_facts
from gritdesk.store.citations import Citation, chunk_location

MAX_SENTENCES = 2
SECOND_SENTENCE_SHARE = 0.6  # a second sentence is shown when it scores this share of the best
WRAPPED_LINE_CHARS = 60  # a line this long that ends mid-sentence continues on the next
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"(])")
_LINE_MARKUP = re.compile(r"^\s*(?:#+\s+|[-*+]\s+|>\s+|\d+[.)]\s+)")
SHORT_SENTENCE_WORDS = 4  # "Fire drill." alone is a label: it joins the sentence after it
STOP_WORDS = COMMON_WORDS | frozenset(
    "am been being into just like must only other out over own same should such than under "
    "up very was way much many how long big large high time".split()
)


@dataclass(frozen=True)
class Evidence:
    """One supporting sentence: which source it is from and where in the file."""

    source: Citation
    text: str
    line: int | None  # the file's line, when the passage's lines map onto the file's

    @property
    def location(self) -> str:
        """`path:12` (or the passage's own location: lines, page, slide, cells)."""
        return self._location(self.source.path)

    @property
    def short_location(self) -> str:
        """As `location`, with the path shown within its indexed folder."""
        return self._location(self.source.display_path or self.source.path)

    def _location(self, path: str) -> str:
        if self.line is None:
            c = self.source
            return chunk_location(path, c.start_line, c.end_line, c.page, c.locator)
        return chunk_location(path, self.line, self.line, None, None)

    def as_json(self) -> dict[str, object]:
        return {
            "n": self.source.number,
            "text": self.text,
            "location": self.location,
            "path": self.source.path,
            "line": self.line,
        }


def passage_sentences(citation: Citation) -> list[tuple[str, int | None]]:
    """The sentences of a cited passage, each with the file line it starts on. Lines map
    onto the file when the passage has exactly its line range's count of lines (text,
    Markdown, code); else (a repeated table header, a split long line, no lines) the line
    is None. A prose line wrapped onto the next is joined to it; table rows never are."""
    lines = citation.text.split("\n")
    start, end = citation.start_line, citation.end_line
    mapped = start is not None and end is not None and end - start + 1 == len(lines)
    paragraphs: list[tuple[str, int | None]] = []
    joining = False
    for offset, raw in enumerate(lines):
        text = _LINE_MARKUP.sub("", raw).strip()
        heading = raw.lstrip().startswith("#")
        if not text or (heading and not any(ch.isdigit() for ch in text)):
            joining = False  # a title says what a passage is about, not a fact; one with a
            continue  # figure ("## Orbit 4.2 (released 3 March 2026)") stays
        number = start + offset if mapped and start is not None else None
        if (
            joining
            and not _LINE_MARKUP.match(raw)
            and (text[0].islower() or len(paragraphs[-1][0]) >= WRAPPED_LINE_CHARS)
        ):
            paragraphs[-1] = (f"{paragraphs[-1][0]} {text}", paragraphs[-1][1])
        else:
            paragraphs.append((text, number))
        joining = citation.locator is None and not heading and text[-1] not in ".!?:;"
    return [(sentence, number) for text, number in paragraphs for sentence in _sentences(text)]


def _sentences(paragraph: str) -> list[str]:
    """The sentences of a paragraph, a short label joined to the sentence after it."""
    sentences: list[str] = []
    label = ""
    for part in _SENTENCE_END.split(paragraph):
        part = f"{label} {part.strip()}".strip()
        label = part if len(part.split()) < SHORT_SENTENCE_WORDS else ""
        if not label and part:
            sentences.append(part)
    if label:
        sentences.append(label)
    return sentences


def _words(text: str) -> set[str]:
    """Content words, a plural's "s" dropped ("flights" meets "flight")."""
    words = (t.lower() for t in _TOKEN.findall(text))
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words if w not in STOP_WORDS}


def choose_evidence(
    question: str,
    answer: str,
    citations: Sequence[Citation],
    earlier_questions: Sequence[str] = (),
) -> list[Evidence]:
    """Up to MAX_SENTENCES sentences of `citations` that share the most (rare) words with
    the question (counted twice) and the answer. A sentence qualifies by sharing a word
    with the question (or an earlier one) or a number or name with the answer, so an
    answer that copied an unrelated sentence rarely makes it the evidence, while "45 euros"
    still finds the allowance when the question said "food money". None when none does."""
    candidates = [
        (citation, text, line)
        for citation in citations
        for text, line in passage_sentences(citation)
    ]
    if not candidates:
        return []
    words = [_words(text) for _, text, _ in candidates]
    frequency = Counter(w for ws in words for w in ws)
    rarity = {w: math.log(1 + len(candidates) / n) for w, n in frequency.items()}
    asked: Counter[str] = Counter()
    for text, weight in (*((q, 1.0) for q in earlier_questions), (question, 2.0)):
        for w in _words(text):
            asked[w] += weight
    answered = _words(answer)
    facts = _words(" ".join(answer_facts(answer)))

    def score(ws: set[str]) -> float:
        if not (ws & asked.keys() or ws & facts):
            return 0.0
        from_question = sum(rarity[w] * asked[w] for w in ws if w in asked)
        return from_question + sum(rarity[w] for w in ws & answered)

    scored = sorted(((score(ws), -rank) for rank, ws in enumerate(words)), reverse=True)
    best = scored[0][0]
    if best <= 0:
        return []
    chosen: list[Evidence] = []
    seen: set[tuple[str, str]] = set()  # overlapping chunks repeat their shared lines
    for score, rank in scored:
        if len(chosen) == MAX_SENTENCES or score < best * SECOND_SENTENCE_SHARE:
            break
        citation, text, line = candidates[-rank]
        if (citation.path, text) not in seen:
            seen.add((citation.path, text))
            chosen.append(Evidence(citation, text, line))
    return chosen
