"""Run one index in a child process, optionally dying by SIGKILL at a chosen point.

Used by the crash, reader and fixture-tree tests:
    python index_child.py --db DB [--kill-at-row-change N | --kill-at-commit N]
                          [--audit-log FILE] [--embed-delay S] PATH...
Prints the IndexReport as JSON on success; `--count` prints row changes and commits.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for ingest.*


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--target-tokens", type=int, default=48)
    parser.add_argument("--batch-chunks", type=int, default=8)
    parser.add_argument("--kill-at-row-change", type=int)
    parser.add_argument("--kill-at-commit", type=int)
    parser.add_argument("--embed-delay", type=float, default=0.0)
    parser.add_argument("--audit-log")
    parser.add_argument("--count", action="store_true")
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args()

    if args.audit_log:
        opened = open(args.audit_log, "w", buffering=1)  # noqa: SIM115 (lives as long as we do)

        def audit(event: str, event_args: tuple) -> None:
            if event in ("open", "os.scandir", "os.listdir") and event_args:
                target = event_args[0]
                if isinstance(target, str | bytes | os.PathLike):
                    opened.write(f"{event}\t{os.fsdecode(target)}\n")

        sys.addaudithook(audit)

    from gritdesk.ingest.chunk import ChunkingPolicy
    from gritdesk.ingest.indexer import IndexOptions, index_paths
    from gritdesk.store.connection import open_database
    from ingest.fake_embedder import BagOfWordsEmbedder

    class SlowEmbedder(BagOfWordsEmbedder):
        def embed_documents(self, texts):
            time.sleep(args.embed_delay)
            return super().embed_documents(texts)

    db = open_database(args.db)
    changes = {"rows": 0, "commits": 0}

    def on_row_change(*_: object) -> None:
        changes["rows"] += 1
        if args.kill_at_row_change and changes["rows"] >= args.kill_at_row_change:
            os.kill(os.getpid(), signal.SIGKILL)

    def on_commit() -> bool:
        changes["commits"] += 1
        if args.kill_at_commit and changes["commits"] >= args.kill_at_commit:
            os.kill(os.getpid(), signal.SIGKILL)
        return False  # False: let the commit proceed

    db.set_update_hook(on_row_change)
    db.set_commit_hook(on_commit)
    embedder = SlowEmbedder(max_document_tokens=args.max_tokens)
    report = index_paths(
        db,
        embedder,
        args.paths,
        IndexOptions(
            policy=ChunkingPolicy(target_tokens=args.target_tokens, overlap_tokens=8),
            batch_chunks=args.batch_chunks,
        ),
    )
    result = report.as_dict()
    if args.count:
        result["row_changes"] = changes["rows"]
        result["commits"] = changes["commits"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
