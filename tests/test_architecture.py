"""Architecture guard: one door to the resource collections (ARCHITECTURE.md, "One door").

Every module of ``server``, ``resources``, ``auth``, ``seed`` and ``bench`` is parsed with
``ast``; only the repository (and the database set-up it stands on) may reach a resource or
history collection. What counts as reaching one:

- calling ``<anything>.resources(...)`` (``Store.resources``: a type's collection);
- reading ``<anything>.history`` other than calling it (``Store.history`` is the history
  collection; ``repo.history(...)`` is the repository's policy-checked read and is fine);
- ``<anything>.db[key]`` unless ``key`` is a string constant (literal, or a module-level
  ``NAME = "..."``) naming one of the server's own collections, i.e. neither ``_history`` nor a
  resource type; ``<anything>.db.<ResourceType>`` and ``.get_collection(...)`` likewise.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from resources.registry import is_resource_type

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("server", "resources", "auth", "seed", "bench")
# The door itself: the repository, the database set-up, the pure document builder.
ALLOWED = frozenset({"server/repository.py", "server/database.py", "server/storage.py"})
HISTORY = "_history"
# Benchmark baselines that measure the bare database on their own MongoClient, beside the server
# (the "floor" a figure is compared with); they never read or write through the server's Store.
BASELINES: dict[str, frozenset[str]] = {
    "bench/search.py": frozenset({"raw_app"}),
    "bench/ingest.py": frozenset({"raw_bare", "_shadow", "raw_same"}),
    "bench/baseline_app.py": frozenset({"build"}),
    # compares what the server stored with what the loader builds: reading it raw is the point
    "bench/scale.py": frozenset({"layout_check"}),
}


def _constants(tree: ast.Module) -> dict[str, str]:
    out: dict[str, str] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node.value.value
    return out


def _own_collection(key: ast.expr, constants: dict[str, str]) -> bool:
    if isinstance(key, ast.Constant) and isinstance(key.value, str):
        name = key.value
    elif isinstance(key, ast.Name) and key.id in constants:
        name = constants[key.id]
    else:
        return False  # computed: could be any type's collection
    return name != HISTORY and not is_resource_type(name)


def _walk(tree: ast.AST, skip: frozenset[str]) -> list[ast.AST]:
    """Every node, leaving out the bodies of the functions named in ``skip``."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in skip:
            continue
        out.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return out


def violations(source: str, baselines: frozenset[str] = frozenset()) -> list[str]:
    """``line: what`` for every reach into a resource or history collection in ``source``
    (outside the functions named in ``baselines``)."""
    tree = ast.parse(source)
    constants = _constants(tree)
    nodes = _walk(tree, baselines)
    called = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
    found: list[str] = []
    for node in nodes:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("resources", "get_collection"):
                found.append(f"{node.lineno}: .{node.func.attr}(...)")
        elif isinstance(node, ast.Attribute):
            if node.attr == "history" and id(node) not in called:
                found.append(f"{node.lineno}: .history")
            elif (
                isinstance(node.value, ast.Attribute)
                and node.value.attr == "db"
                and (is_resource_type(node.attr) or node.attr == HISTORY)
            ):
                found.append(f"{node.lineno}: .db.{node.attr}")
        elif isinstance(node, ast.Subscript):
            value = node.value
            is_db = (isinstance(value, ast.Attribute) and value.attr == "db") or (
                isinstance(value, ast.Name) and value.id == "db"
            )
            if is_db and not _own_collection(node.slice, constants):
                found.append(f"{node.lineno}: db[{ast.unparse(node.slice)}]")
    return found


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_repository_touches_resource_collections(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    if rel in ALLOWED:
        return
    source = path.read_text(encoding="utf-8")
    assert violations(source, BASELINES.get(rel, frozenset())) == [], rel


# ----------------------------------------------------------------------- the guard itself
@pytest.mark.parametrize(
    "source",
    [
        "store.resources('Patient').find({})",
        "repo.store.resources(rtype).insert_many(docs)",
        "self.store.history.find_one({'_id': key})",
        "coll = app.state.consilium.store.history",
        "store.db[rtype].find({})",
        "store.db['Patient'].find({})",
        "store.db['_history'].find({})",
        "from server.database import HISTORY\nstore.db[HISTORY].drop()",
        "store.db.Observation.find({})",
        "store.db.get_collection('Patient')",
        "db = client['x']\ndb[name].find({})",
    ],
)
def test_the_guard_catches_a_reach_into_the_collections(source: str) -> None:
    assert violations(source)


@pytest.mark.parametrize(
    "source",
    [
        "repo.history(resource_type='Patient', limit=5)",
        "repo.find_visible('Patient', {'_id': 'p1'})",
        "SNAPSHOTS = '_search'\nrepo.store.db[SNAPSHOTS].find_one({})",
        "store.db['_audit_log'].insert_one({})",
        "store.db.list_collection_names()",
        "resources(1000, seed=7)",
        "from server.rest import history\nrouter.include_router(history.router)",
    ],
)
def test_the_guard_lets_other_collections_and_the_repository_api_pass(source: str) -> None:
    assert violations(source) == []


def test_a_baseline_is_exempt_only_inside_its_own_function() -> None:
    source = (
        "def raw_app(db):\n    return db[name].find({})\n"
        "def other(db):\n    return db[name].find({})\n"
    )
    assert violations(source, frozenset({"raw_app"})) == ["4: db[name]"]
