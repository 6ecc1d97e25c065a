"""How a model family embeds and chats: prompt formats and pooling, in one declarative place.

Every prompt string gritdesk feeds a model is written here and nowhere else. The
runtime reads a `Recipe` to embed (attention, pooling, which tokens count) and to
build chat prompts; rag reads it for the cache layouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gritdesk.errors import GritdeskError

Attention = Literal["bidirectional", "causal"]
Pooling = Literal["mean", "last"]
Pooled = Literal["text", "suffix"]


@dataclass(frozen=True)
class EmbeddingFormat:
    """What surrounds the embedded text and which final hidden states are pooled.

    The sequence is BOS + prefix + [text + echo_separator] + text + suffix (+ EOS). With
    `pooled="text"` the mean runs over the (last copy of the) text's tokens; the prefix
    (and the echo's first copy) is attended to but not pooled. `pooled="suffix"` pools the
    suffix tokens (GEM). `pooling="last"` takes the very last token (E5: the EOS).
    """

    attention: Attention
    pooling: Pooling
    document_prefix: str
    query_prefix: str  # with `{instruction}`
    query_prefix_no_instruction: str
    pooled: Pooled = "text"
    suffix: str = ""
    echo_separator: str | None = None  # Echo embeddings: the text twice, pool the second
    append_eos: bool = False

    def document(self) -> str:
        return self.document_prefix

    def query(self, instruction: str | None) -> str:
        if not instruction:
            return self.query_prefix_no_instruction
        return self.query_prefix.format(instruction=instruction)

    def head(self, prefix: str, text: str) -> str:
        """Everything before the pooled copy of the text."""
        return prefix if self.echo_separator is None else prefix + text + self.echo_separator


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
    generates: bool = True  # False: an embedding model; answers need a chat model beside it


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
        rerank_yes="yes",  # tokenized alone: SentencePiece gives "▁yes", the word after "Answer:"
        answer_lead="",
    ),
    retrieval_instruction="Given a question, retrieve passages that answer the question",
)

# --- embedding recipes of related systems -----------------------------------------------
# They embed differently; for answering they borrow GritLM's chat and RAG prompts (an
# embedding-only model is meant to be paired with a chat model: see pair mode).


def _embedding_only(name: str, embedding: EmbeddingFormat, instruction: str) -> Recipe:
    return Recipe(name, embedding, GRITLM.chat, GRITLM.rag, instruction, generates=False)


E5_MISTRAL = _embedding_only(
    "e5-mistral",  # last-token pooling of a causal model, instruction prefix, EOS appended
    EmbeddingFormat(
        attention="causal",
        pooling="last",
        document_prefix="",
        query_prefix="Instruct: {instruction}\nQuery: ",
        query_prefix_no_instruction="",
        append_eos=True,
    ),
    "Given a question, retrieve passages that answer the question",
)
ECHO = _embedding_only(
    "echo",  # Echo embeddings: the text twice, causal, mean over the second copy
    EmbeddingFormat(
        attention="causal",
        pooling="mean",
        document_prefix="Rewrite the passage:\n",
        query_prefix="{instruction}\nRewrite the query:\n",
        query_prefix_no_instruction="Rewrite the passage:\n",
        echo_separator="\nRewritten:\n",
    ),
    "Given a question, retrieve passages that answer the question",
)
LLM2VEC = _embedding_only(
    "llm2vec",  # bidirectional attention, mean over the text, instruction not pooled
    EmbeddingFormat(
        attention="bidirectional",
        pooling="mean",
        document_prefix="",
        query_prefix="{instruction}: ",
        query_prefix_no_instruction="",
    ),
    "Given a question, retrieve passages that answer the question",
)
GEM = _embedding_only(
    "gem",  # special tokens appended after the text, their final states pooled, causal
    EmbeddingFormat(
        attention="causal",
        pooling="mean",
        document_prefix="",
        query_prefix="{instruction}\n",
        query_prefix_no_instruction="",
        pooled="suffix",
        suffix="\n<|emb_1|><|emb_2|><|emb_3|><|emb_4|>",
    ),
    "Given a question, retrieve passages that answer the question",
)

RECIPES: dict[str, Recipe] = {r.name: r for r in (GRITLM, E5_MISTRAL, ECHO, LLM2VEC, GEM)}


class UnknownRecipeError(GritdeskError, ValueError):
    pass


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        known = ", ".join(sorted(RECIPES))
        raise UnknownRecipeError(f"unknown recipe {name!r}; known: {known}") from None
