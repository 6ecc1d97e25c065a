"""How a model family embeds and chats: prompt formats and pooling, in one declarative place.

Every prompt string gritdesk feeds a model is written here and nowhere else. The
runtime reads a `Recipe` to embed (attention, pooling, which tokens count) and to
build chat prompts; rag reads it for the cache layouts.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal, Protocol

from gritdesk.errors import GritdeskError

Attention = Literal["bidirectional", "causal"]
Pooling = Literal["mean", "last"]
Pooled = Literal["text", "suffix", "all"]


@dataclass(frozen=True)
class EmbeddingFormat:
    """What surrounds the embedded text and which final hidden states are pooled.

    The sequence is BOS + prefix + [text + echo_separator] + text + suffix (+ EOS). With
    `pooled="text"` the mean runs over the (last copy of the) text's tokens; the prefix
    (and the echo's first copy) is attended to but not pooled. `pooled="suffix"` pools the
    suffix tokens (GEM). `pooled="all"` pools every token, BOS and EOS included (what
    sentence-transformers' mean over the attention mask does). `pooling="last"` takes the
    very last token (E5: the EOS).

    `max_tokens`: a longer sequence (special tokens included) is cut to this many tokens,
    its final EOS kept, as sentence-transformers truncates at its `max_seq_length`; None: a
    text longer than one embedding decode is refused instead.
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
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.max_tokens is not None and (self.suffix or self.echo_separator is not None):
            raise ValueError("max_tokens cuts the text's tail: only for a format without suffix")

    def document(self) -> str:
        return self.document_prefix

    def query(self, instruction: str | None) -> str:
        if not instruction:
            return self.query_prefix_no_instruction
        return self.query_prefix.format(instruction=instruction)


# --- prompt pieces: the recipe's own text vs. the user's and documents' text ---------------


@dataclass(frozen=True)
class Markup:
    """Text the recipe wrote. With a chat template its markers (`<|im_start|>`) are special
    tokens, so it is tokenized with special-token parsing."""

    text: str


@dataclass(frozen=True)
class Text:
    """Text from a user or a document: never parsed for special tokens, whatever it holds."""

    text: str


@dataclass(frozen=True)
class SpecialToken:
    """The vocabulary's BOS (only where the model adds one) or EOS token."""

    which: Literal["bos", "eos"]


BOS = SpecialToken("bos")
EOS = SpecialToken("eos")
Piece = Markup | Text | SpecialToken


def fill(template: str, **values: str | Sequence[Piece]) -> list[Piece]:
    """A recipe template with `{name}` fields: its literal text is Markup, a value is Text
    (or pieces already made, such as documents joined by the recipe's separator)."""
    pieces: list[Piece] = []
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        if literal:
            pieces.append(Markup(literal))
        if name is not None:
            value = values[name]
            pieces += [Text(value)] if isinstance(value, str) else value
    return pieces


def join_texts(texts: Sequence[str], separator: str) -> list[Piece]:
    """Texts as Text pieces with the recipe's separator (Markup) between them."""
    pieces: list[Piece] = []
    for i, text in enumerate(texts):
        pieces += [Markup(separator), Text(text)] if i else [Text(text)]
    return pieces


class Turn(Protocol):
    """A finished or open exchange (runtime.engine.ChatTurn)."""

    @property
    def user(self) -> str: ...

    @property
    def assistant(self) -> str | None: ...


@dataclass(frozen=True)
class ChatFormat:
    """One user turn is `user_prefix + message + assistant_prefix`; turns joined by `turn_sep`;
    an answer ends with `answer_end` (the EOS token, or a template's end-of-turn marker).

    `template` says where the markers come from: "text" (GritLM: plain text, the whole prompt
    tokenized as one string, as the model was trained), "chatml" (written here, checked
    against the GGUF's own chat template when the model is loaded; markers are special
    tokens) or "gguf" (read from the GGUF's own template when the model is loaded:
    `chat_template.recipe_from_template`; markers are special tokens)."""

    user_prefix: str
    assistant_prefix: str
    turn_sep: str
    answer_end: tuple[Piece, ...] = (EOS,)
    system: str = ""  # the opening system turn, markers included ("" = none)
    template: Literal["text", "chatml", "gguf"] = "text"
    end_of_turn: str = ""  # the marker generation stops at, besides the vocabulary's EOS
    markers: tuple[str, ...] = ()  # the template's special tokens

    @property
    def special_markers(self) -> bool:
        return self.template != "text"

    def user_turn(self, message: str) -> list[Piece]:
        return [Markup(self.user_prefix), Text(message), Markup(self.assistant_prefix)]

    def render(
        self, history: Sequence[Turn], current: Sequence[Piece], *, opening: bool
    ) -> list[Piece]:
        """The one place chat turns become a prompt: answered `history`, then `current` (this
        turn, which brings its own leading separator when it follows cached segments).

        `opening`: the prompt starts here (BOS, system turn); else it continues restored KV
        segments, so every turn leads with `turn_sep`."""
        pieces: list[Piece] = [BOS, Markup(self.system)] if opening else []
        for i, turn in enumerate(history):
            lead = "" if (opening and i == 0) else self.turn_sep
            pieces += [Markup(lead), *self.user_turn(turn.user), Text(turn.assistant or "")]
            pieces += self.answer_end
        if history and opening and current:
            pieces.append(Markup(self.turn_sep))
        return [p for p in (*pieces, *current) if not isinstance(p, Markup | Text) or p.text]

    def cached_opening(self) -> list[Piece]:
        """What is computed before restored KV segments: a template's system turn (GritLM:
        nothing, each segment starts with its own BOS)."""
        return [Markup(self.system)] if self.system else []

    def conversation(self, turns: Sequence[Turn]) -> list[Piece]:
        """A chat from scratch, ready for the model to answer the last (open) turn."""
        if turns and turns[-1].assistant is None:
            return self.render(turns[:-1], self.user_turn(turns[-1].user), opening=True)
        return self.render(turns, (), opening=True)


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
    # {query}: the question turn with no passages, the same instruction kept; what the
    # answer is contrasted with in context-aware decoding (runtime/contrast.py)
    query_alone: str
    # chunks in the prompt best-ranked last, next to the question (citations keep ranks):
    # a small model answers from what it read last (measured with SmolLM2, README)
    best_last: bool = False


class CacheMode(StrEnum):
    """Which parts of an answer's prompt come from saved KV (the paper's five layouts)."""

    OFF = "off"
    DOC = "doc"
    QUERY = "query"
    QUERY_DOC = "query-doc"
    DOC_QUERY = "doc-query"


CACHE_MODES = tuple(CacheMode)


@dataclass(frozen=True)
class Recipe:
    name: str
    embedding: EmbeddingFormat
    chat: ChatFormat
    rag: RagPrompts
    retrieval_instruction: str
    generates: bool = True  # False: an embedding model; answers need a chat model beside it
    # False: a chat model run through an embedding recipe it was never trained for (SmolLM2,
    # Echo prompts): its vectors rank worse than keywords, so gritdesk pairs it with a real
    # embedder (`model_choice.PAIR_EMBEDDER`) and fusion gives its own vectors no weight.
    trained_to_embed: bool = True
    # Which rag cache layouts may reuse the KV of the embedding pass, and the default one.
    # GritLM was trained to generate after a bidirectional prefix; a model that was not can
    # only reuse a causal embedding pass (its KV equals a causal prefill of the same tokens).
    cache_modes: tuple[CacheMode, ...] = CACHE_MODES
    default_cache_mode: CacheMode = CacheMode.DOC
    # An embedder's cosine (query to best passage) below which, when no keyword of the
    # question matched either, the files hold nothing about a question (AskService abstains);
    # None: its cosines are not calibrated, keywords alone decide.
    no_match_similarity: float | None = None
    # An embedder's cosine (question to the best sentence of its passages) from which that
    # sentence may say what the question asks in other words: a question whose names the
    # files hold without any other word it asks ("What is Samir Haddad's salary?" of his
    # welcome mail) is answered then, not refused (AskService); None: words alone decide.
    stated_similarity: float | None = None


RETRIEVAL_INSTRUCTION = "Given a question, retrieve passages that answer the question"
_RERANK_QUESTION = (
    "Given a query and a passage, judge whether the passage is relevant to the query or not."
    "\n\nQuery: {query}\nPassage: {passage}\n\nAnswer with yes if the passage is relevant "
    "to the query, and no otherwise."
)  # the yes/no relevance prompt, inside each recipe's own chat turn

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
        rerank="<|user|>\n" + _RERANK_QUESTION + "\n<|assistant|>\nAnswer:",
        rerank_yes="yes",  # tokenized alone: SentencePiece gives "▁yes", the word after "Answer:"
        answer_lead="",
        query_alone="<|user|>\n{query}\n\n" + _GRITLM_ANSWER + "\n<|assistant|>\n",
    ),
    retrieval_instruction=RETRIEVAL_INSTRUCTION,
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
    RETRIEVAL_INSTRUCTION,
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
    RETRIEVAL_INSTRUCTION,
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
    RETRIEVAL_INSTRUCTION,
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
    RETRIEVAL_INSTRUCTION,
)

# --- SmolLM2-135M-Instruct: a small real chat model in its own ChatML template -----------
# Not trained to embed. benchmarks/smollm2_embedding_recipes.py (10 questions on the demo
# corpus, mean reciprocal rank of the right chunk, vector / hybrid): causal mean in ChatML
# 0.70 / 0.75, causal mean plain 0.65 / 0.70, bidirectional mean 0.75 / 0.77, Echo
# 0.82 / 0.85 (BM25 alone 0.83). Chosen: causal mean in ChatML. Only a causal pass leaves
# the KV a causal prefill of the same tokens computes, so Doc Caching reuses it losslessly
# (a bidirectional KV helps only a model trained on it); Echo's KV holds the text twice
# inside a rewrite prompt and costs twice the tokens to index; hybrid search makes up
# most of the gap. Each document is embedded as a whole user message, so restored chunks
# read as messages before the question's.

SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
_CHATML_USER = "<|im_start|>user\n"
_CHATML_END = "<|im_end|>\n"
_CHATML_ASSISTANT = _CHATML_END + "<|im_start|>assistant\n"
_CHAT_ANSWER = "Answer the question using the text above."
_CHAT_QUERY_FIRST = "Answer the question before this text using the text."


def _literal(markup: str) -> str:
    """Markup as a `fill`/`str.format` template's literal text (a brace stays a brace)."""
    return markup.replace("{", "{{").replace("}", "}}")


def chat_turn_embedding(user: str, user_end: str) -> EmbeddingFormat:
    """A chat model's embedding pass (SmolLM2's, measured above): causal, the mean over the
    text, each document a whole user message (`user_end` not pooled)."""
    return EmbeddingFormat(
        attention="causal",
        pooling="mean",
        document_prefix=user,
        query_prefix=_literal(user) + "{instruction}\n",
        query_prefix_no_instruction=user,
        suffix=user_end,
    )


def chat_turn_rag(user: str, user_end: str, assistant: str) -> RagPrompts:
    """The RAG prompts of a chat model with special-token markers, in its own turns: `user`
    opens a user message, `user_end` closes one, `assistant` closes it and opens the answer.
    Several chunks are several user messages, as they are when restored from KV; a template
    whose user messages have no closing marker of their own (`user_end` "") reads them in
    the question's message, separated by blank lines."""
    user, end, answer = _literal(user), _literal(user_end), _literal(assistant)
    if end:
        doc_then_query = user + "{doc}" + end + user + "{query}\n\n"
        separator = user_end + user  # raw markup: join_texts does not format it
    else:
        doc_then_query = user + "{doc}\n\n{query}\n\n"
        separator = "\n\n"
    return RagPrompts(
        rag_doc_then_query=doc_then_query + _CHAT_ANSWER + answer,
        doc_cached_suffix=user + "{query}\n\n" + _CHAT_ANSWER + answer,
        query_cached_suffix=user + "{doc}\n\n" + _CHAT_QUERY_FIRST + answer,
        query_doc_suffix=user + _CHAT_QUERY_FIRST + answer,
        doc_query_suffix=user + _CHAT_ANSWER + answer,
        doc_separator=separator,
        rerank=user + _RERANK_QUESTION + answer + "Answer:",
        rerank_yes=" yes",  # BPE: the word after "Answer:" carries its space (SPM: "▁yes")
        answer_lead="",
        query_alone=user + "{query}\n\n" + _CHAT_ANSWER + answer,
        best_last=True,
    )


SMOLLM2 = Recipe(
    name="smollm2",
    # `suffix`: not pooled; makes each cached chunk a whole message
    embedding=chat_turn_embedding(_CHATML_USER, _CHATML_END),
    chat=ChatFormat(
        user_prefix=_CHATML_USER,
        assistant_prefix=_CHATML_ASSISTANT,
        turn_sep="",
        answer_end=(Markup(_CHATML_END),),
        system=f"<|im_start|>system\n{SMOLLM2_SYSTEM}<|im_end|>\n",
        template="chatml",
        end_of_turn="<|im_end|>",
        markers=("<|im_start|>", "<|im_end|>"),
    ),
    rag=chat_turn_rag(_CHATML_USER, _CHATML_END, _CHATML_ASSISTANT),
    retrieval_instruction=RETRIEVAL_INSTRUCTION,
    trained_to_embed=False,
)

# --- any other chat model: its GGUF's own chat template ----------------------------------
# A model file with no tuned recipe (a Qwen, Gemma, Phi or Llama 3 build given by path or
# found in another tool's store) answers in its own turns: `chat_template.recipe_from_template`
# renders the file's Jinja template with sentinel strings in place of the messages and the
# BOS/EOS tokens, splits the rendering at them into these markups, and checks the result
# renders a longer conversation exactly as the template does. Its markup is tokenized with
# special-token parsing, user and document text never. Not trained to embed as far as
# gritdesk knows, so pair mode applies; its own embedding pass is SmolLM2's kind (causal,
# each document a whole user message), so Doc Caching reuses it losslessly.
TEMPLATE_RECIPE = "template"


def template_recipe(
    *, system: str, user: str, user_end: str, assistant: str, answer_end: Sequence[Piece]
) -> Recipe:
    """The recipe of a chat template's markups: `system` opens the chat (BOS excluded: the
    prompt starts with the BOS piece), `user` opens a user message and `user_end` closes one
    ("" when the template has no marker of its own for that), `assistant` follows a user
    message up to the answer, `answer_end` follows an answer (markup and EOS)."""
    first = answer_end[0] if answer_end else None
    end_of_turn = first.text.strip() if isinstance(first, Markup) else ""
    return Recipe(
        name=TEMPLATE_RECIPE,
        embedding=chat_turn_embedding(user, user_end),
        chat=ChatFormat(
            user_prefix=user,
            assistant_prefix=assistant,
            turn_sep="",
            answer_end=tuple(answer_end),
            system=system,
            template="gguf",
            end_of_turn=end_of_turn,
        ),
        rag=chat_turn_rag(user, user_end, assistant),
        retrieval_instruction=RETRIEVAL_INSTRUCTION,
        trained_to_embed=False,
    )


# What `--recipe template` names: the engine replaces it with the loaded file's own
# (`chat.template == "gguf"` says so); these empty markups are never used to prompt.
TEMPLATE = template_recipe(system="", user="", user_end="", assistant="", answer_end=(EOS,))

# --- all-MiniLM-L6-v2: a small real sentence embedder (`bert` GGUF, models pull) ----------
# As sentence-transformers runs it: [CLS] text [SEP] (the vocabulary's BOS and EOS), one
# bidirectional pass, the mean of every token's last hidden state ([CLS] and [SEP] too: its
# attention mask covers them), L2-normalised; queries and documents alike, no instruction;
# cut at max_seq_length = 256 tokens (sentence_bert_config.json; the position table has 512,
# training used 256, so longer inputs are cut as the reference library does). It cannot
# generate and has no KV cache: answers come from a chat model beside it (pair mode).

MINILM = _embedding_only(
    "minilm",
    EmbeddingFormat(
        attention="bidirectional",
        pooling="mean",
        document_prefix="",
        query_prefix="",  # no instruction: MiniLM was trained on plain query/passage pairs
        query_prefix_no_instruction="",
        pooled="all",
        append_eos=True,
        max_tokens=256,
    ),
    "",
)
# benchmarks/answer_eval.py: the best passage's cosine was 0.23 or more for every answerable
# question, 0.10 to 0.16 for the one question about nothing the files discuss. Its best
# sentence's cosine: 0.24 and 0.41 for the two questions that ask of a name what its files
# never say (salary, chief executive), 0.42 to 0.77 for questions rephrased away from the
# files' words that do ("Where does Olivia Tremblay work?": 0.65); 0.45 between
# (benchmarks/answer_eval.py --decisions-only)
MINILM = replace(MINILM, no_match_similarity=0.2, stated_similarity=0.45)

RECIPES: dict[str, Recipe] = {
    r.name: r for r in (GRITLM, E5_MISTRAL, ECHO, LLM2VEC, GEM, SMOLLM2, MINILM, TEMPLATE)
}
DEFAULT_RECIPE = GRITLM.name  # a GGUF that names no recipe and has no chat template of its own
# (or is a GritLM build) is taken for a GritLM build: `chat_template.file_recipe_name`


class UnknownRecipeError(GritdeskError, ValueError):
    pass


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        known = ", ".join(sorted(RECIPES))
        raise UnknownRecipeError(f"unknown recipe {name!r}; known: {known}") from None
