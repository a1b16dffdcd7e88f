"""The package's layers import one way: shared plumbing <- audit <- speech, bounty <- service.

Every ``import`` and ``from ... import`` in every module (including imports inside
functions, which the package uses to keep start-up fast) is read with ``ast`` and checked
against the layer of the importing module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "groupwise"

# What each layer may not import. The command line and the demos wire layers together.
FORBIDDEN = {
    "shared": ("groupwise.audit", "groupwise.speech", "groupwise.bounty", "groupwise.service", "groupwise.card"),
    "audit": ("groupwise.speech", "groupwise.bounty", "groupwise.service", "groupwise.card"),
    "speech": ("groupwise.bounty", "groupwise.service"),
    "bounty": ("groupwise.service", "groupwise.speech"),
    "card": ("groupwise.service", "groupwise.bounty"),
}
SHARED = {"_errors", "_io", "_expr", "_provenance", "_example", "_validation", "_defaults"}


def _layer(path: Path) -> str | None:
    rel = path.relative_to(PACKAGE)
    if len(rel.parts) == 1:
        return "shared" if rel.stem in SHARED else None
    return rel.parts[0] if rel.parts[0] in FORBIDDEN else None


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if _layer(p) is not None)


def test_every_layer_has_modules():
    assert {_layer(p) for p in MODULES} == set(FORBIDDEN)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    layer = _layer(path)
    bad = [name for name in _imports(path) if name.startswith(FORBIDDEN[layer])]
    assert not bad, f"{path.relative_to(PACKAGE)} ({layer}) imports {bad}"
