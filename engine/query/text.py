"""Full text: one analyzer and one BM25 for the tail and the dataset (docs/notes/0002-hybrid-search.md).

The tail scores its rows exactly and the Lance adapter indexes the terms this analyzer produces, so
both sides count terms the same way, and a row scores the same folded or not.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import snowballstemmer

LANGUAGES = ("en", "fr", "es", "pt", "it", "de", "nl", "zh", "ja", "ko")
STANDARD = "standard"  # the analyzer of a configuration without a language
CJK_LANGUAGES = frozenset({"zh", "ja", "ko"})
K1, B = 1.2, 0.75  # BM25 parameters (Lucene's and Tantivy's defaults)

_WORD = re.compile(r"[^\W_]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


# The Snowball algorithms, as Lance's (Tantivy's) stemmers for these languages use them.
_SNOWBALL = {
    "en": "english",
    "fr": "french",
    "es": "spanish",
    "pt": "portuguese",
    "it": "italian",
    "de": "german",
    "nl": "dutch",
}
_stemmers = threading.local()  # a Snowball stemmer object keeps state while it stems: one per thread


def _stem(words: list[str], language: str) -> list[str]:
    cache = _stemmers.__dict__
    if language not in cache:
        cache[language] = snowballstemmer.stemmer(_SNOWBALL[language])
    return list(cache[language].stemWords(words))


def analyze(text: str, language: str | None) -> list[str]:
    """Terms of ``text``: lowercased runs of letters and digits (the standard analyzer), stemmed
    with the Snowball stemmer of en, fr, es, pt, it, de and nl; for zh, ja and ko, runs of CJK
    characters become overlapping bigrams (those scripts have no spaces). No stop words are removed:
    BM25's idf already makes them cheap, and a list per language would be one more thing for the
    tail and the dataset to agree on.
    """
    words = _WORD.findall(text.lower())
    if language in _SNOWBALL:
        return _stem(words, language)
    if language not in CJK_LANGUAGES:
        return words
    out: list[str] = []
    for w in words:
        pos = 0
        for m in _CJK.finditer(w):
            if m.start() > pos:
                out.append(w[pos : m.start()])
            run = m.group()
            out += [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
            pos = m.end()
        if pos < len(w):
            out.append(w[pos:])
    return out


def field_text(value: Any) -> str | None:
    """The searchable text of a metadata value: a string, or the strings of a list; else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [v for v in value if isinstance(v, str)]
        return " ".join(parts) if parts else None
    return None


def tag(metadata_key: str, language: str | None) -> str:
    """A short, whitespace-free prefix naming (key, analyzer) in the indexed ``text`` column."""
    return "t" + hashlib.sha1(f"{metadata_key}\0{language or STANDARD}".encode()).hexdigest()[:12]


def config_pairs(configs: Iterable[Mapping[str, Any]]) -> list[tuple[str, str | None]]:
    return [(str(c["metadataKey"]), c.get("language")) for c in configs]


def text_column(metadata: Mapping[str, Any] | None, pairs: list[tuple[str, str | None]]) -> str | None:
    """The indexed text of one row: `` <tag>_<term> ...`` for every configured key it has, with a
    leading and trailing space so that a substring count of ``" <tag>_"`` is the field's length."""
    if not metadata or not pairs:
        return None
    out: list[str] = []
    for key, language in pairs:
        text = field_text(metadata.get(key))
        if text is not None:
            t = tag(key, language)
            out += [f"{t}_{term}" for term in analyze(text, language)]
    return " " + " ".join(out) + " " if out else None


@dataclass
class Corpus:
    """BM25 statistics and candidates for one query text, gathered from the dataset and the tail."""

    terms: list[str]
    docs: int = 0
    total_length: int = 0
    df: Counter[str] = field(default_factory=Counter)
    # key -> (term frequencies of the query terms, field length, metadata text)
    candidates: dict[str, tuple[dict[str, int], int, str | None]] = field(default_factory=dict)

    def add_stats(self, docs: int, total_length: int) -> None:
        self.docs += docs
        self.total_length += total_length

    def add_candidate(self, key: str, doc_terms: list[str], metadata: str | None) -> None:
        """A document with at least one query term (its length counts in ``add_stats``, not here)."""
        counts = Counter(doc_terms)
        tf = {t: counts[t] for t in self.terms if counts[t]}
        if tf:
            self.df.update(tf.keys())
            self.candidates[key] = (tf, len(doc_terms), metadata)

    def score(self, tf: dict[str, int], length: int) -> float:
        avgdl = self.total_length / self.docs if self.docs else 1.0
        s = 0.0
        for term, f in tf.items():
            df = self.df[term]
            idf = math.log(1 + (self.docs - df + 0.5) / (df + 0.5))
            s += idf * f * (K1 + 1) / (f + K1 * (1 - B + B * length / avgdl))
        return s
