"""mlift.fingerprint: which recipe fields name files (a new one that is not fingerprinted fails here), what the walk
finds in shipped recipes, and the content hash (mtime is only a cache key)."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import shutil
from pathlib import Path

import mlift
from mlift.fingerprint import _mark_in, fingerprint, walk_schema
from mlift.recipe import Schema, load_recipe

REPO = Path(__file__).resolve().parents[1]

# Recipe fields whose name says "path/file/dir/prompt/template/..." but whose value is not a file the run reads.
NOT_INPUTS = {
    ("mlift.baselines.templated.Template", "jinja"): "an inline template: its text is in the recipe",
    ("mlift.baselines.templated.TemplatedRecipe", "template_langs"): "a choice (english|target|both)",
    ("mlift.llm.base.TransformersLLMConfig", "gguf_file"): "model weights: models are named, not fingerprinted",
    ("mlift.train.sft.ModelCfg", "name_or_path"): "model weights: models are named, not fingerprinted",
    ("mlift.sweep.schema.AnswerSpec", "instructions"): "the sweep hashes it per job (sweep/judging.py)",
    ("mlift.sweep.schema.DatasetSpec", "recipe"): "the sweep hashes it and the files it names per job (graph.py)",
    ("mlift.sweep.schema.DatasetSpec", "path"): "the sweep hashes a ready dataset per train job (graph.py)",
    ("mlift.sweep.schema.EvalSpec", "suite"): "the sweep hashes it and the files it names per job (graph.py)",
    ("mlift.sweep.schema.JudgeSpec", "recipe"): "the sweep hashes it and the files it names per job (judging.py)",
    ("mlift.sweep.schema.TrainSpec", "recipe"): "the sweep hashes it and the files it names per job (graph.py)",
    ("mlift.sweep.schema.SlurmOpts", "workdir"): "where jobs run, not what they read",
    ("mlift.sweep.schema.SlurmOpts", "template"): "the sbatch template: how jobs are launched, not what they compute",
    ("mlift.train.sft.SlurmCfg", "accelerate_config"): "launch settings of `mlift train --slurm` (the sweep hashes it)",
    ("mlift.train.sft.SlurmCfg", "workdir"): "where the job runs",
    ("mlift.train.sft.SlurmCfg", "template"): "the sbatch template",
}
_NAMES = re.compile(r"path|file|dir|prompt|template|dataset|instruction|recipe|suite|corpus|data|jinja")


def _schemas() -> list[type]:
    for m in pkgutil.walk_packages(mlift.__path__, "mlift."):
        if not m.name.endswith("__main__"):
            importlib.import_module(m.name)
    found: set[type] = set()
    todo = [Schema]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return sorted(found, key=lambda c: (c.__module__, c.__name__))


def test_every_field_that_names_a_file_is_fingerprinted():
    """A new recipe field named like a path must carry a Reads marker (mlift/fingerprint.py) or be listed above with
    the reason it is not an input; otherwise editing its file would go unseen by every guard."""
    unmarked = []
    for schema in _schemas():
        for name, field in schema.model_fields.items():
            key = (f"{schema.__module__}.{schema.__name__}", name)
            if name == "output_dir" or not _NAMES.search(name) or "str" not in str(field.annotation):
                continue
            if _mark_in(field.annotation, field.metadata) is None and key not in NOT_INPUTS:
                unmarked.append(key)
    assert not unmarked, f"fields that name files but are not fingerprinted: {unmarked}"


def test_walk_finds_inputs_prompts_fewshot_and_packaged_defaults():
    from mlift.commands.translate import TranslateRecipe
    from mlift.judge.pairwise import JudgeRecipe

    recipe = load_recipe(REPO / "recipes/translate/flores_stories260k.yaml", TranslateRecipe)
    found = {k: Path(p).name for k, (_, p) in walk_schema(TranslateRecipe, recipe.resolved).items()}
    assert found == {"input.path": "fra_Latn.devtest", "translator.fewshot_file": "fewshot_translation.jsonl",
                     "translator.prompt.0": "translate_chat.jinja", "translator.prompt.1": "translate_completion.jinja"}
    judge = load_recipe(REPO / "recipes/eval/judge_example.yaml", JudgeRecipe,
                        ["reference_by_lang={fra_Latn: {path: r.jsonl}}", "model_b=null",
                         "judge={backend: transformers, model: m, chat_template: t.jinja}"])
    found = {k: p for k, (_, p) in walk_schema(JudgeRecipe, judge.resolved).items()}
    assert found["reference_by_lang.fra_Latn.path"] == "r.jsonl" and found["judge.chat_template"] == "t.jinja"
    assert found["prompt"].endswith("mlift/prompts/judge_pairwise.jinja")


def test_content_not_mtime(tmp_path):
    """A copy (new mtime, same bytes) fingerprints the same; an edit that keeps the size does not; a directory's
    fingerprint names the file that changed; the recorded hash is reused while size and mtime stay."""
    a = tmp_path / "a" / "x.txt"
    a.parent.mkdir()
    a.write_text("hello world\n")
    first = fingerprint(str(a.parent))
    b = tmp_path / "b"
    shutil.copytree(a.parent, b)
    os.utime(b / "x.txt", ns=(1, 1))
    assert fingerprint(str(b))["sha256"] == first["sha256"]
    a.write_text("hello World\n")  # same size
    second = fingerprint(str(a.parent))
    assert second["sha256"] != first["sha256"] and list(second["files"]) == [str(a)]
    st = a.stat()
    fake = {"files": {str(a): {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": "recorded"}}}
    assert fingerprint(str(a.parent), known=fake)["files"][str(a)]["sha256"] == "recorded"
    assert fingerprint("owner/hub-dataset")["sha256"] is None


def test_eval_data_dir_counts_only_the_eval_folders(tmp_path):
    """A corpus kept in the same data root as the eval sets (../shared/data/udhr) is not eval data."""
    from mlift.eval.run import EvalSuite

    (tmp_path / "flores200" / "devtest").mkdir(parents=True)
    (tmp_path / "flores200" / "devtest" / "fra_Latn.devtest").write_text("Bonjour.\n")
    (tmp_path / "udhr").mkdir()
    (tmp_path / "udhr" / "fra.txt").write_text("Article premier\n")
    recipe = load_recipe(REPO / "recipes/eval/local_small.yaml", EvalSuite, [f"data_dir={tmp_path}"])
    assert list(recipe.named_files()["data_dir"]["files"]) == [str(tmp_path / "flores200/devtest/fra_Latn.devtest")]


def test_sweep_memo_keeps_the_hashes_of_unchanged_files(tmp_path, monkeypatch):
    """`mlift sweep` keeps the hashes it computed (by file, size, mtime) so a large corpus is not read at every call;
    an entry for a file that changed since is not kept."""
    from mlift import fingerprint as fp

    monkeypatch.setattr(fp, "_memo", {})
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one\n")
    b.write_text("two\n")
    want = fingerprint(str(a))["sha256"], fingerprint(str(b))["sha256"]
    b.write_text("three\n")
    fp.save_memo(tmp_path / "memo.json")
    monkeypatch.setattr(fp, "_memo", {})
    fp.load_memo(tmp_path / "memo.json")
    assert [k[0] for k in fp._memo] == [str(a.resolve())]
    assert fingerprint(str(a))["sha256"] == want[0] and fingerprint(str(b))["sha256"] != want[1]
