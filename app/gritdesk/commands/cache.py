"""`gritdesk cache stats`: what the saved KV caches cost on disk, per KV type."""

from __future__ import annotations

from gritdesk.models.model_info import kv_bytes_per_token
from gritdesk.session import Session
from gritdesk.terminal_text import printable_line


def print_cache_stats(session: Session) -> None:
    store, engine = session.kv_store, session.engine
    assert store is not None
    fixed = store.reconcile()
    stats = store.stats()
    print(f"KV cache directory: {printable_line(str(store.directory))}")
    if fixed.rows_dropped or fixed.files_deleted:
        print(
            f"reconciled: {fixed.rows_dropped} records without a file dropped, "
            f"{fixed.files_deleted} files without a record deleted "
            f"({fixed.bytes_freed / 2**20:.1f} MiB)"
        )
    print(
        f"blobs: {stats.blobs}, on disk: {stats.bytes / 2**20:.1f} MiB "
        f"of a {stats.budget_bytes / 2**30:.2f} GiB budget"
    )
    for kv_type, (blobs, size, tokens) in sorted(stats.by_kv_type.items()):
        per_token = size / max(tokens, 1) / 1024
        print(f"  {kv_type}: {blobs} blobs, {tokens} tokens, {per_token:.1f} KiB/token measured")
    if engine is not None:
        s = engine.summary
        name = printable_line(s.name)
        print(f"per token for {name} ({s.n_layer} layers, {s.n_head_kv} KV heads):")
        for kv_type, size in kv_bytes_per_token(s.n_layer, s.n_head_kv, s.head_size).items():
            shown = "n/a (rows do not fit its blocks)" if size is None else f"{size / 1024:.1f} KiB"
            print(f"  {kv_type}: {shown}/token")
