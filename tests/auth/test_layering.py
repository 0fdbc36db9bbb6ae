"""Architecture guard: the auth core never imports the web/server layer (ARCHITECTURE rule 7)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

AUTH = Path(__file__).resolve().parents[2] / "auth"


@pytest.mark.parametrize("path", sorted(AUTH.glob("*.py")), ids=lambda p: p.name)
def test_auth_module_does_not_import_server(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert not name.startswith(("server", "fastapi", "starlette")), f"{path.name}: {name}"


@pytest.mark.parametrize("path", sorted(AUTH.glob("*.py")), ids=lambda p: p.name)
def test_auth_module_docstring_names_its_spec(path: Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    if path.name == "__init__.py":
        return
    assert any(s in doc for s in ("RFC", "SMART", "FHIR", "OpenID", "OAuth")), path.name
