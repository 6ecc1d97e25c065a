"""How a model family embeds and chats: prompt formats and pooling, in one declarative place.

Every prompt string gritdesk feeds a model is written here and nowhere else. The
runtime reads a `Recipe` to embed (attention, pooling, which tokens count) and to
build chat prompts; rag reads it for the cache layouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Attention = Literal["bidirectional", "causal"]
Pooling = Literal["mean", "last"]


@dataclass(frozen=True)
class EmbeddingFormat:
    """Text around what is embedded. The prefix is attended to but never pooled."""

    attention: Attention
    pooling: Pooling
    document_prefix: str
    query_prefix: str  # with `{instruction}`
    query_prefix_no_instruction: str
    suffix: str = ""
    append_eos: bool = False

    def document(self) -> str:
        return self.document_prefix

    def query(self, instruction: str | None) -> str:
        if not instruction:
            return self.query_prefix_no_instruction
        return self.query_prefix.format(instruction=instruction)


@dataclass(frozen=True)
class ChatFormat:
    """One user turn is `user_prefix + message + assistant_prefix`; turns joined by `turn_sep`."""

    user_prefix: str
    assistant_prefix: str
    turn_sep: str
    answer_ends_with_eos: bool = True


@dataclass(frozen=True)
class RagPrompts:
    """The paper's RAG and cache layouts (GRITLM_NOTES section 2) and the rerank prompt."""

    rag_doc_then_query: str  # {doc} {query}
    doc_cached_suffix: str  # {query}
    query_cached_suffix: str  # {doc}
    query_doc_suffix: str
    doc_query_suffix: str
    doc_separator: str
    rerank: str  # {query} {passage}
    rerank_yes: str
    answer_lead: str


@dataclass(frozen=True)
class Recipe:
    name: str
    embedding: EmbeddingFormat
    chat: ChatFormat
    rag: RagPrompts
    retrieval_instruction: str


_GRITLM_ANSWER = "Answer the prior query while optionally using the context prior to it"
_GRITLM_QUERY_FIRST = "Optionally using the prior context answer the query prior to it"

GRITLM = Recipe(
    name="gritlm",
    embedding=EmbeddingFormat(
        attention="bidirectional",
        pooling="mean",
        document_prefix="<|embed|>\n",
        query_prefix="<|user|>\n{instruction}\n<|embed|>\n",
        query_prefix_no_instruction="<|embed|>\n",
    ),
    chat=ChatFormat(
        user_prefix="<|user|>\n",
        assistant_prefix="\n<|assistant|>\n",
        turn_sep="\n",
    ),
    rag=RagPrompts(
        rag_doc_then_query="<|user|>\n{doc}\n\n{query}\n\n" + _GRITLM_ANSWER + "\n<|assistant|>\n",
        doc_cached_suffix="\n<|user|>\n{query}\n\n" + _GRITLM_ANSWER + "\n<|assistant|>\n",
        query_cached_suffix="\n<|user|>\n{doc}\n\n" + _GRITLM_QUERY_FIRST + "\n<|assistant|>\n",
        query_doc_suffix="\n<|user|>\n" + _GRITLM_QUERY_FIRST + "\n<|assistant|>\n",
        doc_query_suffix="\n<|user|>\n" + _GRITLM_ANSWER + "\n<|assistant|>\n",
        doc_separator="\n\n",
        rerank=(
            "<|user|>\nGiven a query and a passage, judge whether the passage is relevant to the "
            "query or not.\n\nQuery: {query}\nPassage: {passage}\n\nAnswer with yes if the passage "
            "is relevant to the query, and no otherwise.\n<|assistant|>\nAnswer:"
        ),
        rerank_yes=" yes",
        answer_lead="",
    ),
    retrieval_instruction="Given a question, retrieve passages that answer the question",
)

RECIPES: dict[str, Recipe] = {GRITLM.name: GRITLM}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}") from None
