"""Folders are layers, and imports point downward only.

A module may import from its own layer or any lower one. Two rules of one place ride along: Lance
is imported only by ``engine/dataset/``, and object keys are built only in ``engine/keys.py`` (no
other module, in engine/, api/ or tools/, spells out a log or dataset path). Tools use the engine
as a caller would: its packages' public names, never a module inside a package.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# One row per folder (and per group of the top-level modules that share a layer). The longest
# matching prefix decides; "engine.*" and "api.*" are the top-level modules of each package.
LAYERS: dict[str, int] = {
    "engine.*": 0,  # errors, clock, ids, settings, context, refs, keys, failpoints, metrics, memory
    "engine.store": 1,
    "engine.log": 2,
    "engine.catalog": 3,
    "engine.query": 3,
    "engine.dataset": 3,
    "engine.audit": 3,
    "engine.materialize": 4,
    "engine.serving": 5,
    "engine.recovery": 5,
    "engine.facade": 6,
    "engine": 6,  # the package: its public names include the Engine
    "api": 7,
    "api.*": 7,  # config, errors, models, limits, bodies: the vocabulary of a request
    "api.auth": 8,
    "api.dialects": 9,
    "api.call": 10,
    "api.operations": 11,
    "api.frontend": 12,
    "api.observability": 12,
    "api.openapi": 12,
    "api.app": 13,
    "api.cli": 14,
}


def modules(*packages: str) -> list[tuple[str, Path]]:
    out = []
    for pkg in packages:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out.append((".".join(parts), path))
    return out


KNOWN = {name for name, _ in modules("engine", "api")}
PACKAGES = {name for name, path in modules("engine", "api") if path.name == "__init__.py"}


def layer_of(module: str) -> int | None:
    if module in LAYERS:
        return LAYERS[module]
    parts = module.split(".")
    for n in range(len(parts) - 1, 0, -1):
        if ".".join(parts[:n]) in LAYERS and ".".join(parts[:n]) in PACKAGES - {"engine", "api"}:
            return LAYERS[".".join(parts[:n])]
    if len(parts) == 2 and module not in PACKAGES:
        return LAYERS.get(parts[0] + ".*")
    return None


def imports(path: Path) -> list[str]:
    """Imported modules; ``from engine import keys`` counts as ``engine.keys``, not ``engine``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.append(sub if sub in KNOWN else node.module)
    return found


def violations(named: list[tuple[str, Path]]) -> list[str]:
    out = []
    for name, path in named:
        mine = layer_of(name)
        for imported in imports(path):
            theirs = layer_of(imported)
            if mine is not None and theirs is not None and theirs > mine and not imported.startswith(name + "."):
                out.append(f"{name} (layer {mine}) imports {imported} (layer {theirs})")
    return out


def test_every_module_has_a_layer() -> None:
    assert [name for name, _ in modules("engine", "api") if layer_of(name) is None] == []


def test_imports_point_downward() -> None:
    assert violations(modules("engine", "api")) == []


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The check itself: a store module that imports the catalog is a violation."""
    scratch = tmp_path / "bad.py"
    scratch.write_text("from engine.catalog import Catalog\nfrom engine.errors import ObjectNotFound\n")
    assert violations([("engine.store.bad", scratch)]) == [
        "engine.store.bad (layer 1) imports engine.catalog (layer 3)"
    ]


def test_engine_never_imports_the_api() -> None:
    for name, path in modules("engine"):
        assert not [i for i in imports(path) if i == "api" or i.startswith("api.")], name


def test_lance_is_imported_in_one_adapter() -> None:
    users = [n for n, p in modules("engine", "api") if any(i == "lance" or i.startswith("lance.") for i in imports(p))]
    assert users and all(u.startswith("engine.dataset.") for u in users), users


def test_object_keys_are_built_in_keys_py() -> None:
    pattern = re.compile(r"""["'](catalog/|data/|scratch/|audit/)|/(log|checkpoint|lease|versions)/?["']""")
    named = modules("engine", "api", "tools")
    offenders = [name for name, path in named if name != "engine.keys" and pattern.search(path.read_text())]
    assert offenders == []


def test_tools_use_the_engines_public_names() -> None:
    """A tool imports ``engine``, a layer-0 module, or a package's ``__init__`` names; never a module
    inside a package (``engine.dataset.reads``), whose names may move in any change."""
    offenders = []
    for name, path in modules("tools"):
        for imported in imports(path):
            if imported.startswith("engine.") and imported not in PACKAGES and layer_of(imported) != 0:
                offenders.append(f"{name} imports {imported}")
    assert offenders == []


def test_the_engine_package_names_what_callers_use() -> None:
    engine = importlib.import_module("engine")
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
