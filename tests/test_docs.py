"""The documentation stays true to the code: docs/recipe-reference.md is what docs/make_recipe_reference.py writes
from the recipe schemas today (no drift, like the committed eval/ tasks), every relative link in README.md,
CONTRIBUTING.md and docs/**/*.md names a file or folder that exists, and so does every mlift/ path and mlift.* module
they name."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from conftest import REPO

REGENERATE = "docs/recipe-reference.md drifted from the recipe schemas: run python docs/make_recipe_reference.py"


def load_generator():
    spec = importlib.util.spec_from_file_location("make_recipe_reference", REPO / "docs" / "make_recipe_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recipe_reference_equals_the_generator() -> None:
    committed = (REPO / "docs" / "recipe-reference.md").read_text(encoding="utf-8")
    ours = load_generator().render()
    if ours != committed:
        diff = [f"-{a}\n+{b}" for a, b in zip(committed.splitlines(), ours.splitlines()) if a != b]
        raise AssertionError(f"{REGENERATE}\nfirst difference:\n{diff[0] if diff else '(length differs)'}")


def test_every_recipe_kind_is_in_the_reference() -> None:
    """The generator's table names every schema a command loads: a new recipe kind must be added there too."""
    from mlift.sweep.schema import DATA_COMMANDS, resolve

    generator = load_generator()
    listed = {generator.load(ref) for ref, _ in generator.RECIPES}  # the classes: any import path may name them
    for command in DATA_COMMANDS.values():
        assert resolve(command.schema) in listed, f"{command.schema} (a sweep data command) is missing from RECIPES"


FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")
INLINE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFDEF = re.compile(r"^[ \t]*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)


def relative_links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every Markdown link that points into the repository (no scheme, not only an anchor)."""
    # code shows commands and paths, not links: blank it out, keeping the line count
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    text = CODE.sub("``", text)
    out = []
    for pattern in (INLINE, REFDEF):
        for m in pattern.finditer(text):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
                continue  # http:, mailto:, an anchor in the same page
            out.append((text.count("\n", 0, m.start()) + 1, target.split("#", 1)[0]))
    return out


def broken_links(files: list[Path]) -> list[str]:
    broken = []
    for md in files:
        for line, target in relative_links(md.read_text(encoding="utf-8")):
            if not (md.parent / target).exists():
                broken.append(f"{md.relative_to(REPO)}:{line}: {target}")
    return broken


def doc_files() -> list[Path]:
    return [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").rglob("*.md"))]


def test_relative_links_point_at_files() -> None:
    files = doc_files()
    assert all(f.is_file() for f in files[:2]), "README.md and CONTRIBUTING.md are the front door"
    assert len(files) > 10, "docs/ holds the index, quickstart, concepts, commands/, papers/, cluster and reference"
    broken = broken_links(files)
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)


def test_link_checker_reads_links_and_skips_code(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("See [a](missing.md#x), [b](page.md), [c](https://example.org/x.md), [d](#top).\n"
                    "`[e](in-code.md)`\n```\n[f](in-fence.md)\n```\n[g]: also-missing.md\n", encoding="utf-8")
    assert relative_links(page.read_text()) == [(1, "missing.md"), (1, "page.md"), (6, "also-missing.md")]


MODULE_PATH = re.compile(r"(?<![\w/.~-])mlift/[\w/]*\w(?:\.(?:py|tsv|jsonl|json|jinja|yaml))?/?")
MODULE_NAME = re.compile(r"(?<![\w/.])mlift(?:\.[a-z_]\w*)+")


def stale_names(files: list[Path]) -> list[str]:
    """Paths under mlift/ and dotted mlift.* names that no longer exist (prose and code spans both: a module that
    moved leaves its old name behind in the docs, and no link checker sees a name in backticks)."""
    stale = []
    for md in files:
        where = md.relative_to(REPO) if md.is_relative_to(REPO) else md.name
        for n, line in enumerate(md.read_text(encoding="utf-8").splitlines(), 1):
            for m in MODULE_PATH.finditer(line):
                if not (REPO / m.group(0)).exists():
                    stale.append(f"{where}:{n}: {m.group(0)}")
            for m in MODULE_NAME.finditer(line):
                parts = m.group(0).split(".")
                if not any((REPO / Path(*parts[:i - 1]) / f"{parts[i - 1]}.py").exists()
                           or (REPO / Path(*parts[:i]) / "__init__.py").exists() for i in range(len(parts), 1, -1)):
                    stale.append(f"{where}:{n}: {m.group(0)}")
    return stale


def test_module_paths_and_names_in_the_docs_exist() -> None:
    stale = stale_names(doc_files())
    assert not stale, "the docs name modules or files that do not exist (moved?):\n" + "\n".join(stale)


def test_stale_name_check_sees_a_moved_module(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("`mlift/eval_tasks.py` and mlift.report_judge; fine: mlift/eval/tasks.py, `mlift.eval.tasks`, "
                    "mlift/resources/langid.tsv, ~/.cache/mlift/models\n", encoding="utf-8")
    assert [s.split(": ", 1)[1] for s in stale_names([page])] == ["mlift/eval_tasks.py", "mlift.report_judge"]
