"""How text becomes index terms, the same for documents and queries: words split on anything
that is not a letter or digit, accents removed, case folded, English stems (Snowball)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from snowballstemmer.english_stemmer import EnglishStemmer

from domains.search.errors import InvalidQuery

#: Words longer than this are dropped (tantivy's default tokenizer drops them at 40 bytes).
MAX_WORD_LENGTH = 40
#: Most words a query may hold; each is one read of the index.
MAX_QUERY_WORDS = 16

_WORD = re.compile(r"[^\W_]+")
_stemmer = EnglishStemmer()


def fold(text: str) -> str:
    """`text` without accents and case: "Crème Brûlée" → "creme brulee", "Straße" → "strasse"."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return bare.casefold()


def words(text: str) -> list[str]:
    """The folded words of `text` in order, too-long ones dropped."""
    return [w for w in _WORD.findall(fold(text)) if len(w) <= MAX_WORD_LENGTH]


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The English stem of a folded word: "running" → "run", "ponies" → "poni"."""
    return str(_stemmer.stemWord(word))


def terms(text: str) -> list[str]:
    """The index terms of `text`, one per word, in order."""
    return [stem(w) for w in words(text)]


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed search: the stems of its complete words, and the last word as typed when the
    query stops inside it (no space after it), which matches any word it begins."""

    terms: tuple[str, ...]
    prefix: str | None


def parse_query(text: str) -> Query:
    """The `Query` of what a user typed; `InvalidQuery` when it holds no word or too many."""
    folded = fold(text)
    found = [m for m in _WORD.finditer(folded) if len(m.group()) <= MAX_WORD_LENGTH]
    if not found:
        raise InvalidQuery("the query holds no word to search for")
    if len(found) > MAX_QUERY_WORDS:
        raise InvalidQuery(f"a query holds at most {MAX_QUERY_WORDS} words")
    still_typing = found[-1].end() == len(folded)
    complete = found[:-1] if still_typing else found
    unique = tuple(dict.fromkeys(stem(m.group()) for m in complete))
    return Query(terms=unique, prefix=found[-1].group() if still_typing else None)
