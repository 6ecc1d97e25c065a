"""GritLM as a cross-encoder: the next-token logit of "yes" after the relevance prompt.

The authors reranked the top 10 this way (GRITLM_NOTES section 3); it costs one causal
pass per candidate, so it is opt-in (`--rerank`).
"""

from __future__ import annotations

from collections.abc import Sequence

from gritdesk.rag.retrieve import Hit
from gritdesk.runtime.engine import Engine
from gritdesk.runtime.errors import InputTooLongError
from gritdesk.runtime.recipes import fill


def _prompt(engine: Engine, query: str, passage: str) -> list[int]:
    rerank = fill(engine.recipe.rag.rerank, query=query, passage=passage)
    return engine.prompt_tokens(engine.recipe.chat.render((), rerank, opening=True))


def relevance_score(engine: Engine, query: str, passage: str) -> float:
    rag = engine.recipe.rag
    tokens = _prompt(engine, query, passage)
    if len(tokens) > engine.n_ctx:  # trim the passage, keep the question and the verdict lines
        passage_tokens = engine.tokenize(passage)
        overflow = len(tokens) - engine.n_ctx + 8
        if overflow >= len(passage_tokens):
            raise InputTooLongError("the rerank prompt", len(tokens), engine.n_ctx)
        passage = engine.detokenize(passage_tokens[: len(passage_tokens) - overflow])
        tokens = _prompt(engine, query, passage)
    yes = engine.tokenize(rag.rerank_yes)[-1]
    return float(engine.next_token_logits(tokens[: engine.n_ctx])[yes])


def rerank_hits(engine: Engine, query: str, hits: Sequence[Hit]) -> list[tuple[Hit, float]]:
    """Hits ordered by the model's relevance score, best first, each with its score."""
    scored = [(hit, relevance_score(engine, query, hit.text)) for hit in hits]
    return sorted(scored, key=lambda pair: -pair[1])
