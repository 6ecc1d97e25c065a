"""Does gritdesk find the passage? Retrieval on real documentation nobody here wrote.

The corpus is a Debian documentation package (git-doc: Git's HTML man pages and guides,
a subset chosen by the rule in the question file), indexed with gritdesk's real pipeline
(`IndexService`, the settings' defaults, a fresh database per model). The questions
(benchmarks/data/retrieval_git-doc.toml) are asked as a user would, mostly in other
words than the page's, each with the file(s) and section(s) that answer it.

For each model it ranks chunks five ways and scores them at FILE level on the ranked
chunks, as `gritdesk search -k N` lists them (a hit: a chunk of an answering file among
the first N), and at section level (the chunk's heading path holds an answering section):

  keyword    gritdesk's FTS5 ranking alone (rag/retrieve.py keyword_search)
  vector     the query embedding's nearest chunks alone
  hybrid     what `gritdesk search` and `ask` use (both fused), the app's default
  reranked   hybrid's top 10 reordered by the chat model's yes/no relevance (`ask --rerank`)
  hybrid w=  (with --fusion-weights) hybrid with the vector ranking weighted by w

and, once per run, a baseline a user could build in 20 lines: plain SQLite FTS5 BM25 (no
stemming, no stop words, OR of the query's words) over each page's paragraphs packed
into ~1,200-character passages (the page text as gritdesk's HTML parser reads it).
MRR is the mean of 1/rank of the first hit within the top 10 (0 when none).

    .venv/bin/python benchmarks/retrieval_eval.py --model tiny --model smollm2-135m
    .venv/bin/python benchmarks/retrieval_eval.py --model minilm-l6-v2 --chat-model smollm2-135m

--model takes an installed or catalog model name (`gritdesk models pull NAME` first), a
GGUF path, or a synthetic shape (`tiny`); --recipe and --chat-model after it apply to that
model. The script installs nothing: without the package it stops and says how to get it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import apsw

HERE = Path(__file__).resolve().parent
QUESTIONS = HERE / "data" / "retrieval_git-doc.toml"
TOP = (1, 3, 10)
PLAIN_PASSAGE_CHARS = 1200
POOL = 50  # candidates each ranking contributes, as `search` takes for k <= 25
RERANK_CANDIDATES = 10  # as `ask --rerank` (AskOptions.rerank_candidates)


# --- the corpus and the questions --------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    file: str
    sections: tuple[str, ...]


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    text: str
    answers: tuple[Answer, ...]

    def file_hit(self, rel_path: str, heading_path: str = "") -> bool:
        return any(Path(rel_path).name == a.file for a in self.answers)

    def section_hit(self, rel_path: str, heading_path: str) -> bool:
        headings = {h.strip().casefold() for h in heading_path.split(" > ")}
        return any(
            Path(rel_path).name == a.file and headings & {s.casefold() for s in a.sections}
            for a in self.answers
        )


@dataclass(frozen=True)
class Corpus:
    package: str
    version: str
    path: Path
    files: tuple[Path, ...]
    rule: str

    def as_dict(self) -> dict[str, object]:
        return {
            "package": self.package,
            "version": self.version,
            "path": str(self.path),
            "files": [f.name for f in self.files],
            "rule": self.rule,
        }


def load_questions(path: Path) -> tuple[dict, list[Question]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    questions = [
        Question(
            q["id"],
            q["kind"],
            q["question"],
            tuple(Answer(a["file"], tuple(a["sections"])) for a in q["answers"]),
        )
        for q in data["questions"]
    ]
    return data["corpus"], questions


def installed_version(package: str) -> str | None:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status} ${Version}", package],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    except FileNotFoundError:
        return None
    status, _, version = out.stdout.rpartition(" ")
    return version if out.returncode == 0 and "install ok installed" in status else None


def page_text_chars(path: Path) -> int:
    from gritdesk.ingest.parse import parse_html

    return sum(len(b.text) + 1 for b in parse_html(path.read_text(errors="replace")).blocks)


def select_corpus(spec: dict) -> Corpus:
    """The pages the rule in the question file names (see its [corpus] comment)."""
    package, root = spec["package"], Path(spec["path"])
    version = installed_version(package)
    if version is None or not root.is_dir():
        sys.exit(
            f"retrieval_eval: the corpus is the Debian package {package!r} ({root}), which is "
            f"not installed. Install it with:\n    {spec['install']}"
        )
    guides = re.findall(r"linkgit:([\w.-]+)\[", (root / spec["guides_list"]).read_text())
    names = [f"git-{c}" for c in spec["common_commands"]] + guides
    pages = [root / f"{name}.html" for name in names]
    chosen = [p for p in pages if p.exists() and page_text_chars(p) <= spec["max_page_chars"]]
    rule = (
        f"HTML pages of `git help`'s common commands and `git help -g`'s guides "
        f"({spec['guides_list']}) with at most {spec['max_page_chars']:,} characters of text"
    )
    return Corpus(package, version, root, tuple(sorted(chosen)), rule)


def check_questions(corpus: Corpus, questions: Sequence[Question]) -> list[str]:
    """Problems with the question file: answers naming a page or section that is not there."""
    from gritdesk.ingest.parse import parse_html

    headings: dict[str, set[str]] = {}
    for page in corpus.files:
        blocks = parse_html(page.read_text(errors="replace")).blocks
        headings[page.name] = {h.casefold() for b in blocks for h in b.heading_path}
    problems = []
    for q in questions:
        for a in q.answers:
            if a.file not in headings:
                problems.append(f"{q.id}: {a.file} is not in the corpus")
                continue
            problems += [
                f"{q.id}: {a.file} has no section {s!r}"
                for s in a.sections
                if s.casefold() not in headings[a.file]
            ]
    return problems


# --- scoring -------------------------------------------------------------------------------

Ranked = list[tuple[str, str]]  # (rel_path, heading_path) of each ranked chunk, best first


def first_rank(ranked: Ranked, hit: Callable[[str, str], bool]) -> int | None:
    return next((i for i, (path, heads) in enumerate(ranked, 1) if hit(path, heads)), None)


@dataclass
class Row:
    setup: str
    ranking: str
    file_ranks: list[int | None] = field(default_factory=list)
    section_ranks: list[int | None] = field(default_factory=list)
    has_sections: bool = True

    def add(self, question: Question, ranked: Ranked) -> None:
        self.file_ranks.append(first_rank(ranked[: TOP[-1]], question.file_hit))
        self.section_ranks.append(first_rank(ranked[: TOP[-1]], question.section_hit))

    @staticmethod
    def hits(ranks: list[int | None], k: int) -> int:
        return sum(1 for r in ranks if r is not None and r <= k)

    @staticmethod
    def mrr(ranks: list[int | None]) -> float:
        return sum(1 / r for r in ranks if r) / max(len(ranks), 1)

    def as_dict(self) -> dict[str, object]:
        return {
            "setup": self.setup,
            "ranking": self.ranking,
            **{f"hit@{k}": self.hits(self.file_ranks, k) for k in TOP},
            "mrr": round(self.mrr(self.file_ranks), 4),
            **{
                f"section_hit@{k}": self.hits(self.section_ranks, k) if self.has_sections else None
                for k in TOP
            },
            "section_mrr": round(self.mrr(self.section_ranks), 4) if self.has_sections else None,
            "file_ranks": self.file_ranks,
            "section_ranks": self.section_ranks if self.has_sections else None,
        }


def markdown_table(rows: Sequence[Row], n: int) -> str:
    head = (
        "| setup | ranking | hit@1 | hit@3 | hit@10 | MRR | section hit@1 | section hit@3 "
        "| section MRR |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for row in rows:
        f, s = row.file_ranks, row.section_ranks
        sections = (
            f"{row.hits(s, 1)} | {row.hits(s, 3)} | {row.mrr(s):.3f}"
            if row.has_sections
            else "- | - | -"
        )
        lines.append(
            f"| {row.setup} | {row.ranking} | {row.hits(f, 1)} | {row.hits(f, 3)} "
            f"| {row.hits(f, 10)} | {row.mrr(f):.3f} | {sections} |"
        )
    return "\n".join(lines) + f"\n\n(hits are counts of {n} questions)"


# --- the plain BM25 baseline ----------------------------------------------------------------


def plain_passages(text_blocks: Sequence[str], limit: int = PLAIN_PASSAGE_CHARS) -> list[str]:
    """Paragraphs packed greedily into passages of at most `limit` characters."""
    passages, current = [], ""
    for block in (b.strip() for b in text_blocks):
        if not block:
            continue
        if current and len(current) + 1 + len(block) > limit:
            passages.append(current)
            current = ""
        current = f"{current}\n{block}" if current else block
    return passages + ([current] if current else [])


def plain_bm25(corpus: Corpus, questions: Sequence[Question]) -> Row:
    from gritdesk.ingest.parse import parse_html

    db = apsw.Connection(":memory:")
    db.execute("CREATE VIRTUAL TABLE passages USING fts5(path UNINDEXED, text)")
    for page in corpus.files:
        blocks = [b.text for b in parse_html(page.read_text(errors="replace")).blocks]
        for passage in plain_passages(blocks):
            db.execute("INSERT INTO passages VALUES (?, ?)", (page.name, passage))
    row = Row("(any model)", f"plain FTS5 BM25, {PLAIN_PASSAGE_CHARS:,}-char passages")
    row.has_sections = False  # its passages span sections
    for q in questions:
        words = dict.fromkeys(re.findall(r"\w+", q.text.lower()))
        match = " OR ".join(f'"{w}"' for w in words)
        ranked = db.execute(
            "SELECT path FROM passages WHERE passages MATCH ? ORDER BY rank LIMIT ?",
            (match, POOL),
        ).fetchall()
        row.add(q, [(path, "") for (path,) in ranked])
    return row


# --- one model through gritdesk -------------------------------------------------------------


@dataclass
class Setup:
    model: str
    recipe: str | None = None
    chat_model: str | None = None
    embedder: str = "auto"  # as `--embedder`: "self" keeps a chat model's own vectors

    @property
    def label(self) -> str:
        label = self.model + (f" ({self.recipe})" if self.recipe else "")
        if self.embedder == "self":
            label += " (own vectors)"
        elif self.embedder != "auto":
            label += f" (embedder {self.embedder})"
        return label + (f" + chat {self.chat_model}" if self.chat_model else "")


def model_reference(name: str) -> str:
    """A synthetic shape (`tiny`) becomes its cached GGUF; anything else gritdesk resolves."""
    from gritdesk.models.synthetic import load_shapes

    if name in load_shapes() and not Path(name).exists():
        sys.path.insert(0, str(HERE))
        from _models import resolve_model

        return str(resolve_model(name))
    return name


@dataclass
class SetupResult:
    rows: list[Row]
    facts: dict[str, object]


class RerankScores:
    """The chat model's relevance score of each (question, chunk) pair, as `rerank_hits`
    computes it, kept in a JSON-lines file when --keep names a folder: a second run over
    the same index (another keyword setting, say) scores only pairs it has not seen."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.scores: dict[str, float] = {}
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                key, score = json.loads(line)
                self.scores[key] = score
        self.computed = 0

    def rerank(self, engine, question: str, hits: Sequence) -> list:
        """`hits` ordered as rag/rerank.py `rerank_hits` orders them (stable, best first)."""
        from gritdesk.rag.rerank import relevance_score

        scored = []
        for hit in hits:
            model = f"{engine.fingerprint}|{engine.recipe.name}|{engine.n_ctx}"
            key = f"{model}|{hit.text_hash}|{question}"
            if key not in self.scores:
                self.scores[key] = relevance_score(engine, question, hit.text)
                self.computed += 1
                if self.path is not None:
                    with self.path.open("a", encoding="utf-8") as out:
                        out.write(json.dumps([key, self.scores[key]]) + "\n")
            scored.append((hit, self.scores[key]))
        return sorted(scored, key=lambda pair: -pair[1])


def evaluate_setup(
    setup: Setup,
    corpus_dir: Path,
    db_path: Path,
    questions: Sequence[Question],
    *,
    rerank: int,
    fusion_weights: Sequence[float],
    rerank_scores: RerankScores,
) -> SetupResult:
    from gritdesk.rag import retrieve
    from gritdesk.rag.fusion import files_first, fuse_rankings
    from gritdesk.rag.index_service import IndexService
    from gritdesk.rag.retrieve import keyword_search, retrieval_instruction, search
    from gritdesk.session import open_session
    from gritdesk.settings import Settings
    from gritdesk.store.connection import read_transaction
    from gritdesk.store.sources import list_roots, remove_root
    from gritdesk.store.vector_worth import stored_vector_worth
    from gritdesk.store.vectors import default_candidates, nearest_chunks

    settings = Settings(
        db=db_path,
        model=model_reference(setup.model),
        recipe=setup.recipe,
        chat_model=model_reference(setup.chat_model) if setup.chat_model else None,
        embedder=setup.embedder,
    )
    session = open_session(settings)
    try:
        engine = session.engine
        assert engine is not None
        # KV saving is off: it changes no vector, and SmolLM2's KV of the corpus is ~2 GB
        service = IndexService.of_session(session, save_kv=False)
        report = service.run([corpus_dir])
        db = session.db
        for root in list_roots(db):  # a --keep folder copied or moved: only this copy counts
            if Path(root.path) != corpus_dir.resolve():
                remove_root(db, root.id)
        chunk_place = {
            chunk_id: (rel_path, heading_path)
            for chunk_id, rel_path, heading_path in db.execute(
                "SELECT c.id, s.rel_path, c.heading_path FROM chunks AS c "
                "JOIN sources AS s ON s.id = c.source_id"
            )
        }
        label = setup.label
        default_weights = retrieve.fusion_weights(engine, db)  # as `search` fuses when not told
        worth = stored_vector_worth(db)
        hybrid = f"hybrid (the app's, weights {'/'.join(f'{w:g}' for w in default_weights)})"
        before = "hybrid, chunks by fused score (before files first)"
        rows = {
            name: Row(label, name)
            for name in ["keyword", "vector", hybrid, before]
            + [f"hybrid, weights 1/{w:g}" for w in fusion_weights]
            + (["reranked (hybrid's top 10)" if rerank == 10 else f"reranked (top {rerank})"]
               if rerank else [])
        }  # fmt: skip
        reranked = next((name for name in rows if name.startswith("reranked")), None)
        reranker = session.chat_engine or (engine if engine.recipe.generates else None)
        if reranker is None and reranked is not None:
            rows.pop(reranked)
            reranked = None
        instruction = retrieval_instruction(engine)
        file_of = {chunk_id: rel_path for chunk_id, (rel_path, _) in chunk_place.items()}
        t0 = time.perf_counter()
        rerank_s = 0.0
        for q in questions:
            with read_transaction(db):
                keyword = keyword_search(db, q.text, POOL)
                query_vector = engine.embed_queries([q.text], instruction)[0]
                vector = [
                    chunk_id
                    for chunk_id, _ in nearest_chunks(
                        db, query_vector, POOL, candidates=max(default_candidates(db), POOL)
                    )
                ]
            # each ranking alone is listed as `search` lists chunks: one per file first
            for name, ranking in (("keyword", keyword), ("vector", vector)):
                listed = [c for c, _ in files_first([ranking], file_of)]
                rows[name].add(q, [chunk_place[c] for c in listed])
            chunk_order = fuse_rankings([keyword, vector], weights=default_weights)
            rows[before].add(q, [chunk_place[c] for c, _ in chunk_order])
            hits = search(db, engine, q.text, max(TOP[-1], rerank))
            rows[hybrid].add(q, [chunk_place[h.chunk_id] for h in hits])
            for w in fusion_weights:
                weighted = search(db, engine, q.text, TOP[-1], weights=(1.0, w))
                rows[f"hybrid, weights 1/{w:g}"].add(q, [chunk_place[h.chunk_id] for h in weighted])
            if reranked is not None:
                t1 = time.perf_counter()
                ranked = rerank_scores.rerank(reranker, q.text, hits[:rerank])
                rerank_s += time.perf_counter() - t1
                rows[reranked].add(q, [chunk_place[h.chunk_id] for h, _ in ranked])
        (n_chunks,) = db.execute("SELECT count(*) FROM chunks").fetchone()
        (avg_tokens,) = db.execute("SELECT avg(token_count) FROM chunks").fetchone()
        facts = {
            "setup": label,
            "model_file": str(engine.path),
            "recipe": engine.recipe.name,
            "chat_model_file": str(session.chat_engine.path) if session.chat_engine else None,
            "chunks": n_chunks,
            "mean_chunk_tokens": round(avg_tokens or 0, 1),
            "tokens_embedded": report.tokens_embedded,
            "index_s": round(report.elapsed_s, 1),
            "embed_tokens_per_s": round(report.tokens_embedded / max(report.elapsed_s, 1e-9), 1),
            "questions_s": round(time.perf_counter() - t0 - rerank_s, 1),
            "rerank_s": round(rerank_s, 1),
            "rerank_pairs_scored": rerank_scores.computed,
            "vector_worth": None
            if worth is None
            else {"skill": worth.skill, "weight": worth.weight, "probes": worth.probes},
        }
        rerank_scores.computed = 0
        return SetupResult(list(rows.values()), facts)
    finally:
        kv_folder = session.kv_store.directory  # made for this index; nothing was saved
        session.close()
        if kv_folder.is_dir() and not any(kv_folder.iterdir()):
            kv_folder.rmdir()


# --- the command line ----------------------------------------------------------------------


class _SetupAction(argparse.Action):
    """--model starts a setup; --recipe and --chat-model amend the one before them."""

    def __call__(self, parser, namespace, value, option_string=None) -> None:
        setups: list[Setup] = getattr(namespace, "setups", None) or []
        if self.dest == "model":
            setups.append(Setup(value))
        elif not setups:
            parser.error(f"{option_string} applies to the --model before it; give --model first")
        elif self.dest == "recipe":
            setups[-1].recipe = value
        elif self.dest == "embedder":
            setups[-1].embedder = value
        else:
            setups[-1].chat_model = value
        namespace.setups = setups


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Example: retrieval_eval.py --model tiny --model smollm2-135m --recipe smollm2",
    )
    parser.add_argument(
        "--model", dest="model", action=_SetupAction,
        help="a model to index and search with (repeatable): installed/catalog name, GGUF "
        "path or synthetic shape (default: smollm2-135m)",
    )  # fmt: skip
    parser.add_argument(
        "--recipe", dest="recipe", action=_SetupAction,
        help="the recipe of the --model before it (default: the model's own)",
    )  # fmt: skip
    parser.add_argument(
        "--chat-model", dest="chat_model", action=_SetupAction,
        help="pair mode for the --model before it: this model reranks (the embedder may not)",
    )  # fmt: skip
    parser.add_argument(
        "--embedder", dest="embedder", action=_SetupAction,
        help="the embedder of the --model before it, as `gritdesk --embedder`: auto (the "
        "default: a chat model not trained to embed is paired with MiniLM), self, or a model",
    )  # fmt: skip
    parser.add_argument(
        "--questions", type=Path, default=QUESTIONS, help=f"default: {QUESTIONS.name}"
    )
    parser.add_argument(
        "--rerank", type=int, default=RERANK_CANDIDATES, metavar="N",
        help=f"rerank hybrid's top N with the chat model, 0: no reranked row "
        f"(default: {RERANK_CANDIDATES}, as `ask --rerank`)",
    )  # fmt: skip
    parser.add_argument(
        "--fusion-weights", type=float, nargs="*", default=[], metavar="W",
        help="also rank hybrid with RRF weights 1/W (keyword/vector), each W a row",
    )  # fmt: skip
    parser.add_argument(
        "--keep", type=Path, metavar="DIR",
        help="keep the corpus copy, the index databases and the rerank scores in DIR, and "
        "reuse them when there (default: a temporary folder)",
    )  # fmt: skip
    parser.add_argument(
        "--json", action="store_true",
        help="print JSON (every row, per-question ranks, timings) on stdout; the table "
        "goes to stderr",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.setups = getattr(args, "setups", None) or [Setup("smollm2-135m")]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    spec, questions = load_questions(args.questions)
    corpus = select_corpus(spec)
    problems = check_questions(corpus, questions)
    if problems:
        sys.exit("retrieval_eval: the question file does not match the corpus:\n  "
                 + "\n  ".join(problems))  # fmt: skip
    say = print if not args.json else (lambda *a: print(*a, file=sys.stderr))
    load_before = os.getloadavg()
    started = time.perf_counter()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="retrieval_eval-"))
    try:
        corpus_dir = work / corpus.package
        corpus_dir.mkdir(parents=True, exist_ok=True)
        for page in corpus.files:
            shutil.copy2(page, corpus_dir / page.name)
        rows = [plain_bm25(corpus, questions)]
        facts = []
        rerank_scores = RerankScores(work / "rerank-scores.jsonl" if args.keep else None)
        for i, setup in enumerate(args.setups):
            print(f"retrieval_eval: indexing with {setup.label}...", file=sys.stderr)
            db_path = work / f"index-{i}-{re.sub(r'[^A-Za-z0-9_.-]', '_', setup.label)}.db"
            result = evaluate_setup(
                setup, corpus_dir, db_path, questions,
                rerank=args.rerank, fusion_weights=args.fusion_weights,
                rerank_scores=rerank_scores,
            )  # fmt: skip
            rows += result.rows
            facts.append(result.facts)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    command = "benchmarks/retrieval_eval.py " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )
    say(
        f"Corpus: {corpus.package} {corpus.version} ({corpus.path}), {len(corpus.files)} pages: "
        f"{corpus.rule}. {len(questions)} questions "
        f"({sum(q.kind == 'term' for q in questions)} name an exact term)."
    )
    say()
    say(markdown_table(rows, len(questions)))
    say()
    for f in facts:
        say(
            f"{f['setup']}: recipe {f['recipe']}, {f['chunks']} chunks of {f['mean_chunk_tokens']} "
            f"tokens on average; indexed {f['tokens_embedded']} tokens in {f['index_s']} s "
            f"({f['embed_tokens_per_s']} tokens/s); questions {f['questions_s']} s, "
            f"rerank {f['rerank_s']} s ({f['rerank_pairs_scored']} pairs scored in this run); "
            f"vector ranking's measured worth: {f['vector_worth'] or 'not measured'}"
        )
    say(
        f"Load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after, on "
        f"{os.cpu_count()} CPUs; {time.perf_counter() - started:.0f} s in all."
    )
    if args.json:
        json.dump(
            {
                "command": command,
                "corpus": corpus.as_dict(),
                "questions": [q.id for q in questions],
                "rows": [r.as_dict() for r in rows],
                "setups": facts,
                "load_average": {"before": load_before, "after": load_after},
            },
            sys.stdout,
            indent=1,
        )
        sys.stdout.write("\n")


if __name__ == "__main__":
    main()
