"""What a small model reads of its passages: the few sentences that best match the question,
not whole chunks.

A 135M model given four whole chunks copies whatever line it read last, or a number from
another file; given the two or three sentences that match the question it mostly copies
the right one. Sentences are split as the evidence is (`evidence.passage_sentences`) and
scored by the embedder's cosine to the question (when the embedder was trained to embed:
MiniLM's cosines mean something, a chat model's own vectors do not) plus the share of the
question's rarity-weighted words they hold (`evidence.keyword_shares`), `keyword_weight` at
most: the cosine leads, so one shared word ("trips" in the booking rule, asked "food money
per day on a trip") does not outweigh the sentence MiniLM ranks far above it ("a daily
allowance of 45 euros"). A sentence holding the kind of fact asked (a number for "how
much", a name for "who": `answer_kind.py`) that the question does not say scores
`kind_weight` more. A follow-up's earlier questions count in the words only (the
cosine is the follow-up's own: `question_similarity`). A table keeps its header row,
without which a row is a list of values, and a sentence its Markdown heading: scored and
read under "Orbit 4.1", "attachments may be up to 250 MB" says which release.

The chosen sentences stay in their file order, each passage's apart; sources the focus
leaves empty are dropped from the prompt (not from retrieval). `AskOptions.focus` turns it
on (`ask_defaults.FocusPlan`); AskService does so for small models.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np

from gritdesk.rag.answer_kind import asked_kind, holds_kind
from gritdesk.rag.ask_defaults import FocusPlan
from gritdesk.rag.evidence import PassageSentence, keyword_shares, keyword_words, passage_parts
from gritdesk.runtime.protocols import DocumentEmbedder
from gritdesk.store.citations import Citation

_TABLE_BAR = re.compile(r"\s*\|\s*")
_NAME_PARTS = re.compile(r"[-_.\s]+")


@dataclass(frozen=True)
class Focused:
    """One source's sentences as the model reads them ("" when none was chosen)."""

    text: str
    best: float  # the best score among its sentences


def focus_passages(
    question: str,
    earlier: Sequence[str],
    citations: Sequence[Citation],
    plan: FocusPlan,
    embedder: DocumentEmbedder | None,
) -> list[Focused]:
    """For each of `citations` (in rank order), the sentences the model reads of it: the
    plan's `sentences` best-scoring sentences over all passages, each with `neighbours`
    sentences either side, in file order."""
    parts = [passage_parts(c) for c in citations]
    flat = [(i, j) for i, sentences in enumerate(parts) for j in range(len(sentences))]
    if not flat:
        return [Focused("", 0.0) for _ in citations]
    texts = [parts[i][j].text for i, j in flat]
    # a sentence is scored under its heading: "Orbit 4.1" is not said in the changed line
    scored = [_under_heading(parts[i][j]) for i, j in flat]
    # and its words under its file's name too: "red lentil soup" is said by every sentence
    # of red-lentil-soup.md alike, so the words that tell them apart ("vegan") count
    topics = [_file_words(c.path) for c in citations]
    worded = [f"{topics[i]} {text}" for (i, _), text in zip(flat, scored, strict=True)]
    combined = np.array(keyword_shares(question, earlier, worded)) * plan.keyword_weight
    if embedder is not None:
        combined = combined + np.array(question_similarity(question, embedder)(scored))
    kind = asked_kind(question)
    for n, (i, j) in enumerate(flat):  # a title or header row alone answers nothing
        if parts[i][j].lead:
            combined[n] -= plan.lead_penalty
        elif kind is not None and holds_kind(texts[n], kind, question):
            combined[n] += plan.kind_weight
    chosen: set[tuple[int, int]] = set()
    for n in np.argsort(-combined, kind="stable")[: plan.sentences]:
        i, j = flat[n]
        for k in range(j - plan.neighbours, j + plan.neighbours + 1):
            if 0 <= k < len(parts[i]):
                chosen.add((i, k))
        if citations[i].locator is not None or _is_table(parts[i]):
            chosen.add((i, 0))  # a row needs its header
    result = []
    for i, sentences in enumerate(parts):
        picked = []
        for j, s in enumerate(sentences):
            if (i, j) not in chosen:
                continue
            if s.heading and s.heading not in picked and _adds_asked(s, question):
                picked.append(s.heading)  # read under the heading that says what was asked
            picked.append(s.text)
        own = [combined[n] for n, (a, _) in enumerate(flat) if a == i]
        result.append(Focused("\n".join(picked), max(own, default=0.0)))
    return result


def question_similarity(
    question: str, embedder: DocumentEmbedder
) -> Callable[[Sequence[str]], list[float]]:
    """The embedder's cosine of each of some sentences to the question; focus and evidence
    rank by it. The question alone, a follow-up too: joined to the question before it, the
    query stays closest to the sentence that answered that one ("And in Toronto?" after the
    Nairobi office's manager read the Nairobi row); the earlier questions' words still
    count in the keyword share (`keyword_shares`), which finds what "it" is
    (benchmarks/answer_eval.py --decisions-only: follow-ups read their fact 15/16, not
    6/16)."""
    query_vector = embedder.embed_queries([question], _instruction(embedder))[0]

    def cosines(texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        return [float(c) for c in embedder.embed_documents(list(texts)) @ query_vector]

    return cosines


def _under_heading(sentence: PassageSentence) -> str:
    """The sentence as it is scored: under its heading, a Markdown table row's cells
    without their bars ("Ingredients: water 350 g")."""
    text = " ".join(_TABLE_BAR.sub(" ", sentence.text).split())
    return f"{sentence.heading}: {text}" if sentence.heading else text


def _adds_asked(sentence: PassageSentence, question: str) -> bool:
    """Whether the sentence's heading holds a word of the question that the sentence does
    not ("Orbit 4.1" over "attachments may be up to 250 MB"): only then does the model read
    the heading too; a heading that adds nothing asked ("Waste") is one more line to
    misread."""
    asked = set(keyword_words(question))
    return bool(asked & set(keyword_words(sentence.heading)) - set(keyword_words(sentence.text)))


def _file_words(path: str) -> str:
    """A file's name as words: `red-lentil-soup.md` -> "red lentil soup"."""
    return " ".join(_NAME_PARTS.split(PurePath(path).stem))


def _is_table(sentences: Sequence[object]) -> bool:
    first = getattr(sentences[0], "text", "") if sentences else ""
    return first.count(",") >= 2 and not first.rstrip().endswith(".")


def _instruction(embedder: DocumentEmbedder) -> str:
    from gritdesk.rag.retrieve import retrieval_instruction

    return retrieval_instruction(embedder)
