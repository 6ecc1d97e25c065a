"""Search lists one passage per file first: the answering file is not pushed out of the
first few places by more chunks of a file that ranks above it."""

from __future__ import annotations

from gritdesk.rag.fusion import files_first

FILE_OF = {1: 10, 2: 10, 3: 10, 4: 20, 5: 30}


def test_each_file_once_before_any_file_twice() -> None:
    listed = [c for c, _ in files_first([[1, 2, 3, 4, 5]], FILE_OF)]
    assert listed == [1, 4, 5, 2, 3]


def test_files_are_ordered_by_their_best_chunk_in_each_ranking() -> None:
    # file 10 is first by keywords, file 20 by vectors: the keyword ranking wins the tie
    assert [c for c, _ in files_first([[2, 4], [4, 2]], FILE_OF)] == [2, 4]
    # agreement wins over one first place: 20 is second by keywords and first by vectors
    assert [c for c, _ in files_first([[2, 1, 4], [4, 5, 3]], FILE_OF)][:2] == [4, 2]
    # a vector ranking with no weight only orders the files no keyword found
    listed = [c for c, _ in files_first([[2, 1], [5, 4]], FILE_OF, weights=(1.0, 0.0))]
    assert listed == [2, 5, 4, 1]


def test_a_chunk_of_a_deleted_file_is_left_out() -> None:
    assert [c for c, _ in files_first([[1, 99, 4]], FILE_OF)] == [1, 4]
