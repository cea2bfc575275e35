"""No new import circle inside mlift/: every module-level or function-level import of another mlift module counts.
No module imports from a higher layer (LAYERS), the top of mlift/ stays small and no module grows past ~400
lines."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

# Layers, lowest first: a module imports only from its own layer or lower ones, so data flows down
# (cli -> commands -> sweep -> stages -> data -> runner -> backends -> base). Longest prefix wins.
LAYERS = [
    ("base", ["mlift", "mlift.records", "mlift.textio", "mlift.languages", "mlift.langid", "mlift.fingerprint",
              "mlift.passthrough", "mlift.recipe", "mlift.tracking", "mlift.prompts"]),
    ("backends", ["mlift.llm"]),
    ("runner", ["mlift.runner"]),
    ("data", ["mlift.data", "mlift.translate"]),
    ("stages", ["mlift.generate", "mlift.baselines", "mlift.train", "mlift.eval", "mlift.judge", "mlift.report"]),
    ("sweep", ["mlift.sweep"]),
    ("commands", ["mlift.commands"]),
    ("entry points", ["mlift.cli", "mlift.__main__", "mlift.train.__main__", "mlift.sweep.__main__"]),
]
TOP_LEVEL_MODULES = 12  # the shared core; everything else lives in the package of its concern
MAX_LINES = 400


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


def layer(module: str) -> int:
    best = max(((i, len(p)) for i, (_, prefixes) in enumerate(LAYERS) for p in prefixes
                if module == p or module.startswith(p + ".")), key=lambda x: x[1], default=None)
    assert best is not None, f"{module}: in no layer of tests/test_imports.py LAYERS; add its package there"
    return best[0]


def upward(edges: dict[str, set[str]]) -> list[str]:
    return [f"{a} ({LAYERS[layer(a)][0]}) imports {b} ({LAYERS[layer(b)][0]})"
            for a in sorted(edges) for b in sorted(edges[a]) if layer(b) > layer(a)]


def test_no_import_circle():
    assert not circles(import_graph(REPO)), f"import circle(s): {sorted(circles(import_graph(REPO)))}"


def test_no_import_from_a_higher_layer():
    assert not upward(import_graph(REPO))


def test_the_house_stays_small():
    top = sorted(p.name for p in (REPO / "mlift").glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= TOP_LEVEL_MODULES, f"mlift/ top level: {top}; put new modules in the package of their concern"
    long = {str(p.relative_to(REPO)): n for p in (REPO / "mlift").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_check_sees_a_circle(tmp_path):
    pkg = tmp_path / "mlift"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from mlift.b import g\n")
    (pkg / "b.py").write_text("from mlift import a\n")
    (pkg / "c.py").write_text("import mlift.a\n")
    assert circles(import_graph(tmp_path)) == {("mlift.a", "mlift.b")}


def test_the_check_sees_an_upward_import(tmp_path):
    pkg = tmp_path / "mlift"
    for sub in ("runner", "eval"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "runner" / "stage.py").write_text("def f():\n    from mlift.eval.run import g\n")
    (pkg / "eval" / "run.py").write_text("from mlift.runner import stage\n")
    assert upward(import_graph(tmp_path)) == ["mlift.runner.stage (runner) imports mlift.eval.run (stages)"]
