"""How good are the answers? Asks every question of benchmarks/data/answer_questions.jsonl
about the files of benchmarks/data/answer_corpus/ through the app's own answering service
(`AskService`, as `gritdesk ask` and the chat do), per model and technique, in one run.

    .venv/bin/python benchmarks/answer_eval.py --model smollm2-135m --model tiny [--json]
        [--technique default] [--limit N]
    .venv/bin/python benchmarks/answer_eval.py --replay RUN.json   # evidence again, no model
    .venv/bin/python benchmarks/answer_eval.py --decisions-only [--questions FILE]

Each model indexes the corpus into a temporary database (its KV saved, as `gritdesk
index` does), then answers. Follow-up questions ("And in North America?") are asked with
the question before them and its answer as the conversation, as the chat asks them.

Per model and technique:
- facts held: the answer holds every expected fact (any listed spelling) / answerable
- follow-ups held: the same, for the second question of each follow-up pair
- evidence holds fact: the shown evidence sentences hold every expected fact (for yes/no
  questions, the words a supporting sentence holds) / answerable
- wrong facts: answers with a number, date or capitalised name that no passage given to the
  model (nor the question) holds (`Answer.not_found`), and how many such facts in all
- abstained: answers saying the files do not tell ("I can't find...") for the questions the
  files cannot answer (right) and for those they can (wrong)
- empty: answers with no text
- right first source: the first source is the file that holds the fact / answerable
- TTFT: median ms from the question to the first token (retrieval included)

`--decisions-only` generates nothing: it runs the service's `prepare` for every question
(retrieval and the decision to abstain, `ask_service.cannot_answer`, both made before any
token) and counts the abstentions on unanswerable and answerable questions, the right
first sources and whether what the model is given to read (a small model's focused
sentences, else the chunks) holds the expected facts, follow-ups apart; a follow-up is
asked after the question it follows, with "I can't find..." as that turn's answer where it
abstained. Seconds, not minutes: the way to tune the abstention rule and the follow-ups'
retrieval (and held-out files, `--questions`, to check them untuned).

Techniques are a dimension: TECHNIQUES maps a name to a change of the `AskOptions` the
service builds (k, passage trimming, prompt wording, decoding...). Add one there and it is
a row of the table.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from gritdesk.rag.answer import AskOptions, PreparedAnswer
from gritdesk.rag.ask_defaults import CANNOT_ANSWER
from gritdesk.rag.ask_service import Answer, AskService, earlier_questions
from gritdesk.rag.evidence import choose_evidence
from gritdesk.rag.index_service import IndexService
from gritdesk.rag.layouts import CacheMode
from gritdesk.runtime.contrast import Contrast
from gritdesk.runtime.engine import ChatTurn
from gritdesk.session import open_session
from gritdesk.settings import Settings
from gritdesk.store.citations import Citation

DATA = Path(__file__).resolve().parent / "data"
CORPUS = DATA / "answer_corpus"
QUESTIONS = DATA / "answer_questions.jsonl"
HELD_OUT = DATA / "answer_questions_heldout.jsonl"  # written before tuning the abstention rule
SYNTHETIC = ("tiny", "tiny-b", "1b", "7b")  # gritdesk's synthetic shapes (random weights)

Technique = Callable[[AskOptions], AskOptions]
TECHNIQUES: dict[str, Technique] = {
    "default": lambda options: options,  # what every interface does today
    "cache-off": lambda options: replace(options, cache_mode=CacheMode.OFF),  # passages as text
    "k3": lambda options: replace(options, k=3),
    # context-aware decoding (runtime/contrast.py): (1+a) * with passages - a * without;
    # a small model's default is cad-0.5 (rag/ask_defaults.py), `plain` decodes without it
    "plain": lambda options: replace(options, contrast=Contrast(0.0)),
    "cad-0.5": lambda options: replace(options, contrast=Contrast(0.5)),
    "cad-1": lambda options: replace(options, contrast=Contrast(1.0)),
    # ... only among tokens at least 0.1 times as likely as the likeliest with the passages
    "cad-1-plausible": lambda options: replace(options, contrast=Contrast(1.0, 0.1)),
}

ABSTAINED = re.compile(
    r"can'?t find|cannot find|could ?n[o']t find|unable to find|not (?:found )?in (?:your|the) "
    r"(?:files|documents|context|passages|text)|no information|not mentioned|no mention|"
    r"does(?: not|n't) (?:say|mention|specify|provide|state|contain)|(?:don't|do not) know|"
    r"not provided|not specified|not available",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    facts: list[list[str]]  # every fact must be held; each as any of its spellings
    file: str | None  # the file that holds the facts; None: the files cannot answer
    kind: str
    follows: str | None = None  # the question this one follows up
    # what a supporting sentence holds, where it differs from the answer's facts ("yes")
    evidence: list[list[str]] | None = None

    @property
    def answerable(self) -> bool:
        return self.file is not None


def load_questions(path: Path) -> list[Question]:
    return [Question(**json.loads(line)) for line in path.read_text().splitlines() if line]


def holds(text: str, spellings: Sequence[str]) -> bool:
    """Whether `text` holds one of `spellings` as whole words ("12" is not in "12.5")."""
    lowered = " ".join(text.lower().split())
    for spelling in spellings:
        pattern = rf"(?<!\w)(?<!\d[.,:]){re.escape(spelling.lower())}(?!\w|[.,:]\d)"
        if re.search(pattern, lowered):
            return True
    return False


def holds_facts(text: str, facts: Sequence[Sequence[str]]) -> bool:
    return bool(facts) and all(holds(text, spellings) for spellings in facts)


@dataclass
class Outcome:
    """One question's answer, as measured."""

    id: str
    question: str
    answer: str
    answerable: bool
    follow_up: bool
    facts_held: bool
    evidence_holds: bool
    not_found: list[str]
    abstained: bool
    empty: bool
    first_source: str | None
    first_source_right: bool
    ttft_ms: float | None
    evidence: list[str] = field(default_factory=list)
    earlier_questions: list[str] = field(default_factory=list)
    sources: list[dict[str, object]] = field(default_factory=list)  # with their text (--replay)


def measure(q: Question, answer: Answer, earlier: Sequence[str] = ()) -> Outcome:
    t = answer.timings
    ttft = None
    if t.first_token_ms is not None:
        ttft = t.retrieval_ms + t.rerank_ms + t.first_token_ms
    first = Path(answer.sources[0].path).name if answer.sources else None
    evidence = [f"{e.short_location}  {e.text}" for e in answer.evidence]
    return Outcome(
        id=q.id,
        question=q.question,
        answer=answer.text,
        answerable=q.answerable,
        follow_up=q.follows is not None,
        facts_held=holds_facts(answer.text, q.facts),
        evidence_holds=holds_facts(
            " ".join(e.text for e in answer.evidence), q.evidence or q.facts
        ),
        not_found=answer.not_found,
        abstained=bool(ABSTAINED.search(answer.text)),
        empty=not answer.text.strip(),
        first_source=first,
        first_source_right=q.answerable and first == q.file,
        ttft_ms=ttft,
        evidence=evidence,
        earlier_questions=list(earlier),
        sources=[
            {**c.as_json(), "text": c.text, "display_path": c.display_path} for c in answer.sources
        ],
    )


def summary(outcomes: Sequence[Outcome]) -> dict[str, object]:
    answerable = [o for o in outcomes if o.answerable]
    follow_ups = [o for o in answerable if o.follow_up]
    unanswerable = [o for o in outcomes if not o.answerable]
    times = [o.ttft_ms for o in outcomes if o.ttft_ms is not None]

    def count(items: Sequence[Outcome], test: Callable[[Outcome], bool]) -> str:
        return f"{sum(1 for o in items if test(o))}/{len(items)}"

    return {
        "facts held": count(answerable, lambda o: o.facts_held),
        "follow-ups held": count(follow_ups, lambda o: o.facts_held),
        "evidence holds fact": count(answerable, lambda o: o.evidence_holds),
        "wrong facts (answers)": count(outcomes, lambda o: bool(o.not_found)),
        "wrong facts (all)": sum(len(o.not_found) for o in outcomes),
        "abstained, not in files": count(unanswerable, lambda o: o.abstained),
        "abstained, answerable": count(answerable, lambda o: o.abstained),
        "empty": count(outcomes, lambda o: o.empty),
        "right first source": count(answerable, lambda o: o.first_source_right),
        "median TTFT ms": round(statistics.median(times)) if times else None,
    }


def model_settings(model: str, db: Path) -> Settings:
    """A synthetic shape by name, else an installed model's name or a GGUF path."""
    if model in SYNTHETIC:
        from gritdesk.models.synthetic import synthetic_model_path
        from gritdesk.runtime.quantize import quantize_model

        return Settings(db=db, model=str(synthetic_model_path(model, quantize=quantize_model)))
    return Settings(db=db, model=model)


@contextmanager
def indexed(model: str, corpus: Path) -> Iterator[AskService]:
    """The answering service of `model` over a temporary index of `corpus`."""
    with tempfile.TemporaryDirectory(prefix="gritdesk-answer-eval-") as tmp:
        settings = model_settings(model, Path(tmp) / "index.db")
        session = open_session(settings)
        try:
            assert session.engine is not None
            t0 = time.perf_counter()
            IndexService.of_session(session).run([corpus])
            print(f"{model}: indexed in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            yield AskService(session)
        finally:
            shutil.rmtree(session.kv_store.directory, ignore_errors=True)  # this index's KV
            session.close()


def conversation_before(
    q: Question, by_id: dict[str, Question], said: dict[str, str]
) -> list[ChatTurn]:
    """The conversation a follow-up continues: the question it follows and what was said to
    it (`said`, by question id); none for a question that follows nothing asked yet."""
    if q.follows is None or q.follows not in said:
        return []
    return [ChatTurn(by_id[q.follows].question, said[q.follows])]


def run_model(
    model: str,
    techniques: dict[str, Technique],
    questions: Sequence[Question],
    corpus: Path,
) -> list[dict[str, object]]:
    """Index the corpus with `model`, then ask every question once per technique."""
    runs: list[dict[str, object]] = []
    with indexed(model, corpus) as service:
        by_id = {q.id: q for q in questions}
        for name, technique in techniques.items():
            said: dict[str, str] = {}
            outcomes = []
            for q in questions:
                history = conversation_before(q, by_id, said)
                options = technique(service.options())
                answer = service.ask(q.question, options, history)
                said[q.id] = answer.text
                outcomes.append(measure(q, answer, earlier_questions(history)))
                print(".", end="", file=sys.stderr, flush=True)
            print(f" {model} / {name}", file=sys.stderr)
            runs.append(
                {
                    "model": model,
                    "technique": name,
                    "summary": summary(outcomes),
                    "questions": [asdict(o) for o in outcomes],
                }
            )
    return runs


@dataclass
class Decision:
    """One question's retrieval and abstention, before anything is generated."""

    id: str
    question: str
    answerable: bool
    follow_up: bool
    cannot_answer: str  # why it abstains; "" when it answers
    first_source: str | None
    first_source_right: bool
    reads_fact: bool  # what the model is given to read holds every expected fact
    sources: list[str] = field(default_factory=list)  # file:lines, in rank order
    earlier_questions: list[str] = field(default_factory=list)


def decide(q: Question, prepared: PreparedAnswer) -> Decision:
    hits = [source.hit for source in prepared.sources]
    first = Path(hits[0].path).name if hits else None
    # the focused sentences where the model reads those (a small model), else the chunks
    read = " ".join(s.hit.text if s.read is None else s.read for s in prepared.sources)
    return Decision(
        id=q.id,
        question=q.question,
        answerable=q.answerable,
        follow_up=q.follows is not None,
        cannot_answer=prepared.cannot_answer,
        first_source=first,
        first_source_right=q.answerable and first == q.file,
        reads_fact=q.answerable and holds_facts(read, q.evidence or q.facts),
        sources=[Path(h.path).name + h.location[len(h.path) :] for h in hits],
        earlier_questions=list(prepared.earlier_questions),
    )


def decision_summary(decisions: Sequence[Decision]) -> dict[str, object]:
    answerable = [d for d in decisions if d.answerable]
    follow_ups = [d for d in answerable if d.follow_up]
    unanswerable = [d for d in decisions if not d.answerable]

    def count(items: Sequence[Decision], test: Callable[[Decision], bool]) -> str:
        return f"{sum(1 for d in items if test(d))}/{len(items)}"

    return {
        "abstained, not in files": count(unanswerable, lambda d: bool(d.cannot_answer)),
        "abstained, answerable": count(answerable, lambda d: bool(d.cannot_answer)),
        "right first source": count(answerable, lambda d: d.first_source_right),
        "reads the fact": count(answerable, lambda d: d.reads_fact),
        "follow-ups abstained": count(follow_ups, lambda d: bool(d.cannot_answer)),
        "follow-ups right first source": count(follow_ups, lambda d: d.first_source_right),
        "follow-ups read the fact": count(follow_ups, lambda d: d.reads_fact),
    }


def run_decisions(
    model: str, questions: Sequence[Question], corpus: Path
) -> list[dict[str, object]]:
    """Index the corpus with `model`, then prepare every question (no generation): what
    each retrieves and whether it abstains. A follow-up's conversation is the question it
    follows, answered "I can't find..." where that one abstained (as the chat would)."""
    with indexed(model, corpus) as service:
        by_id = {q.id: q for q in questions}
        said: dict[str, str] = {}
        decisions = []
        for q in questions:
            history = conversation_before(q, by_id, said)
            prepared = service.prepare(q.question, service.options(), history)
            said[q.id] = CANNOT_ANSWER if prepared.cannot_answer else ""
            decisions.append(decide(q, prepared))
    return [
        {
            "model": model,
            "technique": "decisions only",
            "summary": decision_summary(decisions),
            "questions": [asdict(d) for d in decisions],
        }
    ]


def wrong_decisions(run: dict[str, object]) -> list[str]:
    """One line per wrong decision: an unanswerable question answered, an answerable one
    not, a first source from another file, nothing read that holds the fact."""
    lines = []
    for d in run["questions"]:  # type: ignore[union-attr]
        if not d["answerable"] and not d["cannot_answer"]:
            lines.append(f"answers  {d['id']}  {d['question']}  [{d['first_source']}]")
        elif d["answerable"] and d["cannot_answer"]:
            lines.append(f"abstains {d['id']}  {d['question']}  ({d['cannot_answer']})")
        elif d["answerable"] and not d["first_source_right"]:
            lines.append(f"source   {d['id']}  {d['question']}  [{d['first_source']}]")
        elif d["answerable"] and not d["reads_fact"]:
            lines.append(f"unread   {d['id']}  {d['question']}  [{', '.join(d['sources'])}]")
    return lines


def replay(runs: list[dict[str, object]], questions: Sequence[Question]) -> None:
    """Choose the evidence again for saved answers and their saved sources (no model), so a
    change to rag/evidence.py is measured in seconds; the other measures stay as run."""
    by_id = {q.id: q for q in questions}
    for run in runs:
        outcomes = []
        for saved in run["questions"]:  # type: ignore[union-attr]
            outcome = Outcome(**saved)
            q = by_id[outcome.id]
            sources = [
                Citation(
                    number=int(c["n"]),
                    path=str(c["path"]),
                    start_line=c["start_line"],  # type: ignore[arg-type]
                    end_line=c["end_line"],  # type: ignore[arg-type]
                    page=c["page"],  # type: ignore[arg-type]
                    heading_path=str(c["heading_path"]),
                    score=float(c["score"]),  # type: ignore[arg-type]
                    text=str(c["text"]),
                    display_path=str(c["display_path"]),
                    locator=c["locator"],  # type: ignore[arg-type]
                )
                for c in outcome.sources
            ]
            chosen = choose_evidence(q.question, outcome.answer, sources, outcome.earlier_questions)
            outcome.evidence = [f"{e.short_location}  {e.text}" for e in chosen]
            outcome.evidence_holds = holds_facts(
                " ".join(e.text for e in chosen), q.evidence or q.facts
            )
            outcomes.append(outcome)
        run["summary"] = summary(outcomes)
        run["questions"] = [asdict(o) for o in outcomes]


def markdown_table(runs: Sequence[dict[str, object]]) -> str:
    columns = list(runs[0]["summary"])  # type: ignore[arg-type]
    lines = [
        "| model | technique | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for run in runs:
        values = run["summary"]
        assert isinstance(values, dict)
        cells = [str(values[c]) for c in columns]
        lines.append(f"| {run['model']} | {run['technique']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        help="an installed model's name, a GGUF path or a synthetic shape (repeatable; "
        "default smollm2-135m and tiny)",
    )
    parser.add_argument(
        "--technique",
        action="append",
        choices=sorted(TECHNIQUES),
        help="repeatable; default: every technique",
    )
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--limit", type=int, help="only the first N questions (a quick look)")
    parser.add_argument("--json", action="store_true", help="every answer and measure as JSON")
    parser.add_argument(
        "--decisions-only",
        action="store_true",
        help="generate nothing: only each question's retrieval and whether it abstains",
    )
    parser.add_argument(
        "--replay",
        type=Path,
        help="a saved --json run: choose its evidence again with the current code, no model",
    )
    args = parser.parse_args()

    questions = load_questions(args.questions)[: args.limit]
    techniques = {name: TECHNIQUES[name] for name in (args.technique or TECHNIQUES)}
    runs: list[dict[str, object]] = []
    if args.replay:
        runs = json.loads(args.replay.read_text())["runs"]
        replay(runs, questions)
    for model in [] if args.replay else args.model or ["smollm2-135m", "tiny"]:
        if args.decisions_only:
            runs.extend(run_decisions(model, questions, args.corpus))
        else:
            runs.extend(run_model(model, techniques, questions, args.corpus))
    if args.json:
        json.dump({"runs": runs}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(
            f"{len(questions)} questions ({sum(q.answerable for q in questions)} answerable, "
            f"{sum(q.follows is not None for q in questions)} follow-ups) about "
            f"{len(list(args.corpus.iterdir()))} files"
        )
        print(markdown_table(runs))
        for run in runs if args.decisions_only else []:
            lines = wrong_decisions(run)
            if lines:
                print(f"\n{run['model']}, wrong decisions:\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
