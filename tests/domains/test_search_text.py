"""How the search domain reads text: folding, words, stems, and what a query's last word is."""

from __future__ import annotations

import pytest

from domains.search.errors import InvalidQuery
from domains.search.text import MAX_WORD_LENGTH, Query, fold, parse_query, terms, words


def test_accents_and_case_fold_away() -> None:
    assert fold("Crème Brûlée ZÜRICH Straße") == "creme brulee zurich strasse"


def test_words_split_on_anything_but_letters_and_digits() -> None:
    assert words("don't stop_me-now: 42x!") == ["don", "t", "stop", "me", "now", "42x"]


def test_overlong_words_are_dropped() -> None:
    assert words("a" * (MAX_WORD_LENGTH + 1) + " ok") == ["ok"]


def test_terms_are_english_stems() -> None:
    assert terms("Running runs ponies MARATHONS") == ["run", "run", "poni", "marathon"]


@pytest.mark.parametrize(
    ("typed", "query"),
    [
        ("marat", Query(terms=(), prefix="marat")),
        ("marat ", Query(terms=("marat",), prefix=None)),
        ("Running shoe", Query(terms=("run",), prefix="shoe")),
        ("running shoes.", Query(terms=("run", "shoe"), prefix=None)),
        ("run running ru", Query(terms=("run",), prefix="ru")),
        ("café", Query(terms=(), prefix="cafe")),
    ],
)
def test_the_last_word_is_a_prefix_until_something_follows_it(typed: str, query: Query) -> None:
    assert parse_query(typed) == query


def test_a_last_word_too_long_to_index_is_no_prefix() -> None:
    assert parse_query("tea " + "x" * (MAX_WORD_LENGTH + 1)) == Query(terms=("tea",), prefix=None)


@pytest.mark.parametrize("typed", ["", "   ", "?!", "—"])
def test_a_query_without_words_is_refused(typed: str) -> None:
    with pytest.raises(InvalidQuery, match="no word"):
        parse_query(typed)
