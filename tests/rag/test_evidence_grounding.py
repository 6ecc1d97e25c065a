"""What an answer is checked against, without a model: the evidence sentences chosen from its
sources (with file:line) and the facts of the answer that no given passage holds."""

from __future__ import annotations

from gritdesk.rag.evidence import choose_evidence, passage_sentences
from gritdesk.rag.grounding import answer_facts, ungrounded_facts
from gritdesk.store.citations import Citation

POLICY = """## Expenses

Hotel costs are refunded up to 140 euros a night in Europe and 210 dollars a night in
North America. Keep every receipt: claims without receipts are not paid.

Meals are covered by a daily allowance of 45 euros; alcohol is never refunded."""

MEETING = """Facilities committee meeting, 12 March 2026
1. Parking. The new bicycle shelter opens on 7 April. It holds 48 bicycles.
2. Fire drill. The next fire drill is on 23 April at 10:00."""


def cited(number: int, path: str, text: str, start: int | None, **kw) -> Citation:
    end = None if start is None else start + text.count("\n")
    return Citation(number, path, start, end, None, "", 0.03, "cached", text, **kw)


def test_sentences_keep_their_file_line_and_wrapped_lines_join() -> None:
    sentences = passage_sentences(cited(1, "/d/travel.md", POLICY, 8))
    assert sentences == [
        (
            "Hotel costs are refunded up to 140 euros a night in Europe and 210 dollars a night "
            "in North America.",
            10,
        ),
        ("Keep every receipt: claims without receipts are not paid.", 10),
        ("Meals are covered by a daily allowance of 45 euros; alcohol is never refunded.", 13),
    ]  # the title line without a figure is not a sentence to show
    labelled = passage_sentences(cited(2, "/d/meeting.txt", MEETING, 1))
    assert ("Fire drill. The next fire drill is on 23 April at 10:00.", 3) in labelled


def test_a_table_passage_keeps_its_cells_as_the_location() -> None:
    rows = "city,manager\nTallinn,Kaspar Tamm\nOsaka,Haruto Sato"
    table = cited(1, "/d/offices.csv", rows, None, locator="A1:B3")
    [evidence] = choose_evidence("Who manages the Osaka office?", "", [table])
    assert evidence.text == "Osaka,Haruto Sato"
    assert evidence.location == "/d/offices.csv:A1:B3"


def test_evidence_is_the_sentence_that_shares_the_question_and_answer() -> None:
    sources = [cited(1, "/d/meeting.txt", MEETING, 1), cited(2, "/d/travel.md", POLICY, 8)]
    [best, *_] = choose_evidence(
        "How much food money do I get per day on a trip?", "You get 45 euros a day.", sources
    )
    assert best.text.startswith("Meals are covered by a daily allowance of 45 euros")
    assert best.location == "/d/travel.md:13" and best.source.number == 2
    # a follow-up finds its sentence with the question before it
    [follow_up, *_] = choose_evidence(
        "And in North America?", "", sources, ["How much is the hotel limit in Europe?"]
    )
    assert "210 dollars a night in North America" in follow_up.text
    # an answer that copies an unrelated sentence does not make it the evidence
    copied = choose_evidence("When is the fire drill?", "It holds 48 bicycles.", sources)
    assert copied[0].text.endswith("23 April at 10:00.")
    assert choose_evidence("Who is the CEO?", "", sources) == []


def test_invented_numbers_and_names_are_not_found_in_the_passages() -> None:
    answer = (
        "The answer is: 1. Hotel costs are refunded up to 18 euros per night [1]. Mr. Adebayo "
        "hands out laptops on 12 March 2026 at 06:00; meals get $12.50 a day, claims 1,500."
    )
    given = [POLICY, MEETING, "Taxis run from 6:00; claims above 1500 euros."]
    assert answer_facts(answer)[:4] == ["Hotel", "18", "Adebayo", "12"]
    assert ungrounded_facts(answer, given) == ["18", "Adebayo", "12.50"]
    assert ungrounded_facts("The drill starts at 10 am.", given) == []  # 10:00
    assert ungrounded_facts("It is 140.0 euros, or 45 in Europe.", given) == []
    assert ungrounded_facts("Expansion-" * 10, given) == [("Expansion-" * 10)[:40] + "…"]
