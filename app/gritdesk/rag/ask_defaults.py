"""The answering defaults every interface shares, in a module that imports only the standard
library, so `gritdesk --help` can print them without loading the engine. `AskOptions`
(rag/answer.py) takes its defaults from here and `AskService` (rag/ask_service.py) applies
them."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_K = 4  # chunks an answer is given
MAX_K = 64  # ... at most
DEFAULT_MAX_TOKENS = 256  # tokens an answer may have
MAX_HISTORY_TURNS = 4  # earlier turns of a conversation the model sees, at most
RETRIEVAL_QUESTIONS = 2  # earlier questions added to the retrieval query


@dataclass(frozen=True)
class FocusPlan:
    """How much of its passages a small model reads (rag/focus.py): the `sentences` best
    matches of the question over all passages, each with `neighbours` sentences either side.
    A sentence scores the embedder's cosine to the question plus `keyword_weight` times its
    share of the question's rarity-weighted words; a passage's lead (a title, a header row)
    loses `lead_penalty`."""

    sentences: int = 1
    neighbours: int = 0
    keyword_weight: float = 0.5
    lead_penalty: float = 1.0


# A model below this many parameters answers from focused sentences, greedily, and stops at
# the end of its first line (benchmarks/answer_eval.py, SmolLM2-135M: README "Answers");
# a larger one reads whole chunks (Doc Caching reuses their KV as the index saved it).
SMALL_MODEL_PARAMS = 1_000_000_000
SMALL_MODEL_FOCUS = FocusPlan()
SMALL_MODEL_MAX_TOKENS = 64
# ... and chooses each token by context-aware decoding with this alpha (runtime/contrast.py:
# (1 + alpha) x its logits with the passages - alpha x without them). SmolLM2-135M held 57/69
# facts instead of 46, with 6 answers stating a fact no passage holds instead of 16; alpha 1
# held 57 too (5 such answers) but echoed "up to how many euros" of a question quoting its
# passage, whose words the passage makes likelier (benchmarks/answer_eval.py, README
# "Answers")
SMALL_MODEL_CONTRAST_ALPHA = 0.5
CANNOT_ANSWER = "I can't find that in your files."
