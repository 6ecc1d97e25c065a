"""What an index run will cost, found before it starts: files, chunks, tokens, time, KV disk.

A quick scan (stat only, plus the first 64 KiB of each file to read, for the minified and
generated checks) finds the files a run would read: the run's own scan (scan.py).
A sample of them, spread over their kinds and sizes, is parsed and chunked with the
loaded model's tokenizer: tokens and chunks per byte, per file suffix, scale the sample
up to every file. The speed is the one measured on earlier runs of this model on this
machine (see store/index_throughput), else a short timed embedding of sample chunks.

Scanned PDF pages cost OCR time on top, which no earlier run's tokens/s says much about
(it depends on how many scans a folder holds): every PDF to read has its pages without a
text layer counted (a cheap look at each page, in the bounded parser process), and one
such page of the user's own files is read by tesseract once, timed, on this machine (a
page's OCR time depends on its size and print far more than on the model; seconds, paid
only when there are scans). The sample is parsed without OCR; the timed page's text
stands for the tokens of each scanned page. With OCR off or tesseract missing, scanned
pages cost nothing and the estimate says OCR is skipped (so are those pages, in the run).
Nothing is written to the index.
"""

from __future__ import annotations

import math
import os
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath

import apsw

from gritdesk.ingest.byte_sizes import MIB
from gritdesk.ingest.chunk import Chunk, ChunkingPolicy, chunk_document, chunking_signature
from gritdesk.ingest.document import UnindexableFile
from gritdesk.ingest.file_selection import CONTENT_CHECK_BYTES, FileSelection
from gritdesk.ingest.formats.ocr import tesseract_path
from gritdesk.ingest.indexer import DEFAULT_BATCH_CHUNKS
from gritdesk.ingest.parser_process import OCR_SHARE, ParseLimits, ParserProcess
from gritdesk.ingest.scan import (
    Scope,
    ScopeScan,
    database_files,
    open_regular_file,
    parse_interrupted,
    read_regular_file,
    scope_of,
    skip_reason_unread,
)
from gritdesk.ingest.walk import FoundFile, SkippedPath
from gritdesk.runtime.protocols import DocumentEmbedder
from gritdesk.store.index_throughput import stored_throughput
from gritdesk.store.sources import Root, display_path, list_roots

SAMPLE_FILES = 48
SAMPLE_BYTES = 8 * MIB
PER_SUFFIX = 6  # sampled files of one suffix at most (more only to fill the budget)
TIMED_PASS_S = 3.0  # the timed embedding pass stops after this long ...
TIMED_PASS_CHUNKS = 64  # chunks of the sample it uses
TIMED_PASS_ROUNDS = 64  # embedding calls at most
QUICK_CHUNK_S = 0.25  # a chunk embedded faster than this: time whole batches, as a run does
SAMPLE_PARSE_S = 2.0  # a sampled file parsing longer is left out of the sample
SCAN_COUNT_S = 2.0  # counting one PDF's scanned pages stops after this long (counted 0)
SCAN_COUNT_BUDGET_S = 10.0  # PDFs left after this long are scaled from the counted ones
OCR_TIMING_S = 20.0  # the one timed OCR page stops after this long (then this is its time)
OCR_SKIPPED_OFF = "OCR turned off (ocr = false in config.toml [index])"
OCR_SKIPPED_MISSING = "tesseract not installed (apt-get install tesseract-ocr)"


@dataclass(frozen=True)
class Contributor:
    path: str
    bytes: int
    tokens: int
    share: float  # of the run's estimated tokens


@dataclass
class IndexEstimate:
    files: int = 0  # files the run would read (new or changed)
    bytes: int = 0
    unchanged: int = 0
    skipped: int = 0  # files and folders the run would skip (reasons in the run's summary)
    chunks: int = 0
    tokens: int = 0
    tokens_per_byte: float = 0.0  # over the whole sample
    sample_files: int = 0
    tokens_per_s: float | None = None
    speed_source: str = "none"  # "earlier runs", "timed sample", "none" (nothing to embed)
    seconds: float | None = None
    kv_bytes_per_token: int | None = None
    kv_bytes: int | None = None
    biggest_files: list[Contributor] = field(default_factory=list)
    biggest_folders: list[Contributor] = field(default_factory=list)
    scanned_pages: int = 0  # PDF pages without a text layer in the files to read
    ocr_pages: int = 0  # of those, what tesseract will read (0: OCR skipped)
    ocr_skipped: str | None = None  # why scanned pages will not be read
    ocr_seconds_per_page: float | None = None  # one of the user's scanned pages, timed here
    ocr_seconds: float = 0.0  # part of `seconds`
    ocr_tokens: int = 0  # part of `tokens`: the timed page's tokens for each page read
    pdfs_counted: int = 0  # PDFs whose pages were looked at; the rest are scaled by bytes

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Planned:
    root: Root
    found: FoundFile
    head: bytes = b""
    tokens: float = 0.0
    chunks: float = 0.0
    sampled: bool = False
    scanned: list[int] = field(default_factory=list)  # PDF pages to be read by OCR
    scanned_guess: float = 0.0  # a PDF left uncounted: its bytes times the counted's rate
    all_scanned: bool = False  # no page has a text layer: only OCR gives it tokens


def estimate_index(
    db: apsw.Connection,
    embedder: DocumentEmbedder,
    paths: Iterable[str | os.PathLike],
    *,
    limits: ParseLimits | None = None,
    selection: FileSelection | None = None,
    policy: ChunkingPolicy | None = None,
    kv_bytes_per_token: int | None = None,
    time_sample: bool = True,
    fresh: bool = False,
) -> IndexEstimate:
    """The cost of `index_paths(db, embedder, paths)` (all known roots when `paths` is
    empty). `kv_bytes_per_token`: what saving each chunk's KV cache costs, if it is saved.
    `time_sample=False` leaves the speed unknown when no earlier run measured it;
    `fresh`: as if nothing were indexed yet (`--rebuild`)."""
    limits = limits or ParseLimits()
    selection = selection or FileSelection()
    policy = policy or ChunkingPolicy()
    chunking = chunking_signature(policy, embedder)
    estimate = IndexEstimate(kv_bytes_per_token=kv_bytes_per_token)
    planned = _scan(db, _scopes(db, paths), limits, selection, chunking, estimate, fresh)
    estimate.files = len(planned)
    estimate.bytes = sum(p.found.size for p in planned)
    if not planned:
        estimate.seconds = 0.0
        estimate.kv_bytes = 0 if kv_bytes_per_token is not None else None
        return estimate

    _count_scanned_pages(planned, limits, estimate)
    sample_chunks, parse_s = _measure_sample(planned, embedder, limits, policy)
    per_chunk = _scale_up(planned, estimate)
    _ocr_cost(planned, embedder, limits, per_chunk, estimate)
    estimate.tokens = round(sum(p.tokens for p in planned))
    estimate.chunks = round(sum(p.chunks for p in planned))
    _contributors(planned, estimate)
    if kv_bytes_per_token is not None:
        estimate.kv_bytes = estimate.tokens * kv_bytes_per_token

    fingerprint = getattr(embedder, "fingerprint", "")
    saves_kv = kv_bytes_per_token is not None
    speed = stored_throughput(db, fingerprint, saves_kv) if fingerprint else None
    if speed:
        estimate.tokens_per_s, estimate.speed_source = speed, "earlier runs"
        estimate.seconds = estimate.tokens / speed + estimate.ocr_seconds
    elif time_sample and sample_chunks:
        embed_speed = _timed_embedding(embedder, sample_chunks, saves_kv)
        sampled_bytes = sum(p.found.size for p in planned if p.sampled)
        parse_per_byte = parse_s / sampled_bytes if sampled_bytes else 0.0
        text_bytes = sum(p.found.size for p in planned if not p.all_scanned)  # scans: OCR
        seconds = estimate.tokens / embed_speed + text_bytes * parse_per_byte
        estimate.tokens_per_s = estimate.tokens / seconds if seconds > 0 else embed_speed
        estimate.speed_source = "timed sample"
        estimate.seconds = seconds + estimate.ocr_seconds
    elif estimate.ocr_seconds:
        estimate.seconds = estimate.ocr_seconds  # nothing else measured: at least this
    return estimate


# --- the scan ---------------------------------------------------------------------------


def _scopes(db: apsw.Connection, paths: Iterable[str | os.PathLike]) -> list[Scope]:
    """Which root and part of it each path means, registering nothing (a new folder is a
    root with id -1: nothing of it is known yet)."""
    given = [Path(p) for p in paths]
    if not given:
        return [Scope(root, None) for root in list_roots(db)]
    scopes = []
    for path in given:
        absolute = Path(os.path.abspath(path.expanduser()))
        if absolute.exists():  # a vanished path costs nothing to remove
            scopes.append(scope_of(db, absolute.resolve(), register=False))
    return scopes


def _scan(
    db: apsw.Connection,
    scopes: Sequence[Scope],
    limits: ParseLimits,
    selection: FileSelection,
    chunking: str,
    estimate: IndexEstimate,
    fresh: bool,
) -> list[_Planned]:
    """The files the run would read, by the run's own scan (scan.py) and its checks before
    parsing: name and size, an interrupted parse, the first bytes (minified, generated)."""
    exclude = database_files(db)
    planned: dict[tuple[str, str], _Planned] = {}
    for scope in scopes:
        scan = ScopeScan(
            db, scope, chunking=chunking, selection=selection, exclude=exclude, fresh=fresh
        )
        if scan.unreachable:  # the run reports it among its skips
            estimate.skipped += 1
            continue
        for scanned in scan:
            item = scanned.item
            if isinstance(item, SkippedPath):
                estimate.skipped += 1
                continue
            if scanned.unchanged:
                estimate.unchanged += 1
                continue
            if (
                parse_interrupted(item, scan.attempts.get(item.rel_path))
                or skip_reason_unread(item, selection, limits.file_bytes)
                or item.size == 0
            ):
                estimate.skipped += 1
                continue
            head = _read_head(item)
            if head is None or selection.reason_by_content(item.rel_path, item.size, head):
                estimate.skipped += 1
                continue
            planned[(scope.root.path, item.rel_path)] = _Planned(scope.root, item, head)
    return list(planned.values())


def _read(found: FoundFile, limits: ParseLimits) -> bytes:
    """A file's bytes, read as the run reads them."""
    return read_regular_file(found.path, limits.file_bytes, found.identity)


def _read_head(found: FoundFile) -> bytes | None:
    """What the content checks read of a file, opened as the run opens it; None where the
    run could not read it."""
    try:
        with open_regular_file(found.path, found.identity) as handle:
            return handle.read(CONTENT_CHECK_BYTES)
    except (UnindexableFile, OSError):
        return None


# --- the sample -------------------------------------------------------------------------


def _suffix(planned: _Planned) -> str:
    return PurePosixPath(planned.found.rel_path).suffix.lower()


def _choose_sample(planned: list[_Planned]) -> list[_Planned]:
    """Files of every suffix, spread over sizes (smallest to largest), biggest suffixes
    first, within SAMPLE_FILES and SAMPLE_BYTES."""
    by_suffix: dict[str, list[_Planned]] = defaultdict(list)
    for item in planned:
        by_suffix[_suffix(item)].append(item)
    groups = sorted(by_suffix.values(), key=lambda g: -sum(p.found.size for p in g))
    queues = []
    for group in groups:
        group.sort(key=lambda p: (p.found.size, p.found.rel_path))
        n = len(group)
        picks = min(n, PER_SUFFIX)
        order = sorted({round(i * (n - 1) / max(picks - 1, 1)) for i in range(picks)})
        spread = [group[i] for i in order]
        rest = [p for i, p in enumerate(group) if i not in set(order)]
        queues.append(spread + rest)
    chosen: list[_Planned] = []
    budget = SAMPLE_BYTES
    depth = 0
    while len(chosen) < SAMPLE_FILES and any(depth < len(q) for q in queues):
        for queue in queues:
            if depth < len(queue) and len(chosen) < SAMPLE_FILES:
                item = queue[depth]
                if item.found.size <= budget or not chosen:
                    chosen.append(item)
                    budget -= item.found.size
        depth += 1
    return chosen


def _measure_sample(
    planned: list[_Planned],
    embedder: DocumentEmbedder,
    limits: ParseLimits,
    policy: ChunkingPolicy,
) -> tuple[list[Chunk], float]:
    """Parse and chunk the sample; each sampled file gets its exact tokens and chunks.
    Returns the sample's chunks (for a timed pass) and the seconds spent parsing."""
    sample = _choose_sample([p for p in planned if not p.all_scanned])
    chunks_out: list[Chunk] = []
    parse_s = 0.0
    # a hostile file must not hold the estimate up: its parse is cut short, and the run
    # (which records slow parses, see indexer._parse) deals with it as usual. Without
    # OCR: scanned pages are costed apart (_ocr_cost)
    sample_limits = replace(limits, seconds=min(limits.seconds, SAMPLE_PARSE_S), ocr=False)
    with ParserProcess(sample_limits) as parser:
        for item in sample:
            item.sampled = True
            try:
                data = _read(item.found, limits)
                started = time.monotonic()
                document = parser.parse(item.found.rel_path, data)
                chunks = chunk_document(document, embedder, policy)
                parse_s += time.monotonic() - started
            except Exception:  # skipped or failing in the run too: it costs nothing there
                continue
            item.tokens = float(sum(c.token_count for c in chunks))
            item.chunks = float(len(chunks))
            chunks_out.extend(chunks)
    return chunks_out, parse_s


def _scale_up(planned: list[_Planned], estimate: IndexEstimate) -> float:
    """Tokens per byte by suffix (the whole sample's where a suffix was not sampled);
    chunks from tokens at the sample's tokens per chunk, at least one per file. PDFs that
    are all scans get their tokens from OCR only (_ocr_cost). Returns tokens per chunk."""
    sampled = [p for p in planned if p.sampled]
    by_suffix: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for p in sampled:
        by_suffix[_suffix(p)][0] += p.tokens
        by_suffix[_suffix(p)][1] += p.found.size
    all_tokens = sum(p.tokens for p in sampled)
    all_bytes = sum(p.found.size for p in sampled)
    overall = all_tokens / all_bytes if all_bytes else 0.25
    estimate.tokens_per_byte = overall
    estimate.sample_files = len(sampled)
    multi = [p for p in sampled if p.chunks >= 2]
    per_chunk = sum(p.tokens for p in multi) / sum(p.chunks for p in multi) if multi else 0.0
    for p in planned:
        if p.sampled or p.all_scanned:
            continue
        tokens, size = by_suffix.get(_suffix(p), (0.0, 0.0))
        ratio = tokens / size if size else overall
        p.tokens = p.found.size * ratio
        if p.tokens <= 0:
            p.chunks = 0.0
        elif per_chunk:
            p.chunks = max(1.0, math.ceil(p.tokens / per_chunk))
        else:
            p.chunks = 1.0
    return per_chunk


# --- scanned pages ------------------------------------------------------------------------


def _count_scanned_pages(
    planned: list[_Planned], limits: ParseLimits, estimate: IndexEstimate
) -> None:
    """Each PDF's scanned pages, for SCAN_COUNT_BUDGET_S in all (a library of text PDFs
    must not make the estimate slow); PDFs left then, taken in an order spread over the
    folders, get the counted PDFs' scanned pages per byte."""
    pdfs = sorted(
        (p for p in planned if _suffix(p) == ".pdf"),
        key=lambda p: zlib.crc32(os.fsencode(p.found.rel_path)),
    )
    if not pdfs:
        return
    counted_bytes = counted_pages = 0
    stop_at = time.monotonic() + SCAN_COUNT_BUDGET_S
    left: list[_Planned] = []
    with ParserProcess(replace(limits, seconds=min(limits.seconds, SCAN_COUNT_S))) as parser:
        for item in pdfs:
            if estimate.pdfs_counted and time.monotonic() > stop_at:
                left.append(item)
                continue
            estimate.pdfs_counted += 1
            counted_bytes += item.found.size
            try:
                data = _read(item.found, limits)
                pages, item.scanned = parser.scanned_pdf_pages(item.found.rel_path, data)
            except Exception:  # unreadable or slow: the run finds out (and costs it little)
                continue
            counted_pages += len(item.scanned)
            item.all_scanned = bool(item.scanned) and len(item.scanned) == pages
    for item in left:
        item.scanned_guess = item.found.size * counted_pages / max(counted_bytes, 1)


def _scanned(item: _Planned) -> float:
    return len(item.scanned) or item.scanned_guess


def _contributors(planned: list[_Planned], estimate: IndexEstimate, top: int = 10) -> None:
    total = max(sum(p.tokens for p in planned), 1.0)

    def contributor(path: str, size: int, tokens: float) -> Contributor:
        return Contributor(display_path(path), size, round(tokens), tokens / total)

    files = sorted(planned, key=lambda p: -p.tokens)[:top]
    estimate.biggest_files = [
        contributor(os.path.join(p.root.path, p.found.rel_path), p.found.size, p.tokens)
        for p in files
    ]
    folders: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for p in planned:
        parent = PurePosixPath(p.found.rel_path).parent.as_posix()
        key = os.path.join(p.root.path, parent) if parent != "." else p.root.path
        folders[key][0] += p.found.size
        folders[key][1] += p.tokens
    ranked = sorted(folders.items(), key=lambda kv: -kv[1][1])[:top]
    estimate.biggest_folders = [
        contributor(path, int(size), tokens) for path, (size, tokens) in ranked
    ]


def _timed_embedding(embedder: DocumentEmbedder, chunks: list[Chunk], saves_kv: bool) -> float:
    """Tokens per second of embedding sample chunks the way a run does: batches of
    DEFAULT_BATCH_CHUNKS where one chunk is quick (a small model, where each call's own
    overhead counts), one chunk a call where it is slow (a large model: the compute is
    all there is, and a batch would take minutes). With `saves_kv`, each pass also hands
    back its KV state, as a saving run does (then dropped: the estimate writes nothing)."""
    embed = embedder.embed_documents
    with_kv = getattr(embedder, "embed_documents_with_kv", None)
    if saves_kv and with_kv is not None:
        embed = with_kv
    step = max(1, len(chunks) // TIMED_PASS_CHUNKS)  # spread over the sample's files
    texts = [(c.embedding_text, max(c.token_count, 1)) for c in chunks[::step]]
    embed([min(texts, key=lambda t: t[1])[0]])  # warm-up on the smallest
    started = time.monotonic()
    embed([texts[0][0]])
    probe_s = time.monotonic() - started
    batch = DEFAULT_BATCH_CHUNKS if probe_s < QUICK_CHUNK_S else 1
    groups = [texts[i : i + batch] for i in range(0, len(texts), batch)]
    if batch > 1:
        embed([text for text, _ in groups[0]])  # llama.cpp sizes its buffers on a first batch
    tokens, started = 0, time.monotonic()
    for n in range(TIMED_PASS_ROUNDS):  # round and round while quick: a steadier figure
        group = groups[n % len(groups)]
        embed([text for text, _ in group])
        tokens += sum(count for _, count in group)
        if time.monotonic() - started >= TIMED_PASS_S:
            break
    return tokens / max(time.monotonic() - started, 1e-6)


def _ocr_cost(
    planned: list[_Planned],
    embedder: DocumentEmbedder,
    limits: ParseLimits,
    per_chunk: float,
    estimate: IndexEstimate,
) -> None:
    """Time and tokens of the scanned pages: one page timed, each file's OCR bounded by
    the run's own limit (OCR_SHARE of parse_timeout_s, then the run stops reading it)."""
    scans = [p for p in planned if _scanned(p)]
    estimate.scanned_pages = round(sum(_scanned(p) for p in scans))
    if not scans:
        return
    if not limits.ocr:
        estimate.ocr_skipped = OCR_SKIPPED_OFF
        return
    if tesseract_path() is None:
        estimate.ocr_skipped = OCR_SKIPPED_MISSING
        return
    timed = max(scans, key=lambda p: len(p.scanned))  # the counted file that costs most
    timing = replace(limits, seconds=OCR_TIMING_S / OCR_SHARE)
    try:
        data = _read(timed.found, limits)
        with ParserProcess(timing) as parser:
            per_page, text = parser.time_ocr_page(timed.found.rel_path, data, timed.scanned[0])
    except Exception:  # killed at its time limit (or unreadable): at least that long
        per_page, text = OCR_TIMING_S, ""
    per_page = max(per_page, 1e-3)
    page_tokens = embedder.count_tokens(text) if text.strip() else 0
    cap = limits.seconds * OCR_SHARE
    estimate.ocr_seconds_per_page = per_page
    chunks_a_page = max(1, math.ceil(page_tokens / per_chunk) if per_chunk else 1)
    for p in scans:
        pages = min(_scanned(p), max(1, math.floor(cap / per_page)))
        tokens = round(pages * page_tokens)
        estimate.ocr_pages += round(pages)
        estimate.ocr_seconds += min(pages * per_page, cap)
        estimate.ocr_tokens += tokens
        p.tokens += tokens
        if tokens:  # chunks never span PDF pages: one at least for each page
            p.chunks += round(pages) * chunks_a_page
