"""What a small model reads of its passages (rag/focus.py), without a model: sentences cut
where sentences end (not after "St." or "Dr."), a plain-text heading kept with the line it
heads, a sentence scored and read under its Markdown heading, and the kind of fact asked
(rag/answer_kind.py) preferred. Keyword scores only (no embedder), so each test shows the
rule it names."""

from __future__ import annotations

from gritdesk.rag.answer_kind import asked_kind, holds_kind
from gritdesk.rag.ask_defaults import FocusPlan
from gritdesk.rag.evidence import passage_parts, passage_sentences
from gritdesk.rag.focus import focus_passages
from gritdesk.store.citations import Citation

MINUTES = """Choir committee meeting, 3 February 2026

1. Spring concert
The spring concert will be held on Saturday 18 April 2026 at St. Columba's Church.
Dr. Ana Ruiz will conduct.

2. Rehearsals
From March, rehearsals move to Wednesday evenings."""

NOTES = """## Orbit 4.1 (released 9 December 2025)

- Changed: attachments may be up to 250 MB.

## Orbit 4.0 (released 22 September 2025)

- Changed: exports are written as CSV."""

RECIPE = """## Ingredients

| ingredient | amount |
|---|---|
| water | 350 g |

## Method

Mix the water with the flour. Shape the loaf."""


def cited(number: int, path: str, text: str, start: int = 1) -> Citation:
    return Citation(number, path, start, start + text.count("\n"), None, "", 0.03, "fresh", text)


def read(question: str, *citations: Citation) -> str:
    plan = FocusPlan()
    return " | ".join(f.text for f in focus_passages(question, [], citations, plan, None) if f.text)


def test_a_sentence_is_not_cut_after_an_abbreviation() -> None:
    texts = [text for text, _ in passage_sentences(cited(1, "/d/minutes.txt", MINUTES))]
    assert any(t.endswith("at St. Columba's Church.") for t in texts), texts
    assert "Dr. Ana Ruiz will conduct." in texts


def test_a_plain_text_heading_joins_the_line_it_heads() -> None:
    sentences = passage_sentences(cited(1, "/d/minutes.txt", MINUTES))
    assert (
        "Spring concert: The spring concert will be held on Saturday 18 April 2026 at "
        "St. Columba's Church.",
        3,
    ) in sentences
    assert "Spring concert" not in [text for text, _ in sentences]  # never alone
    assert read("Where is the spring concert?", cited(1, "/d/minutes.txt", MINUTES)).endswith(
        "St. Columba's Church."
    )


def test_a_sentence_is_read_under_its_markdown_heading() -> None:
    parts = passage_parts(cited(1, "/d/notes.md", NOTES))
    assert [p.heading for p in parts if p.text.startswith("Changed")] == [
        "Orbit 4.1 (released 9 December 2025)",
        "Orbit 4.0 (released 22 September 2025)",
    ]
    text = read("How large may attachments be in Orbit 4.1?", cited(1, "/d/notes.md", NOTES))
    assert text == "Orbit 4.1 (released 9 December 2025)\nChanged: attachments may be up to 250 MB."


def test_a_list_under_a_heading_is_no_lead_and_the_asked_kind_wins() -> None:
    parts = passage_parts(cited(1, "/d/recipe.md", RECIPE))
    assert not any(p.lead for p in parts if "water" in p.text and "350" in p.text)
    # "water" is in both; only the row holds the number "how much" asks for
    text = read("How much water goes into the loaf?", cited(1, "/d/recipe.md", RECIPE))
    assert "350 g" in text, text


def test_the_kind_of_fact_asked() -> None:
    assert asked_kind("How much water goes into the loaf?") == "number"
    assert asked_kind("Who chairs the choir committee?") == "name"
    assert asked_kind("When is the next meeting?") == "date"
    assert asked_kind("Where is the first-aid room?") == "place"
    assert asked_kind("Is the soup vegan?") is None
    question = "Where is class 7B going on its trip?"
    assert not holds_kind("Class teacher, 7B", "place", question)  # only the question's 7B
    assert holds_kind("Class 7B will visit the Heliosphere Museum in Uppsala.", "place", question)
    assert not holds_kind("Makes one loaf.", "number", "How much water goes in?")
    assert holds_kind("Your first day is Wednesday.", "date", "When is my first day?")
