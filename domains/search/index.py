"""The `SearchIndex` port, and its default: an inverted index in the search domain's own table,
so it deploys and tests like every other domain (docs/search.md has the items).

Each document carries a version (its latest fact's time and id): a fact older than what the
index holds is ignored, so duplicates and facts out of order leave the newest state, and a
deletion leaves a tombstone that a late creation cannot bring back. A document is found only
while its own item is live and of the version its postings carry: that item is what
deletion flips, in one transaction, so deleted content leaves the results at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bus.storage.conditions import Attr, Condition, Key
from bus.storage.errors import ConditionFailed, TransactionCanceled
from bus.storage.items import Item
from bus.storage.table import Delete, Put, Table, TransactOperation
from bus.storage.unit_of_work import UnitOfWork
from domains.search.errors import IndexConflict
from domains.search.ranking import K1, B, CorpusStats, idf, term_score
from domains.search.text import Query, stem, terms, words

Kind = Literal["post", "profile"]
KINDS: tuple[Kind, ...] = ("post", "profile")
#: Most stems a prefix expands to (the shortest words' first); more would make a short prefix
#: read much of the index.
MAX_EXPANSIONS = 32
#: Operations in one transaction (DynamoDB's TransactWriteItems limit).
_TRANSACTION_SIZE = 100
#: Most postings one search reads of one term and kind: the highest-impact ones (see
#: `impact`), so a word in a large share of a large corpus costs a bounded read. A term with
#: more is weighed as if it had one more document than were read.
MAX_POSTINGS_PER_TERM = 1000
#: Postings read per query of a term, up to the cap.
_POSTINGS_PAGE = 250
#: The length `impact` orders a kind's postings by while the kind has no documents yet;
#: after that, the kind's average length when the document is indexed (kept on its item as
#: `rank_length`, so its postings' keys can be found again).
REFERENCE_LENGTH: Mapping[str, int] = {"post": 30, "profile": 2}
#: Digits of a posting's rank in its sort key.
_RANK_DIGITS = 7


@dataclass(frozen=True, slots=True)
class Document:
    """What is indexed: `text` is searched, `fields` are what a hit shows."""

    kind: Kind
    id: str
    text: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hit:
    kind: Kind
    id: str
    score: float
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SearchPage:
    """Hits in rank order; `next_offset` is where the next page starts, None after the last."""

    hits: list[Hit]
    next_offset: int | None


class SearchIndex(Protocol):
    """Full-text search over documents kept current by versioned writes."""

    async def index(self, document: Document, version: str) -> bool:
        """Add or replace `document`; False (and nothing changed) if the index already holds
        this version or a newer one, a removal included."""
        ...

    async def remove(self, kind: Kind, document_id: str, version: str) -> bool:
        """Take a document out of every result; False if the index holds a newer version."""
        ...

    async def search(
        self, query: Query, *, kinds: Sequence[Kind] = KINDS, offset: int = 0, limit: int = 20
    ) -> SearchPage:
        """Documents of `kinds` matching any word of `query`, best BM25 score first."""
        ...


class Writes(Protocol):
    """The part of a unit of work the index commits a document through."""

    def put(self, item: Mapping[str, Any], *, condition: Condition | None = None) -> None: ...

    def update(
        self,
        key: Mapping[str, Any],
        *,
        set: Mapping[str, Any] | None = None,
        remove: Iterable[str] = (),
        add: Mapping[str, Any] | None = None,
        condition: Condition | None = None,
    ) -> None: ...


#: Opens the unit of work a document's item and the corpus stats commit in: a handler's own
#: (`ctx.unit_of_work`, which also records its event as handled), or the table's.
Commit = Callable[[], AbstractAsyncContextManager[Writes]]


def document_key(kind: str, document_id: str) -> dict[str, str]:
    return {"PK": f"DOC#{kind}#{document_id}", "SK": "DOC"}


def posting_key(
    term: str, kind: str, document_id: str, frequency: int, length: int, average: int
) -> dict[str, str]:
    """A posting's key: its term's partition, sorted by kind, then by `impact` (highest
    first), then by document, so a kind's best postings are the first ones read."""
    rank = round((1 - impact(frequency, length, average) / (K1 + 1)) * 10**_RANK_DIGITS)
    return {"PK": f"TERM#{term}", "SK": f"{kind}#{rank:0{_RANK_DIGITS}d}#{document_id}"}


def impact(frequency: int, length: int, average: int) -> float:
    """A posting's BM25 term-frequency factor at an `average` document length: it grows with
    the term's count and shrinks with the document's length, as the score does, so the
    postings read first are those that would score best."""
    return frequency * (K1 + 1) / (frequency + K1 * (1 - B + B * length / max(average, 1)))


def word_key(word: str) -> dict[str, str]:
    return {"PK": f"WORD#{word[0]}", "SK": word}


def stats_key(kind: str) -> dict[str, str]:
    return {"PK": "STATS", "SK": kind}


def _holds(item: Item | None, version: str) -> bool:
    """Whether `item` is of `version` or newer."""
    return item is not None and str(item["version"]) >= version


class TableSearchIndex:
    """`SearchIndex` on the `Table` port: in memory in tests, DynamoDB in production.

    Items: `DOC#<kind>#<id>`/`DOC` (version, live or tombstone, length, term counts, shown
    fields); `TERM#<stem>`/`<kind>#<rank>#<id>` (a posting, best `impact` first: count, document
    length, version);
    `WORD#<first letter>`/`<word>` (a word seen, and its stem: what prefixes expand through);
    `STATS`/`<kind>` (documents and total length, for BM25).
    """

    def __init__(
        self,
        table: Table,
        commit: Commit | None = None,
        *,
        postings_per_term: int = MAX_POSTINGS_PER_TERM,
    ) -> None:
        self._table = table
        self._commit = commit or (lambda: UnitOfWork(table))
        self._postings_per_term = postings_per_term

    async def index(self, document: Document, version: str) -> bool:
        key = document_key(document.kind, document.id)
        current = await self._table.get(key, consistent=True)
        if _holds(current, version):
            return False
        counts = Counter(terms(document.text))
        length = sum(counts.values())
        owner = f"{document.kind}#{document.id}"
        average = await self._rank_length(document.kind)
        await self._apply(_postings_and_words(document, counts, version, average))
        mine = {(t, n, length, average) for t, n in counts.items()}
        live = _live(current)
        if live is not None:
            await self._delete_postings(
                _postings_of(live) - mine, owner, Attr("version").lt(version)
            )
        item = {
            **key,
            "kind": document.kind,
            "id": document.id,
            "version": version,
            "deleted": False,
            "length": length,
            "terms": dict(counts),
            "rank_length": average,
            "fields": dict(document.fields),
        }
        previous_length = int(live["length"]) if live is not None else 0
        applied = await self._commit_document(
            current, item, documents=0 if live is not None else 1, length=length - previous_length
        )
        if not applied:  # a newer version won the race: take back what this one wrote
            await self._delete_postings(mine, owner, Attr("version").eq(version))
        return applied

    async def remove(self, kind: Kind, document_id: str, version: str) -> bool:
        key = document_key(kind, document_id)
        current = await self._table.get(key, consistent=True)
        if _holds(current, version):
            return False
        live = _live(current)
        if live is not None:
            owner = f"{kind}#{document_id}"
            await self._delete_postings(_postings_of(live), owner, Attr("version").lt(version))
        tombstone = {**key, "kind": kind, "id": document_id, "version": version, "deleted": True}
        return await self._commit_document(
            current,
            tombstone,
            documents=-1 if live is not None else 0,
            length=-int(live["length"]) if live is not None else 0,
        )

    async def search(
        self, query: Query, *, kinds: Sequence[Kind] = KINDS, offset: int = 0, limit: int = 20
    ) -> SearchPage:
        stats = await self._stats(kinds)
        clauses = [[t] for t in query.terms]
        if query.prefix is not None:
            clauses.append(await self._expand(query.prefix))
        scores: dict[tuple[Kind, str], float] = defaultdict(float)
        versions: dict[tuple[Kind, str], set[str]] = defaultdict(set)
        for clause in clauses:
            best: dict[tuple[Kind, str], float] = {}
            found = await asyncio.gather(*(self._postings(term, kinds) for term in clause))
            for postings, frequency in found:
                weight = idf(frequency, max(stats.documents, frequency))
                for posting in postings:
                    kind, _, placed = str(posting["SK"]).partition("#")
                    document_id = placed.rpartition("#")[2]
                    owner = (_kind(kind), document_id)
                    score = term_score(int(posting["tf"]), int(posting["length"]), weight, stats)
                    best[owner] = max(best.get(owner, 0.0), score)
                    versions[owner].add(str(posting["version"]))
            for owner, score in best.items():
                scores[owner] += score
        ranked = sorted(scores.items(), key=lambda entry: (-entry[1], entry[0]))
        return await self._page(ranked, versions, offset, limit)

    async def _page(
        self,
        ranked: list[tuple[tuple[Kind, str], float]],
        versions: Mapping[tuple[Kind, str], set[str]],
        offset: int,
        limit: int,
    ) -> SearchPage:
        """The hits from `offset` on whose document is live and of a version its postings
        carry: postings a deletion or an update has not yet removed are never shown."""
        hits: list[Hit] = []
        position = offset
        while position < len(ranked) and len(hits) < limit:
            batch = ranked[position : position + limit - len(hits)]
            position += len(batch)
            items = await asyncio.gather(
                *(self._table.get(document_key(*owner), consistent=True) for owner, _ in batch)
            )
            for (owner, score), item in zip(batch, items, strict=True):
                live = _live(item)
                if live is not None and str(live["version"]) in versions[owner]:
                    hits.append(Hit(owner[0], owner[1], score, dict(live["fields"])))
        return SearchPage(hits, position if position < len(ranked) else None)

    async def _rank_length(self, kind: Kind) -> int:
        """The kind's average document length, whole words, for ordering new postings."""
        stats = await self._stats([kind])
        if not stats.documents:
            return REFERENCE_LENGTH[kind]
        return max(round(stats.average_length), 1)

    async def _stats(self, kinds: Sequence[Kind]) -> CorpusStats:
        documents = length = 0
        for kind in kinds:
            item = await self._table.get(stats_key(kind), consistent=True)
            if item is not None:
                documents += int(item.get("documents", 0))
                length += int(item.get("length", 0))
        return CorpusStats(documents=max(documents, 0), total_length=max(length, 0))

    async def _expand(self, prefix: str) -> list[str]:
        """The stems of the indexed words `prefix` begins, shortest words first, the prefix's
        own stem always among them."""
        found: list[str] = []
        cursor: str | None = None
        while True:
            page = await self._table.query(
                Key("PK").eq(word_key(prefix)["PK"]) & Key("SK").begins_with(prefix),
                cursor=cursor,
                limit=500,
            )
            found += [str(item["SK"]) for item in page.items]
            cursor = page.cursor
            if cursor is None or len(found) >= 10 * MAX_EXPANSIONS:
                break
        stems = dict.fromkeys([stem(prefix)] + [stem(w) for w in sorted(found, key=len)])
        return list(stems)[:MAX_EXPANSIONS]

    async def _postings(self, term: str, kinds: Sequence[Kind]) -> tuple[list[Item], int]:
        """A term's highest-impact postings, at most `postings_per_term` of each kind, and
        its document frequency: exact when every posting was read, else one more than
        were (a lower bound, so a very common term weighs a little more than it should)."""
        if len(kinds) != 1 and set(kinds) != set(KINDS):
            raise ValueError(f"search one kind or all of {KINDS}, not {kinds}")
        postings: list[Item] = []
        frequency = 0
        for kind in kinds:
            read, more = await self._best_postings(term, kind)
            postings += read
            frequency += len(read) + (1 if more else 0)
        return postings, frequency

    async def _best_postings(self, term: str, kind: Kind) -> tuple[list[Item], bool]:
        condition = Key("PK").eq(f"TERM#{term}") & Key("SK").begins_with(f"{kind}#")
        postings: list[Item] = []
        cursor: str | None = None
        while True:
            wanted = min(_POSTINGS_PAGE, self._postings_per_term - len(postings))
            page = await self._table.query(condition, cursor=cursor, limit=wanted)
            postings += page.items
            cursor = page.cursor
            if cursor is None:
                return postings, False
            if len(postings) >= self._postings_per_term:
                return postings, True

    async def _commit_document(
        self, current: Item | None, item: Item, *, documents: int, length: int
    ) -> bool:
        """Write a document's item and its change to the corpus stats in one unit of work,
        if nothing changed the item since `current` was read."""
        unchanged = (
            Attr("PK").not_exists() if current is None else Attr("version").eq(current["version"])
        )
        try:
            async with self._commit() as writes:
                writes.put(item, condition=unchanged)
                if documents or length:
                    writes.update(
                        stats_key(str(item["kind"])), add={"documents": documents, "length": length}
                    )
        except TransactionCanceled:
            latest = await self._table.get({"PK": item["PK"], "SK": item["SK"]}, consistent=True)
            if _holds(latest, str(item["version"])):
                return False
            raise IndexConflict(
                f"{item['PK']} changed while version {item['version']} was being indexed"
            ) from None
        return True

    async def _delete_postings(
        self, postings: Iterable[Posting], owner: str, condition: Condition
    ) -> None:
        kind, _, document_id = owner.partition("#")
        await self._apply(
            [
                Delete(posting_key(t, kind, document_id, *placed), condition=condition)
                for t, *placed in sorted(postings)
            ]
        )

    async def _apply(self, operations: Sequence[TransactOperation]) -> None:
        """Each operation whose condition holds; in transactions of up to 100 when all do
        (the usual case), one by one when one does not."""
        for start in range(0, len(operations), _TRANSACTION_SIZE):
            chunk = operations[start : start + _TRANSACTION_SIZE]
            try:
                await self._table.transact(chunk)
            except TransactionCanceled:
                for operation in chunk:
                    await self._apply_one(operation)

    async def _apply_one(self, operation: TransactOperation) -> None:
        try:
            if isinstance(operation, Put):
                await self._table.put(operation.item, condition=operation.condition)
            elif isinstance(operation, Delete):
                await self._table.delete(operation.key, condition=operation.condition)
        except ConditionFailed:
            pass  # a newer version's posting: it stays


#: What places a document's posting: (stem, count, document length, rank length).
Posting = tuple[str, int, int, int]


def _postings_of(item: Item) -> set[Posting]:
    """The postings a live document item's terms were written as."""
    length = int(item["length"])
    average = int(item.get("rank_length", REFERENCE_LENGTH[str(item["kind"])]))
    return {(t, int(n), length, average) for t, n in item["terms"].items()}


def _postings_and_words(
    document: Document, counts: Counter[str], version: str, average: int
) -> list[TransactOperation]:
    """A posting per stem, each written only over an older version's, and the words that
    prefixes expand through."""
    length = sum(counts.values())
    older = Attr("PK").not_exists() | Attr("version").lt(version)
    postings: list[TransactOperation] = [
        Put(
            {
                **posting_key(t, document.kind, document.id, n, length, average),
                "tf": n,
                "length": length,
                "version": version,
            },
            condition=older,
        )
        for t, n in counts.items()
    ]
    seen = dict.fromkeys(words(document.text))
    return postings + [Put({**word_key(w), "stem": stem(w)}) for w in seen]


def _live(item: Item | None) -> Item | None:
    return item if item is not None and not item.get("deleted") else None


def _kind(value: str) -> Kind:
    if value == "post":
        return "post"
    if value == "profile":
        return "profile"
    raise ValueError(f"not a kind of document: {value!r}")
