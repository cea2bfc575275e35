"""The eval harness: task building from local files, real lm-eval runs of the pretrained 260K Llama, the flat table."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import yaml
from conftest import REPO, shared_path

from mlift.cli import main as cli_main
from mlift.eval.mmlu import read_hendrycks, read_okapi
from mlift.eval.suite import FloresTask, MMLUTask, XLSumTask
from mlift.eval.tasks import build_tasks


def test_readers_normalise_okapi_and_hendrycks() -> None:
    okapi = read_okapi(shared_path("data", "m_mmlu", "hi_val.json"))
    raw = json.loads(shared_path("data", "m_mmlu", "hi_val.json").read_text(encoding="utf-8"))
    assert len(okapi) == len(raw)
    assert okapi[0]["choices"][0] == raw[0]["option_a"].strip()
    assert okapi[0]["answer"] == "ABCD".index(raw[0]["answer"])
    csv_path = shared_path("data", "mmlu", "test", "anatomy_test.csv")
    docs = read_hendrycks([csv_path])
    with csv_path.open(encoding="utf-8", newline="") as f:
        first = next(csv.DictReader(f))
    assert docs[0]["answer"] == int(first["answer"]) and docs[0]["subject"] == "anatomy"
    assert docs[0]["choices"][3] == first["choice3"].strip()


def test_build_tasks_names_sources_and_alignment(tmp_path: Path) -> None:
    data = shared_path("data")
    specs = build_tasks(tmp_path, ["hi", "eng_Latn"], XLSumTask(), FloresTask(), MMLUTask(format="okapi"), data)
    names = [s.name for s in specs]
    assert names == ["mlift_xlsum_hin_Deva", "mlift_flores_hin_Deva-eng_Latn", "mlift_flores_eng_Latn-hin_Deva",
                     "mlift_mmlu_okapi_hin_Deva", "mlift_xlsum_eng_Latn", "mlift_mmlu_okapi_eng_Latn"]
    cfg = yaml.load((tmp_path / "mlift_flores_eng_Latn-hin_Deva.yaml").read_text(), Loader=yaml.BaseLoader)
    test_file = Path(cfg["dataset_kwargs"]["data_files"]["test"])
    assert test_file.is_absolute()  # lm-eval resolves relative data_files against the CWD
    first = json.loads(test_file.read_text(encoding="utf-8").splitlines()[0])
    devtest = data / "flores200" / "devtest"
    assert first["src"] == (devtest / "eng_Latn.devtest").read_text(encoding="utf-8").splitlines()[0]
    assert first["tgt"] == (devtest / "hin_Deva.devtest").read_text(encoding="utf-8").splitlines()[0]
    flores = specs[2]
    assert flores.direction == "en-xx" and flores.source["tgt"]["split"] == "devtest"
    assert specs[0].source["split"] == "test" and specs[0].source["fewshot"]["split"] == "train"
    # lm-eval indexes every generated task under its unique name
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(tmp_path), include_defaults=False)
    assert set(names) <= set(manager.all_tasks)


def test_missing_local_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="xlsum.*check --data-dir"):
        build_tasks(tmp_path / "t", ["hin_Deva"], xlsum=XLSumTask(), data_dir=tmp_path)


def test_mlift_eval_runs_all_three_families(tmp_path: Path, stories260k: Path) -> None:
    """A real lm-eval run (HF backend, CPU) of the pretrained 260K Llama on local FLORES, XL-Sum and m_MMLU samples."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({
        "seed": 7, "limit": 3, "threads": 1, "data_dir": str(shared_path("data")),
        "xlsum": {"max_gen_toks": 16}, "flores": {"max_gen_toks": 16, "directions": ["xx-en", "en-xx"]},
        "mmlu": {"format": "okapi"}}))
    out = tmp_path / "out"
    rc = cli_main(["eval", "--model", str(stories260k), "--suite", str(suite), "--langs", "hi", "--out", str(out),
                   "--no-chat-template"])
    assert rc == 0
    table = json.loads((out / "table.json").read_text())
    with (out / "table.csv").open() as f:
        assert len(list(csv.DictReader(f))) == len(table)
    got = {(r["task"], r["metric"]): r for r in table}
    for key in [("mlift_xlsum_hin_Deva", "rouge1"), ("mlift_xlsum_hin_Deva", "rougeL"),
                ("mlift_flores_hin_Deva-eng_Latn", "chrf++"), ("mlift_flores_eng_Latn-hin_Deva", "bleu"),
                ("mlift_mmlu_okapi_hin_Deva", "acc")]:
        row = got[key]
        assert row["n"] == 3 and row["lang"] == "hin_Deva" and row["model"] == str(stories260k)
        assert isinstance(row["value"], float) and math.isfinite(row["value"])
    assert got[("mlift_flores_hin_Deva-eng_Latn", "chrf++")]["direction"] == "xx-en"
    assert got[("mlift_flores_hin_Deva-eng_Latn", "chrf++")]["value"] > 0  # some characters always match
    assert ("mlift_flores_eng_Latn-hin_Deva", "spbleu") in got  # NaN -> null when the SPM model is unavailable
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["random_seed"] == 7 and results["config"]["batch_size"] == 1
    assert set(results["versions"]) == {r["task"] for r in table}
    assert "mlift_xlsum_hin_Deva" in results["configs"]
    sample = json.loads((out / "samples" / "mlift_xlsum_hin_Deva.jsonl").read_text().splitlines()[0])
    assert "resps" in sample and "doc" in sample
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["apply_chat_template"] is False and manifest["recipe"]["overrides"]
    assert manifest["tasks"][0]["source"]["path"].endswith("hindi_test.jsonl")
    # XL-Sum ROUGE: the XL-Sum authors' scorer by default, recorded; the table equals that scorer on the samples
    assert manifest["rouge"]["mode"] == "xlsum" and manifest["rouge"]["scorer"].startswith("multilingual-rouge ")
    assert manifest["rouge"]["langs"]["hi"]["lang"] == "hindi"
    from multilingual_rouge.rouge_scorer import RougeScorer

    from mlift.eval.hooks import xlsum_process_results

    ref = RougeScorer(["rouge1", "rougeL"], lang="hindi", use_stemmer=True)
    samples = [json.loads(x) for x in (out / "samples" / "mlift_xlsum_hin_Deva.jsonl").read_text().splitlines()]
    items = [xlsum_process_results(s["doc"], [s["filtered_resps"][0]])["rougeL"] for s in samples]
    for metric in ("rouge1", "rougeL"):
        expect = 100 * sum(ref.score(i[0], i[1])[metric].fmeasure for i in items) / len(items)
        assert got[("mlift_xlsum_hin_Deva", metric)]["value"] == pytest.approx(expect, abs=0.01)


def _preferred_letters(model_dir: Path, contexts: list[str]) -> list[list[float]]:
    """log P(' X' | context) for X in A..D, computed directly with transformers (independently of lm-eval)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    out = []
    for ctx in contexts:
        n = len(tok(ctx).input_ids)
        scores = []
        for letter in "ABCD":
            ids = tok(ctx + " " + letter).input_ids
            with torch.no_grad():
                logp = model(torch.tensor([ids])).logits.log_softmax(-1)[0]
            scores.append(sum(logp[n - 1 + i, t].item() for i, t in enumerate(ids[n:])))
        out.append(scores)
    return out


def test_mmlu_planted_answers_score_100_then_0(tmp_path: Path, stories260k: Path) -> None:
    """The answer key is planted at the letter the model itself prefers (measured with transformers directly, with a
    clear margin): the task must score 100%; planted at the letter it likes least: 0%. Proves prompt, choices, target
    index and lm-eval's argmax line up through the same task code as real MMLU."""
    from mlift.eval.run import EvalSuite, run_eval

    questions = ["Lily saw a big red ball in the park. What did she see?", "Tom had a little dog. What did Tom have?",
                 "The sun was hot. How was the sun?", "Ben ate a cake. What did Ben eat?"]
    choices = ["a ball", "a cat", "a tree", "a car"]
    contexts = [f"{q}\nA. {choices[0]}\nB. {choices[1]}\nC. {choices[2]}\nD. {choices[3]}\nAnswer:" for q in questions]
    scores = _preferred_letters(stories260k, contexts)
    best = [max(range(4), key=s.__getitem__) for s in scores]
    worst = [min(range(4), key=s.__getitem__) for s in scores]
    for s, b in zip(scores, best, strict=True):
        assert s[b] - sorted(s)[-2] > 0.3, "margin too small for a stable planted answer"
    # one run, two tasks: the Okapi JSON format, English file planted at the best letter, French at the worst
    data = tmp_path / "data"
    (data / "m_mmlu").mkdir(parents=True)
    for lang, planted in (("en", best), ("fr", worst)):
        rows = [{"id": str(i), "instruction": q, **{f"option_{c}": choices[k] for k, c in enumerate("abcd")},
                 "answer": "ABCD"[a]} for i, (q, a) in enumerate(zip(questions, planted, strict=True))]
        (data / "m_mmlu" / f"{lang}_val.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    suite = EvalSuite(langs=["en", "fr"], data_dir=str(data), threads=1, mmlu=MMLUTask(format="okapi", fewshot_split=None))
    table = run_eval(suite, str(stories260k), tmp_path / "out")
    acc = {r["task"]: r["value"] for r in table if r["metric"] == "acc"}
    assert acc == {"mlift_mmlu_okapi_eng_Latn": pytest.approx(1.0), "mlift_mmlu_okapi_fra_Latn": pytest.approx(0.0)}
    assert all(r["n"] == 4 for r in table)


@pytest.mark.slow  # indexing all of lm-eval's built-in tasks takes ~10-25 s
def test_hub_mmlu_variants_reuse_lm_eval_builtins(tmp_path: Path) -> None:
    from lm_eval.tasks import TaskManager

    known = set(TaskManager().all_tasks)
    for fmt, expect in (("global_mmlu", ["global_mmlu_full_hi", "global_mmlu_full_sw"]),
                        ("mmmlu", ["mmmlu_hi_in", "mmmlu_sw_ke"]), ("okapi", ["m_mmlu_hi"])):
        source = "local" if fmt == "mmmlu" else "hub"  # mmmlu is hub-only whatever the source says
        langs = ["hi"] if fmt == "okapi" else ["hi", "swh_Latn"]
        specs = build_tasks(tmp_path / fmt, langs, mmlu=MMLUTask(format=fmt, source=source))
        assert [s.name for s in specs] == expect and all(s.builtin and s.source["hub_id"] for s in specs)
        assert set(expect) <= known, f"lm-eval {fmt} built-ins renamed?"


EVAL_RECIPES = sorted((REPO / "recipes" / "eval").glob("*.yaml"))
# The (family, language) pairs a shipped suite asks for that its benchmark does not have, skipped with a warning by
# `mlift eval`: written here so that a language added to a suite without the data is noticed, not silently not evaluated.
KNOWN_SKIPS = {"hub.yaml": ["xlsum deu_Latn"]}


def hub_datasets() -> set[str]:
    """The hub datasets whose layout mlift's loaders are tested against (tests/hub_repos.py, served by tests/hub.py)."""
    from hub_repos import LAYOUTS

    return {k.split("/", 1)[1] for k in LAYOUTS if k.startswith("datasets/")}


def check_suite(path: Path, tasks_dir: Path) -> None:
    """What `mlift eval --suite PATH` would build, short of downloading: the local families' files exist (task YAMLs and
    data written, one doc each), a hub family names a dataset the loaders know and a subset per language, every lm-eval
    task or group named exists in lm-eval, every language gets a task, and only the known (family, language) pairs are
    skipped."""
    from test_eval_lmeval import lm_eval_names

    from mlift.eval.flores import flores_subset
    from mlift.eval.lmeval import build_lmeval
    from mlift.eval.run import EvalSuite
    from mlift.languages import get_language
    from mlift.recipe import load_recipe

    suite = load_recipe(path, EvalSuite).cfg
    langs = [get_language(code) for code in suite.langs]
    local = {k: cfg for k in ("xlsum", "flores") if (cfg := getattr(suite, k)) is not None and cfg.source == "local"}
    skipped: list[str] = []
    specs = build_tasks(tasks_dir, suite.langs, local.get("xlsum"), local.get("flores"), suite.mmlu, suite.data_dir,
                        limit=1, num_fewshot=suite.num_fewshot, skipped=skipped)
    for spec in specs:
        if not spec.builtin:  # a written task: its YAML and the data it names
            config = yaml.load((tasks_dir / f"{spec.name}.yaml").read_text(), Loader=yaml.BaseLoader)
            files = config["dataset_kwargs"]["data_files"]
            assert all(Path(p).read_text(encoding="utf-8").strip() for p in files.values()), spec.name
    evaluated = {s.lang for s in specs}
    for family in ("xlsum", "flores"):
        cfg = getattr(suite, family)
        if cfg is None or cfg.source != "hub":
            continue
        assert cfg.hub_id in hub_datasets(), f"{path.name}: {family}.hub_id {cfg.hub_id} is not a layout mlift reads"
        for lang in langs:
            subset = lang.xlsum if family == "xlsum" else flores_subset(lang)
            if not subset:
                skipped.append(f"{family} {lang.flores}: no subset")
            elif family == "xlsum" or lang.flores != cfg.pivot:
                evaluated.add(lang.flores)
    builtin = [s for s in specs if s.builtin] + build_lmeval(suite.tasks, suite.langs, tasks_dir)
    missing = sorted({s.source["lm_eval_task"] for s in builtin} - lm_eval_names())
    assert not missing, f"{path.name}: lm-eval has no task {missing}"
    evaluated |= {s.lang for s in builtin}
    assert evaluated == {lang.flores for lang in langs}, f"{path.name}: no task for {set(suite.langs) - evaluated}"
    assert sorted(" ".join(s.split()[:2]).rstrip(":") for s in skipped) == KNOWN_SKIPS.get(path.name, []), skipped


def check_judge(path: Path) -> None:
    """The judge recipe's prompt shows the instruction and both responses, in both orders, and asks for the verdict
    format the parser reads; a local judge model exists, and has a chat template where the recipe sends chat."""
    from mlift.commands.modelpath import check_llm_models
    from mlift.judge.pairwise import JudgeRecipe, judge_prompts, parse_verdict
    from mlift.recipe import load_recipe

    cfg = load_recipe(path, JudgeRecipe).cfg
    ab, ba = judge_prompts(cfg.prompt, "INSTRUCTION-X", "RESPONSE-ONE", "RESPONSE-TWO", "French")
    for prompt, first, second in ((ab, "RESPONSE-ONE", "RESPONSE-TWO"), (ba, "RESPONSE-TWO", "RESPONSE-ONE")):
        assert "INSTRUCTION-X" in prompt and "French" in prompt, prompt
        assert -1 < prompt.index(first) < prompt.index(second), prompt
    assert parse_verdict("[[A]]") == "A" and '"[[A]]"' in ab and '"[[B]]"' in ab, ab
    check_llm_models(cfg, str(path))
    if cfg.chat and cfg.judge.backend in ("transformers", "vllm"):
        from transformers import AutoTokenizer

        assert AutoTokenizer.from_pretrained(cfg.judge.model).chat_template, f"{path.name}: chat without a template"


@pytest.mark.parametrize("path", EVAL_RECIPES, ids=[p.name for p in EVAL_RECIPES])
def test_shipped_eval_recipes_resolve(path: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(REPO)  # the recipes name ../shared and runs/ relative to the checkout
    monkeypatch.setenv("MLIFT_EVAL_DATA_CACHE", str(tmp_path / "eval_data"))
    if path.name.startswith("judge"):
        check_judge(path)
    else:
        check_suite(path, tmp_path / "tasks")


BROKEN = [  # (recipe, text replaced, replacement, what the check says)
    ("standard_xcopa.yaml", "xcopa_{iso1}", "xcopa_{iso3}", "lm-eval has no task"),  # xcopa_est, not xcopa_et
    ("standard_pawsx.yaml", "zho_Hans]", "zho_Hans, hin_Deva]", "lm-eval has no task"),  # PAWS-X has no Hindi
    ("local_small.yaml", "split: devtest", "split: validation", "not found"),
    ("local_small.yaml", "data_dir: ../shared/data", "data_dir: ../shared", "not found"),
    ("hub.yaml", "openlanguagedata/flores_plus", "facebook/flores", "not a layout mlift reads"),
    ("hub.yaml", "jpn_Jpan", "jpn_Jpan, ita_Latn", "Assert"),  # XL-Sum has no Italian: a new skip
    ("local_small.yaml", "split: val", "split: test", "not found"),  # Okapi m_MMLU has val and dev
    ("judge_example.yaml", "prompt: judge_pairwise", "prompt: score_chat", "is undefined"),
    ("judge_stories260k.yaml", "stories260K", "stories260", "stories260"),
    ("judge_stories260k.yaml", "chat: false", "chat: true", "chat without a template"),
]


@pytest.mark.parametrize("name,old,new,says", BROKEN, ids=[f"{b[0]}:{b[2]}" for b in BROKEN])
def test_a_broken_eval_recipe_fails_the_check(name: str, old: str, new: str, says: str, tmp_path: Path,
                                              monkeypatch) -> None:
    text = (REPO / "recipes" / "eval" / name).read_text()
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new))
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("MLIFT_EVAL_DATA_CACHE", str(tmp_path / "eval_data"))
    with pytest.raises(Exception) as err:
        check_judge(path) if name.startswith("judge") else check_suite(path, tmp_path / "tasks")
    assert says in f"{type(err.value).__name__}: {err.value}", err.value


def test_limit_materialises_only_the_docs_read(tmp_path: Path) -> None:
    def n_docs(folder: Path, task: str) -> int:
        cfg = yaml.load((folder / f"{task}.yaml").read_text(), Loader=yaml.BaseLoader)
        return len(Path(cfg["dataset_kwargs"]["data_files"]["test"]).read_text(encoding="utf-8").splitlines())

    data = shared_path("data")
    build_tasks(tmp_path / "a", ["fr"], flores=FloresTask(), data_dir=data, limit=2)
    assert n_docs(tmp_path / "a", "mlift_flores_fra_Latn-eng_Latn") == 2
    # few-shot run, no dev split in ../shared: the first 16 devtest lines are the few-shot pool, never evaluated
    specs = build_tasks(tmp_path / "b", ["fr"], flores=FloresTask(), data_dir=data, limit=2, num_fewshot=1)
    assert n_docs(tmp_path / "b", "mlift_flores_fra_Latn-eng_Latn") == 2
    cfg = yaml.load((tmp_path / "b" / "mlift_flores_fra_Latn-eng_Latn.yaml").read_text(), Loader=yaml.BaseLoader)
    assert cfg["fewshot_split"] == "train" and cfg["test_split"] == "test"
    files = cfg["dataset_kwargs"]["data_files"]
    pool = [json.loads(x) for x in Path(files["train"]).read_text(encoding="utf-8").splitlines()]
    evaluated = [json.loads(x) for x in Path(files["test"]).read_text(encoding="utf-8").splitlines()]
    devtest = (data / "flores200" / "devtest" / "fra_Latn.devtest").read_text(encoding="utf-8").splitlines()
    assert [d["src"] for d in pool] == devtest[:16] and evaluated[0]["src"] == devtest[16]
    assert specs[0].source["fewshot"]["split"] == "devtest[:16]" and specs[0].source["src"]["split"] == "devtest[16:]"
    # with a dev split present, few-shot examples come from it and the whole devtest is evaluated
    local = tmp_path / "data" / "flores200"
    for split in ("dev", "devtest"):
        (local / split).mkdir(parents=True)
        for lang in ("fra_Latn", "eng_Latn"):
            lines = (data / "flores200" / "devtest" / f"{lang}.devtest").read_text(encoding="utf-8").splitlines()
            part = lines[900:] if split == "dev" else lines[:900]  # a stand-in dev split, disjoint from devtest
            (local / split / f"{lang}.{split}").write_text("\n".join(part) + "\n", encoding="utf-8")
    specs = build_tasks(tmp_path / "c", ["fr"], flores=FloresTask(), data_dir=tmp_path / "data", num_fewshot=1)
    assert n_docs(tmp_path / "c", "mlift_flores_fra_Latn-eng_Latn") == 900
    assert specs[0].source["fewshot"]["split"] == "dev"


def test_tasks_a_benchmark_lacks_are_skipped_with_the_reason(tmp_path: Path) -> None:
    skipped: list[str] = []
    specs = build_tasks(tmp_path / "a", ["deu_Latn"], xlsum=XLSumTask(source="hub"), mmlu=MMLUTask(format="mmmlu"),
                        skipped=skipped)
    specs += build_tasks(tmp_path / "b", ["tha_Thai"], mmlu=MMLUTask(format="mmmlu"), skipped=skipped)
    assert [s.name for s in specs] == ["mmmlu_de_de"]
    assert skipped == ["xlsum deu_Latn: XL-Sum has no German subset (languages.tsv)",
                       "mmlu tha_Thai: the mmmlu benchmark has no Thai"]
