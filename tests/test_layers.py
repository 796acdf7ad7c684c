"""Layers import downward only: store <- log <- catalog, materializer, query <- engine facade <- api.

And two rules of one place: Lance is imported only by its adapter, and object keys are built only
in ``engine/keys.py`` (no other module spells out a log or dataset path).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Lower number = lower layer. A module may import from its own layer or any lower one.
LAYERS: list[tuple[str, int]] = [
    ("engine.errors", 0),
    ("engine.clock", 0),
    ("engine.settings", 0),
    ("engine.context", 0),
    ("engine.keys", 0),
    ("engine.distance", 0),
    ("engine.quota", 0),
    ("engine.failpoints", 0),
    ("engine.text_analysis", 0),
    ("engine.store", 1),
    ("engine.log", 2),
    ("engine.lease", 2),
    ("engine.filters", 3),
    ("engine.catalog_state", 3),
    ("engine.catalog", 3),
    ("engine.audit", 3),
    ("engine.lance_dataset", 3),
    ("engine.tail", 3),
    ("engine.materializer", 3),
    ("engine.validate", 3),
    ("engine.recovery", 4),
    ("engine.audit_query", 3),
    ("engine.live_index", 4),
    ("engine.refs", 0),
    ("engine.engine_vectors", 5),
    ("engine.engine_recovery", 5),
    ("engine.engine_status", 5),
    ("engine.text_search", 5),
    ("engine.engine", 5),
    ("engine", 5),
    ("api", 6),
]


def layer_of(module: str) -> int | None:
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return None


def modules() -> list[tuple[str, Path]]:
    out = []
    for pkg in ("engine", "api"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            out.append((".".join(parts), path))
    return out


def imports(path: Path) -> list[str]:
    """Imported modules; ``from engine import keys`` counts as ``engine.keys``, not ``engine``."""
    known = {name for name, _ in modules()}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.append(sub if sub in known else node.module)
    return found


def test_every_module_has_a_layer() -> None:
    missing = [name for name, _ in modules() if layer_of(name) is None]
    assert missing == []


def test_imports_point_downward() -> None:
    violations = []
    for name, path in modules():
        mine = layer_of(name)
        assert mine is not None
        for imported in imports(path):
            theirs = layer_of(imported)
            if theirs is not None and theirs > mine and not imported.startswith(name):
                violations.append(f"{name} (layer {mine}) imports {imported} (layer {theirs})")
    assert violations == []


def test_engine_never_imports_the_api() -> None:
    for name, path in modules():
        if name.startswith("engine"):
            assert not [i for i in imports(path) if i == "api" or i.startswith("api.")], name


def test_lance_is_imported_in_one_adapter() -> None:
    """The adapter is one package (schema, writer, reads, copies); nothing outside it sees Lance."""
    users = [name for name, path in modules() if any(i == "lance" or i.startswith("lance.") for i in imports(path))]
    assert users and all(u.startswith("engine.lance_dataset.") for u in users), users


def test_object_keys_are_built_in_keys_py() -> None:
    pattern = re.compile(r"""["'](catalog/|data/|scratch/|audit/)""")
    offenders = [name for name, path in modules() if name != "engine.keys" and pattern.search(path.read_text())]
    assert offenders == []
