"""The llama.cpp engine: one model, one context, loaded once; embeds and generates.

Every llama.cpp call gritdesk makes is in this file, in the order it makes them, so a
reader sees the whole path from text to vectors and from prompt to tokens:

- embed: tokenize -> clear memory -> embeddings on, causal off -> one decode of several
  texts with distinct sequence ids -> read every token's final-norm hidden state ->
  mean over the sample tokens (prefix excluded) -> L2-normalise. The same pass can hand
  back each text's KV state for saving (Doc Caching).
- generate: embeddings off, causal on -> (restore saved KV states, shifted into place)
  -> prefill the fresh tokens -> sample token by token, streaming text. With a contrast
  (context-aware decoding, runtime/contrast.py) the prompt without its passages is
  prefilled into a scratch sequence beside it, and each token is decoded into both in one
  batch and sampled from the two logit rows combined.
- an encoder (a `bert` GGUF such as all-MiniLM-L6-v2) only embeds: llama.cpp gives its
  context no KV memory (`llama_get_memory` is NULL), so there is nothing to clear, save or
  restore; its texts go through `llama_encode` (0.3.36's llama_decode would forward there
  too), each at positions 0.. of its own sequence id, several per call. Every call that
  needs a KV cache or logits refuses it with `EmbeddingOnlyError`, never reaching llama.cpp.

Nothing here knows about files, SQLite or chunks: that is the store's and rag's job.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import llama_cpp as ll
import numpy as np

from gritdesk.runtime.chat_template import (
    check_chat_template,
    file_recipe_name,
    recipe_from_template,
)
from gritdesk.runtime.contrast import Contrast
from gritdesk.runtime.doc_caching import DocCacheSupport, doc_cache_support
from gritdesk.runtime.engine_settings import EngineSettings, KvType
from gritdesk.runtime.errors import (
    DecodeError,
    EmbeddingOnlyError,
    EmptyInputError,
    InputTooLongError,
    KvStateError,
    ModelFileError,
    NonFiniteOutputError,
    RuntimeFailure,
)
from gritdesk.runtime.gguf_check import (
    EMBEDDING_ONLY_ARCHITECTURES,
    GgufSummary,
    check_gguf,
    fingerprint,
    sampled_fingerprint,
)
from gritdesk.runtime.recipes import (
    BOS,
    Markup,
    Piece,
    Recipe,
    SpecialToken,
    Text,
    get_recipe,
)
from gritdesk.runtime.thread_tuner import ThreadTuner, thread_candidates, usable_cpus

KV_TYPES = {
    KvType.F16: ll.GGML_TYPE_F16,
    KvType.Q8_0: ll.GGML_TYPE_Q8_0,
    KvType.Q4_0: ll.GGML_TYPE_Q4_0,
}
# Sequence 0 holds the prompt being answered (and, between chat turns, the conversation so
# far); ids >= 1 are scratch space: texts being embedded, a saved state being moved into place.
# Scratch work runs on an empty cache with sequence 0 parked (`Engine._clear_scratch`), but
# for context-aware decoding's prompt without passages, which grows beside sequence 0 while
# it answers (`Engine._start_contrast`).
SCRATCH_SEQ = 1
# An encoder's context holds no KV, so n_ctx only bounds one encode call. Its attention costs
# the square of the call's tokens whatever the per-text mask hides, and so does its compute
# buffer (MiniLM: 5.8 MiB at 512 tokens, ~0.8 GB at 4096): packing pays for short texts only
# (benchmarks/encoder_packing.py; README), and `pack_tokens` (256) stays well inside this.
ENCODER_CONTEXT = 512

# --- llama.cpp logging: silent unless asked, last errors kept for our messages ------------

_recent_errors: list[str] = []
_log_verbose = os.environ.get("GRITDESK_LLAMA_LOG", "") not in ("", "0")


@ll.llama_log_callback
def _log_callback(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    message = text.decode("utf-8", errors="replace")
    if level in (2, 3):  # GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR
        _recent_errors.append(message.strip())
        del _recent_errors[:-8]
    if _log_verbose:
        os.write(2, text)


_backend_lock = threading.Lock()
_backend_ready = False


def init_backend() -> None:
    global _backend_ready
    with _backend_lock:
        if not _backend_ready:
            ll.llama_log_set(_log_callback, ctypes.c_void_p(0))
            ll.llama_backend_init()
            _backend_ready = True


def last_llama_error() -> str:
    return _recent_errors[-1] if _recent_errors else ""


def gpu_offload_supported() -> bool:
    """Whether this llama.cpp build has a GPU backend (CUDA, Metal, Vulkan...)."""
    init_backend()
    return bool(ll.llama_supports_gpu_offload())


def resolved_gpu_layers(setting: int | None) -> int:
    """`gpu_layers` as llama.cpp takes it: None (not set) is all layers (-1) with a GPU
    backend, 0 without; a set value is passed as it is (-1: all)."""
    if setting is None:
        return -1 if gpu_offload_supported() else 0
    return setting


# --- settings and results ----------------------------------------------------------------


@dataclass(frozen=True)
class KvState:
    """One sequence's KV cache as llama.cpp serialised it, with the tokens it holds."""

    tokens: tuple[int, ...]
    data: bytes | bytearray  # a bytearray is handed to llama.cpp without a copy


@dataclass
class GenerationOptions:
    max_tokens: int = 256
    temperature: float = 0.0  # 0 = greedy, deterministic
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()


@dataclass
class GenerationStats:
    prompt_tokens_computed: int = 0
    prompt_tokens_reused: int = 0
    generated_tokens: int = 0
    seconds_to_first_token: float | None = None
    seconds_total: float = 0.0
    finish_reason: str = ""
    end_position: int = 0  # sequence 0 holds KV for positions < this (the last sampled
    # token is not decoded when it ends the answer)
    contrast_skipped: str = ""  # why a contrast asked for was not applied ("" if it was)
    started_at: float = field(default_factory=time.perf_counter, repr=False)  # perf_counter

    @property
    def tokens_per_second(self) -> float:
        gen_time = self.seconds_total - (self.seconds_to_first_token or 0.0)
        return (
            (self.generated_tokens - 1) / gen_time
            if self.generated_tokens > 1 and gen_time > 0
            else 0.0
        )


@dataclass(frozen=True)
class ChatTurn:
    user: str
    assistant: str | None = None


class Engine:
    """One GGUF model and one llama.cpp context; flips attention between the two jobs."""

    def __init__(
        self,
        model_path: str | Path,
        settings: EngineSettings | None = None,
        recipe: Recipe | None = None,
    ) -> None:
        self.settings = settings or EngineSettings()
        self.path = Path(model_path)
        self.summary: GgufSummary = check_gguf(self.path)
        # no recipe given: the one the GGUF names in `gritdesk.recipe`, else its own chat
        # template for a chat model, else GritLM (`chat_template.file_recipe_name`)
        self.recipe = recipe or get_recipe(file_recipe_name(self.summary))
        if self.recipe.chat.template == "gguf":  # its turns are read from this file's template
            self.recipe = recipe_from_template(self.path, self.summary.metadata)
        self._fingerprint: str | None = None
        self._legacy_fingerprint: str | None = None
        self.embedding_only = self.summary.architecture in EMBEDDING_ONLY_ARCHITECTURES
        if self.embedding_only:
            self._check_encoder_recipe()
        else:
            self._check_kv_type_fits()
        init_backend()

        mparams = ll.llama_model_default_params()
        mparams.n_gpu_layers = self.gpu_layers
        self._model = ll.llama_model_load_from_file(str(self.path).encode(), mparams)
        if not self._model:
            raise ModelFileError(
                self.path, f"llama.cpp could not load it ({last_llama_error() or 'no detail'})"
            )
        self._vocab = ll.llama_model_get_vocab(self._model)

        n_ctx = self.settings.n_ctx
        if self.embedding_only:
            n_ctx = min(n_ctx, ENCODER_CONTEXT)
        n_ubatch = min(self.settings.n_ubatch or n_ctx, n_ctx)
        threads = self.settings.n_threads or usable_cpus()
        cparams = ll.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_ubatch
        cparams.n_ubatch = n_ubatch
        cparams.n_seq_max = self.settings.n_seq_max + SCRATCH_SEQ  # texts embed beside seq 0
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.kv_unified = True  # all sequences share the n_ctx cells
        cparams.pooling_type = ll.LLAMA_POOLING_TYPE_NONE  # we pool, over sample tokens only
        cparams.embeddings = False
        cparams.type_k = KV_TYPES[self.settings.kv_type]
        cparams.type_v = KV_TYPES[self.settings.kv_type]
        cparams.flash_attn_type = (
            ll.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if self.settings.resolved_flash_attn()
            else ll.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        self._ctx = ll.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            ll.llama_model_free(self._model)
            self._model = None
            raise ModelFileError(
                self.path, f"llama.cpp could not create a context ({last_llama_error()})"
            )
        self._memory = ll.llama_get_memory(self._ctx)  # None (NULL) for an encoder
        if self.embedding_only != (self._memory is None):
            ll.llama_free(self._ctx)
            ll.llama_model_free(self._model)
            self._ctx = self._model = None
            raise ModelFileError(
                self.path,
                f"llama.cpp {'gave' if self._memory else 'gave no'} KV memory to this "
                f"{self.summary.architecture} model, which gritdesk does not expect",
            )
        self.n_ctx = ll.llama_n_ctx(self._ctx)
        self.n_ubatch = ll.llama_n_ubatch(self._ctx)
        self._batch = ll.llama_batch_init(self.n_ubatch, 0, 1)
        self._n_embd = ll.llama_model_n_embd(self._model)
        self._mode: tuple[bool, bool] | None = None
        self._parked: bytes | None = None  # sequence 0 while scratch work runs
        self._epoch = 0  # see `sequence_epoch`
        self._seq0_cells = 0  # KV cells sequence 0 occupies (an upper bound)
        self.tokens_decoded = 0  # every token through llama_decode, embedding included
        # batch passes' threads chosen by measuring, unless the settings fix them
        self._threads = threads
        self.thread_tuner: ThreadTuner | None = (
            ThreadTuner(thread_candidates(threads)) if self.settings.n_threads is None else None
        )
        self._adds_bos = bool(ll.llama_vocab_get_add_bos(self._vocab))
        # what the cached layouts may do with this architecture (runtime/doc_caching.py); the
        # window is llama.cpp's own (it ignores phi3's, applies gemma3's)
        self.doc_cache: DocCacheSupport | None = None
        if not self.embedding_only:
            self.doc_cache = doc_cache_support(
                self.summary,
                adds_bos=self._adds_bos,
                memory_can_shift=bool(ll.llama_memory_can_shift(self._memory)),
                window=int(ll.llama_model_n_swa(self._model)),
            )
        self._stop_tokens: frozenset[int] = frozenset()
        self._chat_checked = False
        self._candidates: np.recarray | None = None  # see `_sample_from`
        fmt = self.recipe.embedding
        around_text = fmt.document() + (fmt.echo_separator or "") + fmt.suffix
        self._doc_overhead_tokens = len(self.tokenize_prompt([BOS, Markup(around_text)]))
        self._doc_overhead_tokens += fmt.append_eos
        self._doc_copies = 1 if fmt.echo_separator is None else 2
        # Tokens by which a text counted alone may differ inside its format (BPE/SPM merges
        # across the prefix boundary). WordPiece splits at whitespace and punctuation before
        # it looks words up, so with nothing but special tokens around the text it is exact.
        wordpiece = ll.llama_vocab_type(self._vocab) == ll.LLAMA_VOCAB_TYPE_WPM
        self._count_margin = 0 if wordpiece and not around_text else 8
        # Longest sequence one embedding pass takes: one decode, the recipe's cut, and for an
        # encoder its absolute position table (positions past it do not exist).
        self._max_sequence = self.n_ubatch
        if fmt.max_tokens is not None:
            self._max_sequence = min(self._max_sequence, fmt.max_tokens)
        if self.embedding_only and self.summary.n_ctx_train > 0:
            self._max_sequence = min(self._max_sequence, self.summary.n_ctx_train)

    @property
    def gpu_layers(self) -> int:
        """Layers offloaded to a GPU: the setting, or every layer (-1) where llama.cpp was
        built with a GPU backend and none is set; 0 on a CPU-only build."""
        return resolved_gpu_layers(self.settings.n_gpu_layers)

    def _check_encoder_recipe(self) -> None:
        """An encoder attends both ways and cannot generate: a recipe that wants causal
        attention or answers would give wrong vectors or read logits that do not exist. Nor
        may a recipe pool the mean of a model trained on its [CLS] vector (bge and others
        record that as `<arch>.pooling_type`), or the other way round."""
        recipe, arch = self.recipe, self.summary.architecture
        if recipe.generates or recipe.embedding.attention != "bidirectional":
            raise ModelFileError(
                self.path,
                f"a {arch} model only embeds, with bidirectional attention; recipe "
                f"{recipe.name!r} {'answers' if recipe.generates else 'is causal'}: "
                "use --recipe minilm (and --chat-model PATH to answer)",
            )
        trained = self.summary.metadata.get(f"{arch}.pooling_type")
        if trained is not None and int(trained) != int(ll.LLAMA_POOLING_TYPE_MEAN):
            raise ModelFileError(
                self.path,
                f"this model was trained with pooling type {trained} (not mean); recipe "
                f"{recipe.name!r} pools the mean of its tokens, so its vectors would be wrong",
            )

    def _require_kv(self, what: str) -> None:
        if self.embedding_only:
            raise EmbeddingOnlyError(
                f"{self.path.name} is a {self.summary.architecture} model: it embeds only and "
                f"has no KV cache, so it cannot {what}"
            )

    def _check_kv_type_fits(self) -> None:
        """llama.cpp refuses a quantized cache whose 32-value blocks do not divide a head."""
        s = self.summary
        head_dim = s.head_size
        if self.settings.kv_type is not KvType.F16 and head_dim % 32:
            raise ModelFileError(
                self.path,
                f"KV type {self.settings.kv_type} needs a head size divisible by 32; "
                f"this model's is {head_dim}: use --kv-type f16",
            )

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        if getattr(self, "_ctx", None):
            ll.llama_batch_free(self._batch)
            ll.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            ll.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # --- identity --------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.path)
        return self._fingerprint

    @property
    def legacy_fingerprint(self) -> str:
        """The fingerprint older gritdesk recorded (see `gguf_check.sampled_fingerprint`)."""
        if self._legacy_fingerprint is None:
            self._legacy_fingerprint = sampled_fingerprint(self.path)
        return self._legacy_fingerprint

    @property
    def kv_signature(self) -> dict[str, object]:
        """What a saved KV state depends on besides its tokens (goes into every blob header)."""
        return {
            "model": self.fingerprint,
            "recipe": self.recipe.name,
            "kv_type": self.settings.kv_type,
            "flash_attn": self.settings.resolved_flash_attn(),
            "n_layer": self.n_layer,
            "n_embd": self._n_embd,
            "llama_cpp_python": ll.__version__,
        }

    @property
    def embedding_dim(self) -> int:
        return self._n_embd

    @property
    def n_layer(self) -> int:
        return ll.llama_model_n_layer(self._model)

    @property
    def n_params(self) -> int:
        """The model's parameter count (what answering defaults scale with)."""
        return int(ll.llama_model_n_params(self._model))

    @property
    def max_document_tokens(self) -> int:
        """Longest document text one embedding decode takes (format and a margin excluded).

        The margin covers the few tokens by which tokenizing prefix+text together can differ
        from counting the text alone (none for WordPiece with only [CLS]/[SEP] around the
        text: MiniLM's chunks get 256 - 2 tokens); an Echo recipe holds the text twice.
        """
        room = self._max_sequence - self._doc_overhead_tokens - self._count_margin
        return room // self._doc_copies

    @property
    def bos(self) -> int:
        return ll.llama_vocab_bos(self._vocab)

    @property
    def eos(self) -> int:
        return ll.llama_vocab_eos(self._vocab)

    # --- tokens ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._ctx is None:
            raise RuntimeFailure(f"the engine for {self.path} is closed")

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = False) -> list[int]:
        """Plain-text tokens: marker strings such as `<|user|>` are text, not special tokens,
        unless `special` (only ever for a recipe's own markup, never for user text)."""
        self._check_open()
        data = text.encode("utf-8", errors="replace")
        capacity = len(data) + 8
        while True:
            buf = (ll.llama_token * capacity)()
            n = ll.llama_tokenize(self._vocab, data, len(data), buf, capacity, add_bos, special)
            if n >= 0:
                return list(buf[:n])
            capacity = -n

    def tokenize_prompt(self, pieces: Sequence[Piece]) -> list[int]:
        """Tokens of a prompt the recipe assembled.

        A text-marker recipe (GritLM) tokenizes each run of text between BOS/EOS as one
        string, markers as plain text, as it was trained. A chat-template recipe (ChatML, a
        GGUF's own template) tokenizes each run as llama.cpp tokenizes the template's whole
        text, with special-token parsing, so the ids are the template's own; but special
        tokens come only from the recipe's Markup: a user's or document's Text that would
        parse into one (`<|im_end|>` typed or quoted) is tokenized alone without parsing,
        and a run in which text would form a marker with its neighbours goes piece by piece.
        """
        special = self.recipe.chat.special_markers
        tokens: list[int] = []
        run: list[Markup | Text] = []

        def flush() -> None:
            if special:
                tokens.extend(self._tokenize_marked_run(run))
            elif run:
                tokens.extend(self.tokenize("".join(p.text for p in run)))
            run.clear()

        for piece in pieces:
            if isinstance(piece, SpecialToken):
                flush()
                if piece.which == "eos":
                    tokens.append(self.eos)
                elif self._adds_bos:
                    tokens.append(self.bos)
            elif special and isinstance(piece, Text) and self._parses_special(piece.text):
                flush()
                tokens += self.tokenize(piece.text)
            else:
                run.append(piece)
        flush()
        return tokens

    def _parses_special(self, text: str) -> bool:
        """Whether special-token parsing would find a special token in `text`."""
        return self.tokenize(text, special=True) != self.tokenize(text)

    def _n_control(self, tokens: Sequence[int]) -> int:
        """How many of `tokens` only special-token parsing produces (control tokens)."""
        parsed_only = ll.LLAMA_TOKEN_ATTR_CONTROL | ll.LLAMA_TOKEN_ATTR_UNKNOWN
        return sum(1 for t in tokens if ll.llama_vocab_get_attr(self._vocab, t) & parsed_only)

    def _tokenize_marked_run(self, run: Sequence[Markup | Text]) -> list[int]:
        """Markup and Text (none of which parses alone into a special token) as one string
        with special-token parsing, as the template's text is tokenized; piece by piece
        (Markup parsed, Text not) if the joined text holds more special tokens than its
        Markup alone (a marker formed across a piece boundary)."""
        if not run:
            return []
        joined = self.tokenize("".join(p.text for p in run), special=True)
        markup = [self.tokenize(p.text, special=True) for p in run if isinstance(p, Markup)]
        if self._n_control(joined) == sum(self._n_control(m) for m in markup):
            return joined
        tokens: list[int] = []
        for piece in run:
            tokens += self.tokenize(piece.text, special=isinstance(piece, Markup))
        return tokens

    def prompt_tokens(self, pieces: Sequence[Piece]) -> list[int]:
        """Tokens of a generation prompt; the first one checks the GGUF's chat template."""
        self._require_kv("generate")
        if not self._chat_checked:
            self._check_chat_template()
        return self.tokenize_prompt(pieces)

    def _check_chat_template(self) -> None:
        """A tuned chat-template recipe (ChatML) runs only on a GGUF whose own template renders
        turns exactly as the recipe does, and whose markers are single special tokens (a
        recipe read from the GGUF's template was checked against it at load). The end-of-turn
        marker becomes a stop token where it is one special token."""
        chat = self.recipe.chat
        if chat.template == "chatml":
            check_chat_template(self.path, self.summary.metadata, self.recipe)
            for marker in chat.markers:
                if len(self.tokenize(marker, special=True)) != 1:
                    raise ModelFileError(
                        self.path,
                        f"{marker!r} is not one special token in its vocabulary, as the "
                        f"{self.recipe.name!r} recipe's chat template needs",
                    )
        if chat.special_markers and chat.end_of_turn:
            stop = self.tokenize(chat.end_of_turn, special=True)
            if chat.template == "chatml" or (len(stop) == 1 and self._n_control(stop) == 1):
                self._stop_tokens = frozenset(stop)
        self._chat_checked = True

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def token_bytes(self, token: int) -> bytes:
        self._check_open()
        buf = ctypes.create_string_buffer(64)
        n = ll.llama_token_to_piece(self._vocab, token, buf, 64, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = ll.llama_token_to_piece(self._vocab, token, buf, -n, 0, False)
        return buf.raw[:n]

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.token_bytes(t) for t in tokens).decode("utf-8", errors="replace")

    # --- modes -----------------------------------------------------------------------------

    def _set_mode(self, *, embeddings: bool, causal: bool) -> None:
        if self._mode != (embeddings, causal):
            ll.llama_set_embeddings(self._ctx, embeddings)
            ll.llama_set_causal_attn(self._ctx, causal)
            self._mode = (embeddings, causal)

    def reset(self) -> None:
        """Forget every sequence in the KV cache (an encoder keeps none)."""
        if self._memory is not None:
            ll.llama_memory_clear(self._memory, True)
        self._parked = None
        self._epoch += 1
        self._seq0_cells = 0

    @property
    def sequence_epoch(self) -> int:
        """Changes whenever sequence 0 is cleared: a caller that left KV there (a chat's
        previous turn) checks it to know that KV is still there."""
        return self._epoch

    def keep_until(self, position: int) -> None:
        """Drop sequence 0's KV from `position` on (a kept chat turn continues there)."""
        self._require_kv("keep a chat's context")
        self._unpark()
        if not ll.llama_memory_seq_rm(self._memory, 0, position, -1):
            raise KvStateError(f"llama.cpp could not trim the context at position {position}")

    def _clear_scratch(self) -> None:
        """An empty cache for work in the scratch sequences, sequence 0 parked meanwhile.

        A pass beside a kept sequence 0 would see none of its cells (the mask hides them),
        yet its numbers would still change: its cells would sit further along the cache,
        and ggml sums attention over cells in SIMD lanes assigned by cell index, so the
        same values add up in another order. A model with quantized weights re-quantizes
        every activation, which turns those last-bit differences into logits off by 0.4
        (SmolLM2 Q4_1 on an AVX2 CPU, issue 20). So scratch work always starts from cell 0
        of an empty cache, as on a fresh engine, and sequence 0 comes back (to the same
        cells, bit for bit) before anything uses it again. An encoder keeps nothing.
        """
        if self._memory is None:
            return
        holds_seq0 = self._seq0_cells and ll.llama_memory_seq_pos_max(self._memory, 0) >= 0
        if self._parked is None and holds_seq0:
            self._parked = self._save_seq(0)
        ll.llama_memory_clear(self._memory, True)

    def _unpark(self) -> None:
        """Put a parked sequence 0 back into an empty cache, at cells 0.. as it was built."""
        parked, self._parked = self._parked, None
        if parked is None:
            return
        ll.llama_memory_clear(self._memory, True)
        data = (ctypes.c_uint8 * len(parked)).from_buffer_copy(parked)
        if ll.llama_state_seq_set_data(self._ctx, data, len(parked), 0) == 0:
            self.reset()  # the kept context is lost; callers see the epoch change
            raise KvStateError(
                f"could not put the kept context back ({last_llama_error() or 'no detail'})"
            )

    @property
    def batch_threads(self) -> int:
        """The threads llama.cpp runs a batch (more than one token) on now."""
        self._check_open()
        return ll.llama_n_threads_batch(self._ctx)

    def _timed(self, n_tokens: int, call: Callable[[], int]) -> int:
        """`call` on the thread count the tuner asks for, its speed reported back."""
        tuner = self.thread_tuner
        if tuner is None or n_tokens < 2:
            return call()
        threads = tuner.threads()
        if threads != ll.llama_n_threads_batch(self._ctx):
            ll.llama_set_n_threads(self._ctx, self._threads, threads)  # generation keeps its count
        started = time.perf_counter()
        rc = call()
        tuner.record(threads, n_tokens, time.perf_counter() - started)
        return rc

    def _decode(self, n_tokens: int) -> None:
        self._check_open()
        self._batch.n_tokens = n_tokens
        rc = self._timed(n_tokens, lambda: ll.llama_decode(self._ctx, self._batch))
        if rc != 0:
            raise DecodeError(rc, last_llama_error())
        self.tokens_decoded += n_tokens

    def _encode(self, n_tokens: int) -> None:
        """One encoder pass over the batch. llama.cpp asserts (aborts the process) when a call
        exceeds n_ubatch (patch 0001 covers llama_decode only), so that is checked here."""
        self._check_open()
        if n_tokens > self.n_ubatch:
            raise InputTooLongError("one encoder call", n_tokens, self.n_ubatch)
        self._batch.n_tokens = n_tokens
        rc = self._timed(n_tokens, lambda: ll.llama_encode(self._ctx, self._batch))
        if rc != 0:
            raise DecodeError(rc, last_llama_error())
        self.tokens_decoded += n_tokens

    def _fill(self, i: int, token: int, pos: int, seq: int, output: bool) -> None:
        b = self._batch
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq
        b.logits[i] = output
        if seq == 0:
            self._seq0_cells += 1

    # --- embedding -------------------------------------------------------------------------

    def _format(self, text: str, prefix: str) -> tuple[list[int], list[Piece], list[Piece]]:
        """Tokens of one text in the recipe's embedding format, with the pieces before the
        pooled copy of the text (`head`) and up to its end (`body`)."""
        fmt = self.recipe.embedding
        head: list[Piece] = [BOS, Markup(prefix)]
        if fmt.echo_separator is not None:
            head += [Text(text), Markup(fmt.echo_separator)]
        body = [*head, Text(text)]
        tokens = self.tokenize_prompt([*body, Markup(fmt.suffix)])
        if fmt.append_eos:
            tokens.append(self.eos)
        return tokens, head, body

    def document_tokens(self, text: str) -> list[int]:
        """The tokens an embedding pass over document `text` computes (and keeps KV for)."""
        return self._cut(self._format(text, self.recipe.embedding.document())[0])

    def _cut(self, tokens: list[int]) -> list[int]:
        """A recipe with `max_tokens` cuts a longer sequence there, keeping its final EOS
        (sentence-transformers' truncation: [CLS] + the first 254 pieces + [SEP])."""
        fmt = self.recipe.embedding
        if fmt.max_tokens is None or len(tokens) <= self._max_sequence:
            return tokens
        keep_tail = int(fmt.append_eos)
        return tokens[: self._max_sequence - keep_tail] + tokens[len(tokens) - keep_tail :]

    def _prepare(self, text: str, prefix: str, what: str) -> tuple[list[int], int, int]:
        """Tokens of one text in the recipe's format, and the [start, end) span to pool."""
        if not text or not text.strip():
            raise EmptyInputError(f"{what} is empty: nothing to embed")
        fmt = self.recipe.embedding
        tokens, head, body = self._format(text, prefix)
        tokens = self._cut(tokens)
        if len(tokens) > self._max_sequence:
            raise InputTooLongError(what, len(tokens), self._max_sequence)
        if fmt.pooling == "last":
            return tokens, len(tokens) - 1, len(tokens)
        if fmt.pooled == "all":
            return tokens, 0, len(tokens)
        text_end = len(self.tokenize_prompt(body)) if fmt.suffix else len(tokens)
        if fmt.pooled == "suffix":
            return tokens, text_end, len(tokens)
        return tokens, len(self.tokenize_prompt(head)), text_end

    def _groups(self, prepared: list[tuple[list[int], int, int]]) -> Iterator[list[int]]:
        """Indices of texts packed into decodes: at most `pack_tokens` tokens (a longer text
        goes alone, up to n_ubatch) and n_seq_max texts."""
        budget = min(self.n_ubatch, self.settings.pack_tokens)
        group: list[int] = []
        used = 0
        for i, (tokens, _, _) in enumerate(prepared):
            full = used + len(tokens) > budget or len(group) == self.settings.n_seq_max
            if group and full:
                yield group
                group, used = [], 0
            group.append(i)
            used += len(tokens)
        if group:
            yield group

    def _embed_prepared(
        self, prepared: list[tuple[list[int], int, int]], keep_state: bool
    ) -> tuple[np.ndarray, list[KvState]]:
        vectors = np.zeros((len(prepared), self._n_embd), dtype=np.float32)
        states: list[KvState] = []
        self._set_mode(embeddings=True, causal=self.recipe.embedding.attention == "causal")
        for group in self._groups(prepared):
            self._clear_scratch()
            n = 0
            for seq, index in enumerate(group, SCRATCH_SEQ):
                for pos, token in enumerate(prepared[index][0]):  # positions from 0 per text
                    self._fill(n, token, pos, seq, True)
                    n += 1
            if self._memory is None:
                self._encode(n)
            else:
                self._decode(n)
            hidden = np.ctypeslib.as_array(
                ll.llama_get_embeddings(self._ctx), shape=(n, self._n_embd)
            )
            if not np.isfinite(hidden).all():
                raise NonFiniteOutputError(self.path, "hidden states (embedding)")
            row = 0
            for seq, index in enumerate(group, SCRATCH_SEQ):
                tokens, start, end = prepared[index]
                pooled = hidden[row + start : row + end].mean(axis=0, dtype=np.float64)
                row += len(tokens)
                norm = np.linalg.norm(pooled)
                vectors[index] = pooled / norm if norm > 0 else pooled
                if keep_state:
                    states.append(KvState(tuple(tokens), self._save_seq(seq)))
        return vectors, states

    def embed(self, texts: Sequence[str], instruction: str | None = None) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised. No instruction = document format."""
        fmt = self.recipe.embedding
        prefix = fmt.query(instruction) if instruction else fmt.document()
        prepared = [self._prepare(t, prefix, f"text {i + 1}") for i, t in enumerate(texts)]
        return self._embed_prepared(prepared, keep_state=False)[0]

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts)

    def embed_queries(self, texts: Sequence[str], instruction: str) -> np.ndarray:
        return self.embed(texts, instruction)

    def embed_documents_with_kv(self, texts: Sequence[str]) -> tuple[np.ndarray, list[KvState]]:
        """Embed documents and hand back each one's KV state from the same pass (refused by an
        encoder, which keeps no KV: `EmbeddingOnlyError`)."""
        self._require_kv("save the KV of its embedding pass")
        prefix = self.recipe.embedding.document()
        prepared = [self._prepare(t, prefix, f"document {i + 1}") for i, t in enumerate(texts)]
        return self._embed_prepared(prepared, keep_state=True)

    # --- KV states -------------------------------------------------------------------------

    def _save_seq(self, seq: int) -> bytes:
        self._require_kv("save a KV state")
        size = ll.llama_state_seq_get_size(self._ctx, seq)
        buf = (ctypes.c_uint8 * size)()
        written = ll.llama_state_seq_get_data(self._ctx, buf, size, seq)
        return bytes(memoryview(buf)[:written])  # slicing the ctypes array would build a list

    def restore_at(self, state: KvState, position: int) -> int:
        """Put a saved state into sequence 0 starting at `position` (RoPE re-rotated by
        llama.cpp's position shift); returns the number of tokens it holds."""
        self._check_open()
        self._require_kv("restore a saved KV state")
        self._unpark()
        n = len(state.tokens)
        if position + n > self.n_ctx:
            raise InputTooLongError("the cached prompt", position + n, self.n_ctx)
        array_type = ctypes.c_uint8 * len(state.data)
        if isinstance(state.data, bytearray):
            data = array_type.from_buffer(state.data)
        else:
            data = array_type.from_buffer_copy(state.data)
        if ll.llama_state_seq_set_data(self._ctx, data, len(state.data), SCRATCH_SEQ) == 0:
            raise KvStateError(
                f"llama.cpp refused a saved KV state ({last_llama_error() or 'no detail'})"
            )
        restored = ll.llama_memory_seq_pos_max(self._memory, SCRATCH_SEQ) + 1
        if restored != n:
            ll.llama_memory_seq_rm(self._memory, SCRATCH_SEQ, -1, -1)
            raise KvStateError(f"saved KV state holds {restored} positions, expected {n}")
        if position:
            ll.llama_memory_seq_add(self._memory, SCRATCH_SEQ, 0, n, position)
        ll.llama_memory_seq_cp(self._memory, SCRATCH_SEQ, 0, -1, -1)
        ll.llama_memory_seq_rm(self._memory, SCRATCH_SEQ, -1, -1)
        self._seq0_cells += n
        return n

    # --- generation ------------------------------------------------------------------------

    def chat_tokens(self, turns: Sequence[ChatTurn]) -> list[int]:
        """The recipe's chat format, ready to answer (GritLM: BOS + `<|user|>\\n{q}\\n
        <|assistant|>\\n{a}</s>\\n<|user|>...`; ChatML: system, `<|im_start|>user\\n{q}...`)."""
        return self.prompt_tokens(self.recipe.chat.conversation(turns))

    def prefill(self, tokens: Sequence[int], position: int, seq: int = 0) -> None:
        """Causal decode of `tokens` into sequence `seq` at `position`; logits for the last one."""
        self._require_kv("generate")
        if position + len(tokens) > self.n_ctx:
            raise InputTooLongError("the prompt", position + len(tokens), self.n_ctx)
        if seq == 0:
            self._unpark()
        self._set_mode(embeddings=False, causal=True)
        for start in range(0, len(tokens), self.n_ubatch):
            chunk = tokens[start : start + self.n_ubatch]
            last_chunk = start + len(chunk) == len(tokens)
            for i, token in enumerate(chunk):
                self._fill(i, token, position + start + i, seq, last_chunk and i == len(chunk) - 1)
            self._decode(len(chunk))

    def last_logits(self) -> np.ndarray:
        self._require_kv("compute logits")  # an encoder's context has no logits buffer
        logits = self._output_logits(-1)
        if not np.isfinite(logits).all():
            raise NonFiniteOutputError(self.path, "next-token logits")
        return logits

    def _sampler(self, options: GenerationOptions) -> ll.llama_sampler_p:
        chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
        if options.temperature <= 0:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_greedy())
        else:
            if options.top_p < 1.0:
                ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_p(options.top_p, 1))
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_temp(options.temperature))
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_dist(options.seed))
        return chain

    def stream(
        self,
        fresh_tokens: Sequence[int],
        *,
        position: int = 0,
        reused_tokens: int = 0,
        options: GenerationOptions | None = None,
        stats: GenerationStats | None = None,
        should_stop: Callable[[], bool] | None = None,
        contrast: Contrast | None = None,
        contrast_prompt: Sequence[int] = (),
    ) -> Iterator[str]:
        """Prefill `fresh_tokens` at `position` (after `reused_tokens` restored ones), then
        sample and yield text pieces as they come. Cache state must be prepared by the caller.

        With `contrast`, `contrast_prompt` (the prompt without its passages, from position 0)
        goes into the scratch sequence and every token is sampled from both sequences' logits
        combined (`_start_contrast`); the stop rules, stats and sequence 0's end are those of
        plain generation, and the scratch sequence is gone afterwards (`_end_contrast`). An
        alpha of 0 is plain generation: nothing is contrasted, nothing else decoded."""
        self._require_kv("generate")
        options = options or GenerationOptions()
        stats = stats if stats is not None else GenerationStats()
        stats.prompt_tokens_computed = len(fresh_tokens)
        stats.prompt_tokens_reused = reused_tokens
        if not fresh_tokens:
            raise EmptyInputError("the prompt is empty")
        self.prefill(fresh_tokens, position)
        logits = self.last_logits()  # NaN/inf logits: broken weights, not an answer
        pos = position + len(fresh_tokens)
        without = None  # the scratch sequence's logits while contrasting
        if contrast is not None and contrast.alpha > 0:
            without = self._start_contrast(contrast_prompt, pos, options.max_tokens, stats)
        scratch_pos = len(contrast_prompt)
        sampler = self._sampler(options)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = _StopMatcher(options.stop)
        try:
            while True:
                if should_stop is not None and should_stop():
                    stats.finish_reason = "cancelled"
                    break
                if stats.generated_tokens >= options.max_tokens:
                    stats.finish_reason = "length"
                    break
                if pos >= self.n_ctx:
                    stats.finish_reason = "context"
                    break
                if contrast is not None and without is not None:
                    token = self._sample_from(sampler, contrast.combine(logits, without))
                else:
                    token = ll.llama_sampler_sample(sampler, self._ctx, -1)
                    ll.llama_sampler_accept(sampler, token)
                stats.generated_tokens += 1
                if stats.seconds_to_first_token is None:
                    stats.seconds_to_first_token = time.perf_counter() - stats.started_at
                if ll.llama_vocab_is_eog(self._vocab, token) or token in self._stop_tokens:
                    stats.finish_reason = "stop"
                    break
                text, hit = stops.feed(decoder.decode(self.token_bytes(token)))
                if text:
                    yield text
                if hit:
                    stats.finish_reason = "stop"
                    break
                self._fill(0, token, pos, 0, True)
                if without is None:
                    self._decode(1)
                else:  # the same token after the prompt without passages, in the same batch
                    self._fill(1, token, scratch_pos, SCRATCH_SEQ, True)
                    self._decode(2)
                    logits, without = self._output_logits(0), self._output_logits(1)
                    scratch_pos += 1
                pos += 1
            tail = (
                stops.flush(decoder.decode(b"", final=True))
                if stats.finish_reason != "stop"
                else ""
            )
            if tail:
                yield tail
        finally:
            ll.llama_sampler_free(sampler)
            if without is not None:
                self._end_contrast()
            stats.seconds_total = time.perf_counter() - stats.started_at
            stats.end_position = pos

    def _start_contrast(
        self, prompt: Sequence[int], pos: int, max_tokens: int, stats: GenerationStats
    ) -> np.ndarray | None:
        """Prefill the prompt without passages into the scratch sequence, beside sequence 0
        (not on a parked, empty cache: it lives as long as the answer), and return its
        next-token logits; None, with the reason in `stats`, when the context has no room
        for both sequences to grow by the whole answer."""
        if not prompt:
            stats.contrast_skipped = "no prompt to contrast with"
            return None
        answer = min(max_tokens, self.n_ctx - pos)
        needed = self._seq0_cells + answer + len(prompt) + answer
        if needed > self.n_ctx:
            stats.contrast_skipped = (
                f"the prompt, the one without passages and two answers need {needed} tokens "
                f"of the {self.n_ctx}-token context"
            )
            return None
        ll.llama_memory_seq_rm(self._memory, SCRATCH_SEQ, -1, -1)
        self.prefill(prompt, 0, seq=SCRATCH_SEQ)
        return self.last_logits()

    def _end_contrast(self) -> None:
        """Drop the scratch sequence, and put sequence 0 back into cells 0.. in one run (its
        answer's cells alternated with the scratch sequence's), as plain generation leaves
        it: a follow-up's tokens then go where they would after a plain answer."""
        self._clear_scratch()  # sequence 0 parked, the cache emptied
        self._unpark()

    def _output_logits(self, row: int) -> np.ndarray:
        """The logits of output `row` of the last decode (a copy; -1: the last output)."""
        logits = ll.llama_get_logits_ith(self._ctx, row)
        if not logits:  # the last decode was an embedding pass: no LM head (native patch 0002)
            raise RuntimeFailure("no logits: the last pass computed embeddings only")
        n_vocab = ll.llama_vocab_n_tokens(self._vocab)
        return np.ctypeslib.as_array(logits, shape=(n_vocab,)).copy()

    def _sample_from(self, sampler: ll.llama_sampler_p, logits: np.ndarray) -> int:
        """The token `sampler` chooses among `logits` computed here rather than read from
        the context (llama_sampler_sample's steps: apply the chain, take its choice, accept)."""
        n_vocab = len(logits)
        if self._candidates is None:  # one array for every step, as llama_sampler_sample has
            self._candidates = np.recarray(
                (n_vocab,),
                dtype=np.dtype(
                    [("id", np.intc), ("logit", np.single), ("p", np.single)], align=True
                ),
            )
        data = self._candidates
        data.id[:] = np.arange(n_vocab, dtype=np.intc)
        data.logit[:] = logits
        data.p[:] = 0.0
        candidates = ll.llama_token_data_array(
            data=data.ctypes.data_as(ll.llama_token_data_p), size=n_vocab, selected=-1, sorted=False
        )
        ll.llama_sampler_apply(sampler, ctypes.byref(candidates))
        token = int(candidates.data[candidates.selected].id)
        ll.llama_sampler_accept(sampler, token)
        return token

    def generate(
        self,
        prompt: str | Sequence[ChatTurn],
        options: GenerationOptions | None = None,
        stats: GenerationStats | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        """Chat-format generation from scratch: a message or a list of turns (last unanswered)."""
        turns = [ChatTurn(prompt)] if isinstance(prompt, str) else list(prompt)
        if not turns or not turns[-1].user.strip():
            raise EmptyInputError("the prompt is empty")
        tokens = self.chat_tokens(turns)
        self.reset()
        return self.stream(tokens, options=options, stats=stats, should_stop=should_stop)

    def next_token_logits(self, tokens: Sequence[int]) -> np.ndarray:
        """Logits after a causal pass over `tokens` alone (used to rerank), in a scratch
        sequence on an empty cache: sequence 0 (a chat's kept context) is parked, not lost."""
        self._require_kv("compute logits")
        self._clear_scratch()
        self.prefill(tokens, 0, seq=SCRATCH_SEQ)
        logits = self.last_logits()
        ll.llama_memory_seq_rm(self._memory, SCRATCH_SEQ, -1, -1)
        return logits


class _StopMatcher:
    """Holds back text that may be the start of a stop string; cuts at the first stop."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        if not self.stops:
            return piece, False
        self.pending += piece
        cut = min((i for s in self.stops if (i := self.pending.find(s)) >= 0), default=-1)
        if cut >= 0:
            out, self.pending = self.pending[:cut], ""
            return out, True
        keep = max(
            (k for s in self.stops for k in range(1, len(s)) if self.pending.endswith(s[:k])),
            default=0,
        )
        out = self.pending[: len(self.pending) - keep]
        self.pending = self.pending[len(self.pending) - keep :]
        return out, False

    def flush(self, piece: str) -> str:
        out, self.pending = self.pending + piece, ""
        return out
