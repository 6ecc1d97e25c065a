"""Search an index in a loop until a stop file appears; print what went wrong, as JSON.

python search_child.py --db DB --stop FILE
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for ingest.*


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--stop", required=True)
    args = parser.parse_args()

    from gritdesk.rag.retrieve import search
    from gritdesk.store.connection import open_database
    from ingest.fake_embedder import BagOfWordsEmbedder

    embedder = BagOfWordsEmbedder()
    queries = ["river mountain", "copper harbor lantern", "quartz", "violet orchard thunder"]
    db = open_database(args.db)
    searches, hits, errors, slowest = 0, 0, [], 0.0
    stop = Path(args.stop)
    while not stop.exists():
        started = time.perf_counter()
        try:
            results = search(db, embedder, queries[searches % len(queries)], k=5)
            hits += len(results)
            for hit in results:
                assert hit.text and hit.path, hit
        except Exception:
            errors.append(traceback.format_exc(limit=3))
        slowest = max(slowest, time.perf_counter() - started)
        searches += 1
    print(
        json.dumps({"searches": searches, "hits": hits, "errors": errors[:5], "slowest": slowest})
    )


if __name__ == "__main__":
    main()
