"""The full-text analyzer: what each language's terms are (docs/notes/0002-hybrid-search.md)."""

from __future__ import annotations

import threading

from engine.query.text import analyze


def test_standard_analyzer_lowercases_and_splits_on_everything_else() -> None:
    assert analyze("The Quick-brown FOX_jumps, 42 times!", None) == [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "42",
        "times",
    ]


def test_languages_with_a_snowball_stemmer_stem() -> None:
    assert analyze("Running runners ran; the runs", "en") == ["run", "runner", "ran", "the", "run"]
    assert analyze("les chevaux mangeaient", "fr") == ["le", "cheval", "mang"]
    assert analyze("Häuser und Hauses", "de") == ["haus", "und", "haus"]
    assert analyze("Casas correndo", "pt") == ["cas", "corr"]
    assert analyze("Casas corriendo", "es") == ["cas", "corr"]
    assert analyze("Casas correndo", "it") == ["casas", "corr"]
    assert analyze("Huizen lopende", "nl") == ["huis", "loop"]


def test_cjk_languages_use_overlapping_bigrams() -> None:
    assert analyze("向量数据库 vecledger", "zh") == ["向量", "量数", "数据", "据库", "vecledger"]
    assert analyze("日本", "ja") == ["日本"]


def test_stemming_is_safe_from_many_threads() -> None:
    words = " ".join(["connections", "connected", "connecting"] * 200)
    expected = analyze(words, "en")
    results: list[bool] = []

    def run() -> None:
        results.extend(analyze(words, "en") == expected for _ in range(50))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results) and len(results) == 200
