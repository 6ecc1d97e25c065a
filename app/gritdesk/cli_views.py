"""How the commands show things on a terminal: progress bars, summaries, hits, citations.

Kept apart from cli.py so the commands stay a page of option parsing and delegation.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from gritdesk.ingest.estimate import IndexEstimate
from gritdesk.ingest.indexer import IndexProgress, IndexReport, ProgressCallback
from gritdesk.rag.ask_service import Answer
from gritdesk.rag.retrieve import Hit
from gritdesk.terminal_text import printable, printable_line

err = Console(stderr=True)


@contextmanager
def index_progress(enabled: bool) -> Iterator[ProgressCallback | None]:
    """A live bar (files, chunks, tokens/s, ETA) on a terminal; nothing otherwise."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files · {task.fields[chunks]} chunks · {task.fields[tps]:.0f} tok/s"),
        TimeElapsedColumn(),
        TextColumn("ETA {task.fields[eta]}"),
        TextColumn("[dim]{task.fields[current]}"),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("scanning", total=None, chunks=0, tps=0.0, eta="?", current="")

        def update(p: IndexProgress) -> None:
            bar.update(
                task,
                description=p.phase,
                total=p.files_total or None,
                completed=p.files_done,
                chunks=p.chunks_done,
                tps=p.tokens_per_s,
                eta="?" if p.eta_s is None else describe_duration(p.eta_s),
                current=escape(_current_file(p)),
            )

        yield update


def _current_file(p: IndexProgress) -> str:
    """The file being worked on and its share of the run's bytes: `docs/big.csv (31%)`."""
    name = printable_line(p.current_path or "")[-40:]
    if name and p.current_share is not None:
        return f"{name} ({p.current_share:.0%})"
    return name


def print_notice(notice: str) -> None:
    """A note on stderr; the notice is text (paths, file names), never markup."""
    err.print(f"[yellow]note:[/yellow] {escape(printable(notice))}")


def print_index_summary(
    report: IndexReport,
    kv_saved: int,
    kv_skipped: int,
    kv_failed: int = 0,
    kv_failure: str | None = None,
) -> None:
    print(
        f"indexed {report.indexed}, unchanged {report.unchanged}, renamed {report.renamed}, "
        f"removed {report.removed}, skipped {len(report.skipped)}, ignored {report.ignored}; "
        f"{report.chunks_written} chunks ({report.chunks_embedded} embedded, "
        f"{report.tokens_embedded} tokens) in {report.elapsed_s:.1f} s; "
        f"KV caches saved {kv_saved}"
        + (f" ({kv_skipped} not kept: budget full)" if kv_skipped else "")
    )
    if kv_failed:
        print(
            f"  KV caches not saved: {kv_failed} (the chunks are indexed; answers recompute "
            f"their KV): {printable_line(kv_failure or '')}"
        )
    if report.slowest:
        print("  slowest: " + ", ".join(
            f"{printable_line(s.path)} {s.seconds:.1f} s ({s.tokens} tokens)"
            for s in report.slowest[:5]
        ))
    if report.skipped:
        reasons = Counter(s.reason for s in report.skipped)
        for skip in report.skipped[:50]:
            print(f"  {skip.status}: {printable_line(skip.path)}: {printable_line(skip.reason)}")
        if len(report.skipped) > 50:
            print(f"  ... and {len(report.skipped) - 50} more; by reason:")
            for reason, count in reasons.most_common(10):
                print(f"    {count} x {printable_line(reason)}")


def describe_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600:.0f} h {seconds % 3600 / 60:.0f} min"
    return f"{seconds / 86400:.1f} days"


def describe_size(size: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size:.0f} B"


def print_index_estimate(
    estimate: IndexEstimate, kv_budget: int | None = None, out: TextIO | None = None
) -> None:
    """The cost of a run before it starts (`index --dry-run`, and before every run)."""

    def say(line: str) -> None:
        print(printable_line(line), file=out or sys.stdout)

    e = estimate
    say(
        f"estimate: {e.files:,} files to read ({describe_size(e.bytes)}; "
        f"{e.unchanged:,} unchanged, {e.skipped:,} skipped), ~{e.chunks:,} chunks, "
        f"~{e.tokens:,} tokens (sampled {e.sample_files} files, "
        f"{e.tokens_per_byte:.2f} tokens/byte)"
    )
    if e.seconds is not None and e.files:
        speed = f" at {e.tokens_per_s:,.0f} tokens/s ({e.speed_source})" if e.tokens_per_s else ""
        say(f"  time: ~{describe_duration(e.seconds)}{speed}")
    if e.scanned_pages and e.ocr_skipped:
        say(f"  OCR skipped: {e.scanned_pages:,} scanned PDF pages not read ({e.ocr_skipped})")
    elif e.scanned_pages:
        cut = e.scanned_pages - e.ocr_pages
        past = f"; {cut:,} past the per-file OCR time limit" if cut else ""
        say(
            f"  OCR: {e.ocr_pages:,} scanned PDF pages at ~{e.ocr_seconds_per_page or 0:.1f} s "
            f"a page (one timed here), ~{describe_duration(e.ocr_seconds)} of the time{past}"
        )
    if e.kv_bytes is not None and e.files:
        # indexing fills the budget's free room and never evicts (store/kv_cache.py)
        written = e.kv_bytes if kv_budget is None else min(e.kv_bytes, kv_budget)
        budget = f", budget {describe_size(kv_budget)}" if kv_budget is not None else ""
        say(
            f"  KV caches: ~{describe_size(written)} written at most "
            f"(~{describe_size(e.kv_bytes)} for every chunk at "
            f"{describe_size(e.kv_bytes_per_token or 0)}/token{budget})"
        )
    if e.biggest_files:
        say("  biggest files: " + ", ".join(
            f"{c.path} {c.share:.0%}" for c in e.biggest_files[:5]
        ))
    if len(e.biggest_folders) > 1:
        say("  biggest folders: " + ", ".join(
            f"{c.path} {c.share:.0%}" for c in e.biggest_folders[:5]
        ))


def print_hits(hits: list[Hit]) -> None:
    if not hits:
        print("no results")
    for rank, hit in enumerate(hits, 1):
        print(f"{rank:2}. {printable_line(hit.location)}  score {hit.score:.4f}")
        if hit.heading_path:
            print(f"    § {printable_line(hit.heading_path)}")
        print("    " + printable_line(hit.snippet))


def print_answer_end(answer: Answer) -> None:
    """What follows a streamed answer: the facts no passage holds, the sentences that
    support it, its numbered sources, at their full paths."""
    if answer.not_found:
        print("\nnot found in your files: " + printable_line(", ".join(answer.not_found)))
    if answer.evidence:
        print("\nEvidence:")
        for evidence in answer.evidence:
            where = printable_line(f"[{evidence.source.number}] {evidence.location}")
            print(f"{where}  {printable_line(evidence.text)}")
    if not answer.sources:
        print("\n(no sources found in the index)")
        return
    print("\nSources:")
    for citation in answer.sources:
        rerank = citation.rerank_score
        extra = f", rerank {rerank:.2f}" if rerank is not None else ""
        label = printable_line(f"[{citation.number}] {citation.full_location}")
        print(f"{label}  (score {citation.score:.4f}{extra}, KV {citation.kv})")
