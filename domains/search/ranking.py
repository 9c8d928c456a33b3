"""BM25, as Lucene and tantivy score it: a term's weight in a document grows with how often it
occurs there (saturating with `K1`), shrinks with the document's length against the average
(by `B`), and with how many documents hold it (the inverse document frequency)."""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Term-frequency saturation and length normalisation: Lucene's and tantivy's defaults.
K1 = 1.2
B = 0.75


@dataclass(frozen=True, slots=True)
class CorpusStats:
    """What BM25 needs of the whole collection searched."""

    documents: int
    total_length: int

    @property
    def average_length(self) -> float:
        return self.total_length / self.documents if self.documents else 0.0


def idf(document_frequency: int, documents: int) -> float:
    """Rarer terms weigh more; never negative, however common the term."""
    return math.log(1 + (documents - document_frequency + 0.5) / (document_frequency + 0.5))


def term_score(frequency: int, length: int, weight: float, stats: CorpusStats) -> float:
    """One term's BM25 contribution to one document, `weight` being the term's idf."""
    average = stats.average_length or 1.0
    norm = K1 * (1 - B + B * length / average)
    return weight * frequency * (K1 + 1) / (frequency + norm)
