"""The sentence or two of the cited passages that best support an answer, with file:line.

A small model's answer cannot be trusted alone; the sentence it should have read can be
shown beside it, so a reader checks the answer in one glance (and still has the fact when
the answer is wrong). Sentences are scored by the words they share with the question and
the answer, each word weighted by how rare it is among the passages' sentences (so "euros"
in every line counts little, "Ledgerly" a lot); the question's words count most, earlier
questions of a conversation as much as the answer's, so a follow-up ("and in North
America?") still finds its sentence. A passage's title line counts little: it shares the
topic's words with every question about it.

With an embedder trained to embed (MiniLM), its cosine of each sentence to the question
leads and the words count as the share of the question's (rarity-weighted) words a
sentence holds, `KEYWORD_WEIGHT` at most: "food money per day on a trip" shares "trips"
with the booking rule and no word with "a daily allowance of 45 euros", which MiniLM ranks
far above it; one shared word of five must not outweigh that. A sentence then also qualifies
by its cosine alone (at least the recipe's `no_match_similarity`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gritdesk.rag.grounding import COMMON_WORDS, answer_facts
from gritdesk.store.citations import Citation, chunk_location

MAX_SENTENCES = 2
SECOND_SENTENCE_SHARE = 0.6  # a second sentence is shown when it scores this share of the best
WRAPPED_LINE_CHARS = 60  # a line this long that ends mid-sentence continues on the next
QUESTION_WEIGHT = 3.0  # a question word against an answer's (1) or an earlier question's (1)
LEAD_WEIGHT = 0.1  # a passage's first line, when no sentence (a title, a table header): it
# shares the topic's words with every question about it without holding the answer
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"(])")
# a word that ends in a full stop without ending the sentence: a title, an initial, e.g.
_ABBREVIATION_END = re.compile(
    r"(?:^|[\s(])(?:Mr|Mrs|Ms|Dr|Prof|St|Mt|Jr|Sr|No|Nr|Vol|Fig|approx|ca|vs|e\.g|i\.e|[A-Z])\.$"
)
_LINE_MARKUP = re.compile(r"^\s*(?:#+\s+|[-*+]\s+|>\s+|\d+[.)]\s+)")
KEYWORD_WEIGHT = 0.5  # with cosines: a sentence holding every word of the question scores
# this much on top of its cosine (rag/focus.py weighs its keywords the same way)
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


@dataclass(frozen=True)
class PassageSentence:
    text: str
    line: int | None  # the file line it starts on, when the passage's lines map onto it
    lead: bool  # the passage's first line when it is no sentence (a title, a header row)
    heading: str = ""  # the Markdown heading it stands under in the passage, if any


def passage_parts(citation: Citation) -> list[PassageSentence]:
    """`passage_sentences` with each one's lead flag (see `_passage_sentences`)."""
    return [PassageSentence(*parts) for parts in _passage_sentences(citation)]


def passage_sentences(citation: Citation) -> list[tuple[str, int | None]]:
    """The sentences of a cited passage, each with the file line it starts on. Lines map
    onto the file when the passage has exactly its line range's count of lines (text,
    Markdown, code); else (a repeated table header, a split long line, no lines) the line
    is None. A prose line wrapped onto the next is joined to it; table rows never are; a
    question in the text ("Q: How often...?") is joined to its answer after it."""
    return [(text, line) for text, line, _, _ in _passage_sentences(citation)]


def _passage_sentences(citation: Citation) -> list[tuple[str, int | None, bool, str]]:
    """As `passage_sentences`, each flagged when it is the passage's lead: a first line
    that is no sentence (a title, a table's header row, a mail's header), and with the
    Markdown heading it stands under ("Orbit 4.1" over "attachments may be up to 250 MB")."""
    lines = citation.text.split("\n")
    start, end = citation.start_line, citation.end_line
    mapped = start is not None and end is not None and end - start + 1 == len(lines)
    table = citation.locator is not None
    paragraphs: list[tuple[str, int | None]] = []
    headings: list[bool] = []  # a Markdown heading kept for its figure is never a lead
    under: list[str] = []  # each paragraph's heading
    current = ""
    last_line = ""
    titled = False  # a heading came first: the first paragraph is no title of its own
    joining = False
    for offset, raw in enumerate(lines):
        text = _LINE_MARKUP.sub("", raw).strip()
        heading = raw.lstrip().startswith("#")
        if heading and text:  # a title ("# ...") is over every sentence of the file alike
            current = text if raw.lstrip().startswith("##") else ""
            titled = titled or not paragraphs
        if not text or (heading and not any(ch.isdigit() for ch in text)):
            joining = False  # a title says what a passage is about, not a fact; one with a
            continue  # figure ("## Orbit 4.2 (released 3 March 2026)") stays
        number = start + offset if mapped and start is not None else None
        previous = paragraphs[-1][0] if paragraphs else ""
        if joining and (
            previous.endswith("?")
            or (
                not _LINE_MARKUP.match(raw)
                and (text[0].islower() or len(last_line) >= WRAPPED_LINE_CHARS)
            )
        ):
            paragraphs[-1] = (f"{previous} {text}", paragraphs[-1][1])
        elif joining and _is_label(previous) and not table:
            # a plain-text heading ("Spring concert", "Prices") leads into what follows it:
            # alone it matches a question about its topic without holding the answer
            paragraphs[-1] = (f"{previous}: {text}", paragraphs[-1][1])
        else:
            paragraphs.append((text, number))
            headings.append(heading)
            under.append("" if heading else current)
        joining = text.endswith("?") or (not table and not heading and text[-1] not in ".!:;")
        last_line = text  # a long line wraps on; a paragraph grown long does not
    sentences = []
    for index, (text, number) in enumerate(paragraphs):
        lead = index == 0 and text[-1] not in ".!?" and not headings[index] and not titled
        for position, sentence in enumerate(_sentences(text)):
            sentences.append((sentence, number, lead and position == 0, under[index]))
    return sentences


def _is_label(text: str) -> bool:
    """A short line without a sentence's end: a plain-text heading ("Spring concert")."""
    return len(text.split()) < SHORT_SENTENCE_WORDS and text[-1].isalnum()


def _split_sentences(paragraph: str) -> list[str]:
    """The paragraph cut after each sentence's end, but not after an abbreviation or an
    initial ("Dr. Osei", "St. Columba's", "J. Smith", "e.g. a laptop")."""
    parts: list[str] = []
    for part in _SENTENCE_END.split(paragraph):
        if parts and _ABBREVIATION_END.search(parts[-1]):
            parts[-1] = f"{parts[-1]} {part}"
        else:
            parts.append(part)
    return parts


def _sentences(paragraph: str) -> list[str]:
    """The sentences of a paragraph, a short label ("Fire drill.") or a question joined to
    the sentence after it."""
    sentences: list[str] = []
    label = ""
    for part in _split_sentences(paragraph):
        part = f"{label} {part.strip()}".strip()
        short = len(part.split()) < SHORT_SENTENCE_WORDS or part.endswith("?")
        label = part if short else ""
        if not label and part:
            sentences.append(part)
    if label:
        sentences.append(label)
    return sentences


def _stem(word: str) -> str:
    """A crude stem, enough for "chaired" to meet "chair", "cooking" "cook", "flights"
    "flight"."""
    for suffix in ("ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def keyword_words(text: str) -> set[str]:
    """The content words of `text`, stemmed, as keyword scores count them."""
    return _words(text)


def _words(text: str) -> set[str]:
    """Content words, stemmed."""
    words = (t.lower() for t in _TOKEN.findall(text))
    return {_stem(w) for w in words if w not in STOP_WORDS}


def _asked_words(question: str, earlier_questions: Sequence[str]) -> Counter[str]:
    """The question's words (QUESTION_WEIGHT each) and the earlier questions' (1 each)."""
    asked: Counter[str] = Counter()
    for text, weight in (*((q, 1.0) for q in earlier_questions), (question, QUESTION_WEIGHT)):
        for w in _words(text):
            asked[w] += weight
    return asked


def _rarity(words: Sequence[set[str]]) -> dict[str, float]:
    """Each word's weight: log(1 + sentences / sentences holding it)."""
    frequency = Counter(w for ws in words for w in ws)
    return {w: math.log(1 + len(words) / n) for w, n in frequency.items()}


def _asked_mass(asked: Counter[str], rarity: dict[str, float], n_sentences: int) -> float:
    """What a sentence holding every asked word would score: the divisor that turns a
    keyword score into the share of the question a sentence holds (a word no sentence
    holds weighs as one that a single sentence holds)."""
    rarest = math.log(1 + n_sentences)
    return sum(weight * rarity.get(w, rarest) for w, weight in asked.items())


def keyword_shares(
    question: str, earlier_questions: Sequence[str], sentences: Sequence[str]
) -> list[float]:
    """Each sentence's share (0 to 1) of the question's rarity-weighted words (the earlier
    questions' count less): the keyword half of what `choose_evidence` scores, before an
    answer exists (rag/focus.py). A share of the question, not of the best sentence's
    score: the one sentence sharing one word of five ("trips") is not a full match."""
    words = [_words(text) for text in sentences]
    rarity = _rarity(words)
    asked = _asked_words(question, earlier_questions)
    mass = _asked_mass(asked, rarity, len(words))
    if mass <= 0:
        return [0.0 for _ in words]
    return [sum(rarity[w] * asked[w] for w in ws if w in asked) / mass for ws in words]


def choose_evidence(
    question: str,
    answer: str,
    citations: Sequence[Citation],
    earlier_questions: Sequence[str] = (),
    similarity: Callable[[Sequence[str]], Sequence[float]] | None = None,
    min_similarity: float | None = None,
) -> list[Evidence]:
    """Up to MAX_SENTENCES sentences of `citations` that share the most (rare) words with
    the question (counted thrice: a small model's answer may be about something else) and
    the answer (only the words it adds to the question). A sentence qualifies by sharing a
    word with the question (or an earlier one) or a number or name with the answer, so an
    answer that copied an unrelated sentence rarely makes it the evidence, while "45 euros"
    still finds the allowance when the question said "food money". None when none does.

    `similarity` (an embedder's cosine of each sentence to the question, rag/focus.py)
    leads when given: the words then add at most KEYWORD_WEIGHT, and a sentence whose
    cosine reaches `min_similarity` qualifies by it alone."""
    candidates = [
        (citation, text, line, lead)
        for citation in citations
        for text, line, lead, _ in _passage_sentences(citation)
    ]
    if not candidates:
        return []
    words = [_words(text) for _, text, _, _ in candidates]
    rarity = _rarity(words)
    asked = _asked_words(question, earlier_questions)
    answered = _words(answer)
    facts = _words(" ".join(answer_facts(answer)))
    cosines: Sequence[float | None] = [None] * len(candidates)
    mass = 1.0  # keyword scores as they are, when no cosine leads
    if similarity is not None:
        cosines = similarity([text for _, text, _, _ in candidates])
        mass = _asked_mass(asked, rarity, len(words)) / KEYWORD_WEIGHT or 1.0

    def score(ws: set[str], lead: bool, cosine: float | None) -> float:
        close = cosine is not None and min_similarity is not None and cosine >= min_similarity
        if not (ws & asked.keys() or ws & facts or close):
            return 0.0
        from_question = sum(rarity[w] * asked[w] for w in ws if w in asked)
        total = from_question + sum(rarity[w] for w in (ws & answered) - asked.keys())
        total = total / mass + max(cosine or 0.0, 0.0)
        return total * LEAD_WEIGHT if lead else total

    scored = sorted(
        (
            (score(ws, c[3], cosine), -rank)
            for rank, (ws, c, cosine) in enumerate(zip(words, candidates, cosines, strict=True))
        ),
        reverse=True,
    )
    best = scored[0][0]
    if best <= 0:
        return []
    chosen: list[Evidence] = []
    seen: set[tuple[str, str]] = set()  # overlapping chunks repeat their shared lines
    for score, rank in scored:
        if len(chosen) == MAX_SENTENCES or score < best * SECOND_SENTENCE_SHARE:
            break
        citation, text, line, _ = candidates[-rank]
        if (citation.path, text) not in seen:
            seen.add((citation.path, text))
            chosen.append(Evidence(citation, text, line))
    return chosen
