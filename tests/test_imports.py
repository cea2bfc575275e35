"""No new import circle inside mlift/: every module-level or function-level import of another mlift module counts.
The circles listed in KNOWN predate this test; the house issue (one package per concern) removes them, and then
KNOWN must be empty."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

KNOWN = {
    ("mlift.baselines.common", "mlift.data.conversations"),
    ("mlift.eval.hub", "mlift.eval.tasks"),
    ("mlift.eval.mmlu", "mlift.eval.tasks"),
    ("mlift.sweep.graph", "mlift.sweep.rehearsal"),
    ("mlift.sweep.graph", "mlift.sweep.schema"),
    ("mlift.sweep.rehearsal", "mlift.sweep.schema"),
}


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the mlift modules it imports (anywhere in its body, TYPE_CHECKING blocks included)."""
    mods = {}
    for p in (root / "mlift").rglob("*.py"):
        name = ".".join(p.relative_to(root).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:  # mlift.x.func -> mlift.x
                    t = t.rsplit(".", 1)[0] if "." in t else ""
                if t and t != m:
                    edges[m].add(t)
    return edges


def circles(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Pairs (a, b), a imports b, with b reaching a back."""
    def reach(a: str) -> set[str]:
        seen, todo = set(), [a]
        while todo:
            for y in edges[todo.pop()] - seen:
                seen.add(y)
                todo.append(y)
        return seen

    back = {m: reach(m) for m in edges}
    return {tuple(sorted((a, b))) for a in edges for b in edges[a] if a in back[b]}


def test_no_new_import_circle():
    found = circles(import_graph(REPO))
    assert found <= KNOWN, f"new import circle(s): {sorted(found - KNOWN)}"


def test_the_check_sees_a_circle(tmp_path):
    pkg = tmp_path / "mlift"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from mlift.b import g\n")
    (pkg / "b.py").write_text("from mlift import a\n")
    (pkg / "c.py").write_text("import mlift.a\n")
    assert circles(import_graph(tmp_path)) == {("mlift.a", "mlift.b")}
