"""`gritdesk serve` against the same engine in-process, in one run, alternating rounds:

- /v1/embeddings tokens/s with 8 concurrent clients vs one in-process `Engine.embed` of the
  same texts (target >= 0.9);
- chat time to first token through the server (HTTP, queue, engine thread, SSE) vs
  `Engine.generate` in-process (target: overhead <= 5%).

    .venv/bin/python benchmarks/server_throughput.py --model 1b
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import resolve_model
from gritdesk.runtime.engine import Engine, EngineSettings, GenerationOptions

CLIENTS = 8
VOCAB = "invoice report river mountain code function paper table chair light sound".split()


class Server:
    def __init__(self, model: Path, n_ctx: int, db: Path) -> None:
        cmd = [sys.executable, "-c", "from gritdesk.cli import main; main()", "serve"]
        args = ["--port", "0", "--model", str(model), "--ctx", str(n_ctx), "--db", str(db)]
        self.proc = subprocess.Popen(
            [*cmd, *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if match := re.search(r"on http://([\d.]+):(\d+)/v1", line):
                self.host, self.port = match.group(1), int(match.group(2))
                break
        else:
            raise RuntimeError("gritdesk serve did not start")
        self.model_id = model.name.removesuffix(".gguf")

    def post(self, path: str, body: dict) -> dict:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            data = json.loads(response.read())
            assert response.status == 200, data
            return data
        finally:
            conn.close()

    def time_to_first_token(self, prompt: str, max_tokens: int) -> float:
        body = {
            "model": self.model_id,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "stream": True,
        }
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        try:
            t0 = time.perf_counter()
            conn.request(
                "POST",
                "/v1/chat/completions",
                json.dumps(body),
                {"Content-Type": "application/json"},
            )
            response = conn.getresponse()
            first = None
            for raw in response:
                line = raw.decode()
                if first is None and line.startswith("data: {") and _has_content(line):
                    first = time.perf_counter() - t0
            assert first is not None
            return first
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def _has_content(event_line: str) -> bool:
    choices = json.loads(event_line[6:])["choices"]
    return bool(choices and choices[0]["delta"].get("content"))


def concurrent_embed(server: Server, groups: list[list[str]]) -> tuple[float, list[np.ndarray]]:
    """Wall time for CLIENTS threads posting their texts at the same moment."""
    results: list[np.ndarray | None] = [None] * len(groups)
    start = threading.Barrier(len(groups) + 1)

    def client(i: int) -> None:
        start.wait()
        data = server.post("/v1/embeddings", {"model": server.model_id, "input": groups[i]})
        results[i] = np.array([d["embedding"] for d in data["data"]], dtype=np.float32)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(groups))]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return elapsed, [r for r in results if r is not None]


def in_process_first_token(engine: Engine, prompt: str, max_tokens: int) -> float:
    t0 = time.perf_counter()
    pieces = engine.generate(prompt, GenerationOptions(max_tokens=max_tokens))
    next(iter(pieces))
    first = time.perf_counter() - t0
    for _ in pieces:  # finish like the server does
        pass
    return first


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="1b", help="synthetic shape (tiny, 1b, 7b) or a .gguf path")
    ap.add_argument("--texts-per-client", type=int, default=4)
    ap.add_argument("--words", type=int, default=60, help="words per text")
    ap.add_argument("--prompt-words", type=int, default=100, help="words in the chat prompt")
    ap.add_argument("--rounds", type=int, default=4, help="embedding rounds")
    ap.add_argument("--ttft-rounds", type=int, default=10, help="first-token rounds")
    ap.add_argument("--n-ctx", type=int, default=2048)
    args = ap.parse_args()

    path = resolve_model(args.model)
    rng = np.random.default_rng(0)
    groups = [
        [" ".join(rng.choice(VOCAB, args.words)) for _ in range(args.texts_per_client)]
        for _ in range(CLIENTS)
    ]
    texts = [t for g in groups for t in g]
    prompt = " ".join(rng.choice(VOCAB, args.prompt_words))
    engine = Engine(path, EngineSettings(n_ctx=args.n_ctx))
    n_tokens = sum(engine.count_tokens(t) for t in texts)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("GRITDESK_DATA_DIR", tmp)
        server = Server(path, args.n_ctx, Path(tmp) / "index.db")
        try:
            engine.embed(texts[:2])  # warm up both
            concurrent_embed(server, [g[:1] for g in groups[:2]])
            local_s, remote_s, local_ttft, remote_ttft = [], [], [], []
            for round_no in range(args.rounds):
                # back to back, alternating which goes first, so load from outside hits both
                for side in ("local", "server") if round_no % 2 == 0 else ("server", "local"):
                    if side == "local":
                        t0 = time.perf_counter()
                        ours = engine.embed(texts)
                        local_s.append(time.perf_counter() - t0)
                    else:
                        elapsed, theirs = concurrent_embed(server, groups)
                        remote_s.append(elapsed)
                agree = float(np.min(np.sum(ours * np.concatenate(theirs), axis=1)))
                assert agree > 0.9999, f"server and in-process vectors differ (cosine {agree})"
            for round_no in range(args.ttft_rounds):
                for side in ("local", "server") if round_no % 2 == 0 else ("server", "local"):
                    if side == "local":
                        local_ttft.append(in_process_first_token(engine, prompt, 4))
                    else:
                        remote_ttft.append(server.time_to_first_token(prompt, 4))
        finally:
            server.stop()
            engine.close()
    # each round's pair was measured back to back: the median of the pairs' ratios is what
    # a busy machine disturbs least
    throughput = statistics.median(a / b for a, b in zip(local_s, remote_s, strict=True))
    overhead = statistics.median(b / a - 1 for a, b in zip(local_ttft, remote_ttft, strict=True))
    print(f"model: {path.name}  clients: {CLIENTS}  texts: {len(texts)}  tokens: {n_tokens}")
    print(f"embedding rounds: {args.rounds}, first-token rounds: {args.ttft_rounds} (medians)")
    local_tps = n_tokens / statistics.median(local_s)
    remote_tps = n_tokens / statistics.median(remote_s)
    print(f"in-process Engine.embed:              {local_tps:9.1f} tokens/s")
    print(f"/v1/embeddings, {CLIENTS} clients at once:     {remote_tps:9.1f} tokens/s")
    print(f"throughput ratio server / in-process: {throughput:.3f}  (target >= 0.9)")
    print(f"chat first token, in-process: {statistics.median(local_ttft) * 1000:9.1f} ms")
    print(f"chat first token, server:     {statistics.median(remote_ttft) * 1000:9.1f} ms")
    extra_ms = statistics.median(b - a for a, b in zip(local_ttft, remote_ttft, strict=True)) * 1e3
    print(f"first-token overhead of the server: {overhead * 100:+.1f}%  (target <= 5%)")
    print(f"  in absolute terms: {extra_ms:+.1f} ms (HTTP, queue, engine thread, SSE)")


if __name__ == "__main__":
    main()
